import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import type { MessageId, OutboxMessage } from "@tollgate/core"
import { AutoTopUpStore, chargeIdempotencyKey } from "@tollgate/core"
import { Effect, Layer } from "effect"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { makePgAutoTopUpStore } from "../../src/postgres/PgAutoTopUpStore.js"
import { makeStripePaymentProvider } from "../../src/stripe/StripePaymentProvider.js"
import { cr, projectId, unique } from "../contracts/fixtures.js"
import { spawnScript } from "../support/ChildProcesses.js"
import { postgresAvailable, postgresTestClient, postgresUrl, testDatabase } from "../support/Databases.js"
import type { StripeServer } from "../support/StripeServer.js"
import { StripeServerScoped } from "../support/StripeServer.js"

const pg = testDatabase(postgresTestClient)
const here = dirname(fileURLToPath(import.meta.url))

/** The worker's price: 2 cents a credit. */
const CREDITS = 500
const AMOUNT_CENTS = 1_000

/** A saved card, the way a project gets one: a paid Checkout that saved it, made the customer's default. */
const saveCard = (server: StripeServer, project: ReturnType<typeof projectId>) =>
  Effect.gen(function*() {
    const stripe = yield* makeStripePaymentProvider({
      client: server.client(),
      successUrl: "https://tollgate.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}",
      cancelUrl: "https://tollgate.example/billing/checkout/cancelled",
      currency: "usd",
      timeoutMs: 5_000
    })
    const { sessionId } = yield* stripe.createTopUpCheckout({
      projectId: project,
      credits: cr(CREDITS),
      amountCents: AMOUNT_CENTS,
      idempotencyKey: unique("checkout"),
      saveCard: true
    })
    const { paymentIntent, session } = server.completeCheckout(sessionId)
    const customer = server.customers().find((c) => c["id"] === session["customer"])!
    // the server hands out its own objects: this is the customer's default payment method from now on
    customer["invoice_settings"] = {
      ...(customer["invoice_settings"] as object),
      default_payment_method: paymentIntent["payment_method"]
    }
  })

/** The off-session PaymentIntents auto top-up created, seen through their charges. */
const autoTopUpCharges = (server: StripeServer) =>
  Effect.promise(async () => {
    const { data } = await server.client().charges.list({ limit: 100 })
    return data.filter((charge) => charge.metadata["kind"] === "auto_top_up")
  })

const Store = Layer.effect(AutoTopUpStore, makePgAutoTopUpStore)

