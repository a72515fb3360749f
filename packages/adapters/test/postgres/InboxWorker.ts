/**
 * A billing worker for BillingCrash.test.ts, in a process of its own over the test's PostgreSQL
 * database: the real Billing over PgBillingInbox, PgLedger and PgProjectStore. On the line
 * `process` it claims the pending events and applies them, except that it stops where `CRASH_AT`
 * says and waits there, forever, to be killed:
 *
 *   before_apply     after the claim, before any ledger write      prints {"claimed": <event id>}
 *   before_complete  after the ledger writes, before completing    prints {"applied": <event id>}
 *   (anything else)  nowhere                                       prints {"outcomes": [...]}
 *
 * Prints {"ready":true} once connected. DATABASE_URL, CRASH_AT and LEASE_MS come from the environment.
 */
import { PgClient } from "@effect/sql-pg"
import type { TranslateEvent } from "@tollgate/core"
import { Billing, BillingInbox, Ledger, neutralActions, ProjectStore } from "@tollgate/core"
import { Effect, Layer, Redacted } from "effect"
import { createInterface } from "node:readline"
import { makePgBillingInbox } from "../../src/postgres/PgBillingInbox.js"
import { makePgLedger } from "../../src/postgres/PgLedger.js"
import { makePgProjectStore } from "../../src/postgres/PgProjectStore.js"

const crashAt = process.env.CRASH_AT
const leaseMs = Number(process.env.LEASE_MS)

const say = (line: object) => Effect.sync(() => void process.stdout.write(`${JSON.stringify(line)}\n`))

/** The inbox, except that completing an event first says so and then never happens. */
const StallingInbox = Layer.effect(
  BillingInbox,
  Effect.map(makePgBillingInbox, (inbox) =>
    crashAt === "before_complete"
      ? BillingInbox.of({ ...inbox, complete: (id) => Effect.zipRight(say({ applied: id }), Effect.never) })
      : inbox)
)

/** Neutral payloads, except that reading one first says so and then never finishes. */
const translate: TranslateEvent = (event) =>
  crashAt === "before_apply" ? Effect.zipRight(say({ claimed: event.id }), Effect.never) : neutralActions(event)

const Stack = Billing.Default.pipe(
  Layer.provide(Layer.mergeAll(
    StallingInbox,
    Layer.effect(Ledger, makePgLedger),
    Layer.effect(ProjectStore, makePgProjectStore)
  )),
  Layer.provide(PgClient.layer({
    url: Redacted.make(process.env.DATABASE_URL!),
    maxConnections: 2,
    applicationName: "tollgate-test-inbox-worker"
  }))
)

const main = Effect.gen(function*() {
  const billing = yield* Billing
  yield* say({ ready: true })
  yield* Effect.promise(async () => {
    for await (const line of createInterface({ input: process.stdin })) {
      if (line !== "process") continue
      const outcomes = await Effect.runPromise(billing.processPending({ limit: 10, leaseMs, translate }))
      await Effect.runPromise(say({ outcomes }))
    }
  })
})

Effect.runPromise(Effect.scoped(Effect.provide(main, Stack))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
