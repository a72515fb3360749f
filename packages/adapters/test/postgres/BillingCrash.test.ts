import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import type { EventId } from "@tollgate/core"
import { Billing, BillingInbox, Ledger, ProjectStore } from "@tollgate/core"
import { Effect, Layer, Option } from "effect"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { makePgBillingInbox } from "../../src/postgres/PgBillingInbox.js"
import { makePgLedger } from "../../src/postgres/PgLedger.js"
import { makePgProjectStore } from "../../src/postgres/PgProjectStore.js"
import { projectId, unique } from "../contracts/fixtures.js"
import { sumOfAccounts } from "../contracts/LedgerContract.js"
import { spawnScript } from "../support/ChildProcesses.js"
import { postgresAvailable, postgresTestClient, postgresUrl, testDatabase } from "../support/Databases.js"

const pg = testDatabase(postgresTestClient)
const here = dirname(fileURLToPath(import.meta.url))

/** Long enough that the checks after the kill run inside the dead worker's lease. */
const LEASE_MS = 3_000

/** This process is the other worker: the same Billing over the same PostgreSQL database. */
const OtherWorker = Billing.Default.pipe(
  Layer.provideMerge(Layer.mergeAll(
    Layer.effect(BillingInbox, makePgBillingInbox),
    Layer.effect(Ledger, makePgLedger),
    Layer.effect(ProjectStore, makePgProjectStore)
  ))
)

describe.skipIf(!postgresAvailable)("PostgreSQL billing worker killed in the middle of an event", () => {
  const cases = [
    { crashAt: "before_complete", says: "applied", what: "after applying the purchase, before completing the event" },
    { crashAt: "before_apply", says: "claimed", what: "after claiming the event, before applying anything" }
  ] as const
  for (const { crashAt, says, what } of cases) {
    it.live(
      `a worker process killed ${what}: once its lease ends another worker completes the event, granting once`,
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const inbox = yield* BillingInbox
          const billing = yield* Billing
          const ledger = yield* Ledger
          const [db] = yield* sql<{ readonly name: string }>`SELECT current_database() AS name`
          const url = new URL(postgresUrl)
          url.pathname = `/${db!.name}`

          const project = projectId()
          const id = unique("evt") as EventId
          const action = { _tag: "CreditsPurchased", projectId: project, credits: 500, paymentId: `pi_${id}` }
          yield* inbox.store(
            { id, provider: "sandbox", type: "purchase", createdAt: 1_000, payload: { action } },
            2_000
          )

          const worker = spawnScript(
            join(here, "InboxWorker.ts"),
            { DATABASE_URL: url.toString(), CRASH_AT: crashAt, LEASE_MS: String(LEASE_MS) },
            60_000
          )
          yield* Effect.ensuring(
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Effect.promise(worker.next), { ready: true })
              worker.send("process")
              // the worker stops at the crash point and says so; it is killed there
              assert.deepStrictEqual(yield* Effect.promise(worker.next), { [says]: id })
            }),
            Effect.promise(worker.kill)
          )

          const orphaned = Option.getOrThrow(yield* inbox.get(id))
          assert.deepStrictEqual([orphaned.status, orphaned.attempts], ["pending", 1])
          assert.strictEqual((yield* ledger.balance(project)).balance, crashAt === "before_complete" ? 500 : 0)
          // the dead worker's lease still runs: nobody else takes the event
          assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: LEASE_MS }), [])

          const [lease] = yield* sql<{ readonly until: string }>`
          SELECT claimable_at::text AS until FROM billing_inbox WHERE id = ${id}`
          yield* Effect.sleep(Math.max(0, Number(lease!.until) - Date.now()) + 50)
          assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: LEASE_MS }), ["applied"])

          const done = Option.getOrThrow(yield* inbox.get(id))
          assert.deepStrictEqual([done.status, done.attempts], ["processed", 2])
          assert.strictEqual((yield* ledger.balance(project)).balance, 500)
          assert.strictEqual((yield* ledger.history(project, { limit: 10 })).transactions.length, 1)
          assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
          assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: LEASE_MS }), [])
        }).pipe(Effect.provide(pg.fresh(OtherWorker))),
      60_000
    )
  }
})