describe.skipIf(!postgresAvailable)("PostgreSQL auto top-up worker killed in the middle of a charge", () => {
  const cases = [
    {
      crashAt: "after_charge",
      what: "after Stripe charged, before the result was recorded",
      // the same message comes back after its lease: the attempt in flight is replayed
      replays: ["lowBalance", "resume"] as const,
      first: { outcome: "charged" },
      // the replay asks Stripe again under the same key and gets the first answer
      creates: 2
    },
    {
      crashAt: "before_charge",
      what: "after the attempt was recorded, before Stripe was asked",
      // the stalled-charge sweep finds the attempt before the message comes back
      replays: ["resume", "lowBalance"] as const,
      first: { resumed: 1 },
      creates: 1
    }
  ] as const
  for (const { crashAt, creates, first, replays, what } of cases) {
    it.scopedLive(
      `a worker process killed ${what}: another worker finishes the attempt, charging the card once`,
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const store = yield* AutoTopUpStore
          const server = yield* StripeServerScoped()
          const [db] = yield* sql<{ readonly name: string }>`SELECT current_database() AS name`
          const url = new URL(postgresUrl)
          url.pathname = `/${db!.name}`
          const env = {
            DATABASE_URL: url.toString(),
            STRIPE_PORT: String(server.port),
            STRIPE_API_KEY: server.apiKey
          }

          const project = projectId()
          yield* store.configure(project, {
            enabled: true,
            thresholdCredits: cr(100),
            amountCredits: cr(CREDITS),
            monthlyCapCredits: cr(5_000)
          })
          yield* saveCard(server, project)
          const key = `charge:${chargeIdempotencyKey(project, 1)}`
          const message: OutboxMessage = {
            id: `low_balance:${project}:1` as MessageId,
            projectId: project,
            topic: "balance.low",
            payload: { projectId: project, available: 0, threshold: 100 },
            availableAt: 0,
            attempts: 1
          }

          const worker = spawnScript(join(here, "AutoTopUpWorker.ts"), { ...env, CRASH_AT: crashAt }, 60_000)
          let charged: unknown = undefined
          yield* Effect.ensuring(
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Effect.promise(worker.next), { ready: true })
              worker.send(JSON.stringify({ lowBalance: message }))
              // the worker stops at the crash point and says so; it is killed there
              const stopped = (yield* Effect.promise(worker.next)) as Record<string, unknown>
              if (crashAt === "after_charge") {
                assert.match(String(stopped["charged"]), /^pi_/)
                charged = stopped["charged"]
              } else {
                assert.deepStrictEqual(stopped, { charging: chargeIdempotencyKey(project, 1) })
              }
            }),
            Effect.promise(worker.kill)
          )

          // the attempt is still in flight, its credits counted against the month
          const orphaned = yield* store.get(project)
          assert.deepStrictEqual(
            [orphaned.phase, orphaned.current?.attempt, orphaned.lastResult, orphaned.monthCharged],
            ["charging", 1, undefined, CREDITS]
          )
          const before = yield* autoTopUpCharges(server)
          assert.strictEqual(before.length, crashAt === "after_charge" ? 1 : 0)

          const other = spawnScript(join(here, "AutoTopUpWorker.ts"), { ...env, CRASH_AT: "none" }, 60_000)
          yield* Effect.ensuring(
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Effect.promise(other.next), { ready: true })
              const ask = (replay: "lowBalance" | "resume") =>
                Effect.promise(() => {
                  other.send(JSON.stringify(
                    replay === "lowBalance" ? { lowBalance: message } : { resume: Date.now() + 1_000 }
                  ))
                  return other.next()
                })
              assert.deepStrictEqual(yield* ask(replays[0]), first)
              // whichever way it comes back next, nothing more happens
              assert.deepStrictEqual(
                yield* ask(replays[1]),
                replays[1] === "resume" ? { resumed: 0 } : { outcome: "already_handled" }
              )
              assert.deepStrictEqual(yield* ask("lowBalance"), { outcome: "already_handled" })
              assert.deepStrictEqual(yield* ask("resume"), { resumed: 0 })
            }),
            Effect.promise(other.kill)
          )

          // exactly one PaymentIntent, paid once, for the attempt's amount
          const after = yield* autoTopUpCharges(server)
          assert.deepStrictEqual(
            after.map((c) => [c.amount, c.status, c.metadata["project_id"], c.metadata["credits"]]),
            [[AMOUNT_CENTS, "succeeded", project, String(CREDITS)]]
          )
          assert.strictEqual(new Set(after.map((c) => c.payment_intent)).size, 1)
          if (charged !== undefined) assert.strictEqual(after[0]!.payment_intent, charged)
          // every create asked under the one attempt's key: no second charge was started
          const posts = server.requests().filter((r) => r.method === "POST" && r.path === "/v1/payment_intents")
          assert.deepStrictEqual(posts.map((r) => r.idempotencyKey), Array.from({ length: creates }, () => key))

          const done = yield* store.get(project)
          assert.deepStrictEqual(
            [done.phase, done.current?.attempt, done.current?.trigger, done.lastResult, done.monthCharged],
            ["idle", 1, message.id, "succeeded", CREDITS]
          )
        }).pipe(Effect.provide(pg.fresh(Store))),
      60_000
    )
  }
})
