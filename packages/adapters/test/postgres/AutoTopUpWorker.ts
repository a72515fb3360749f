/**
 * An auto top-up worker for AutoTopUpCrash.test.ts, in a process of its own: the real AutoTopUp
 * over PgAutoTopUpStore, PgLedger and PgOutbox on the test's PostgreSQL database, and the Stripe
 * adapter pointed at the test's local Stripe server. It reads one JSON command a line:
 *
 *   {"lowBalance": <balance.low message>}   handles it, prints {"outcome": ...}
 *   {"resume": <startedBefore>}             replays the stalled charges, prints {"resumed": <count>}
 *
 * except that it stops where `CRASH_AT` says and waits there, forever, to be killed:
 *
 *   before_charge  after `begin` recorded the attempt, before the provider is asked   prints {"charging": <key>}
 *   after_charge   after the provider charged, before the store records the result    prints {"charged": <payment id>}
 *
 * Prints {"ready":true} once connected. DATABASE_URL, STRIPE_PORT, STRIPE_API_KEY and CRASH_AT
 * come from the environment.
 */
import { PgClient } from "@effect/sql-pg"
import type { OutboxMessage } from "@tollgate/core"
import { AutoTopUp, AutoTopUpStore, Ledger, Outbox, PaymentProvider } from "@tollgate/core"
import { Effect, Layer, Redacted } from "effect"
import { createInterface } from "node:readline"
import Stripe from "stripe"
import { makePgAutoTopUpStore } from "../../src/postgres/PgAutoTopUpStore.js"
import { makePgLedger } from "../../src/postgres/PgLedger.js"
import { makePgOutbox } from "../../src/postgres/PgOutbox.js"
import { makeStripePaymentProvider } from "../../src/stripe/StripePaymentProvider.js"

const crashAt = process.env.CRASH_AT
const pricing = { creditPriceCents: 2 }

const say = (line: object) => Effect.sync(() => void process.stdout.write(`${JSON.stringify(line)}\n`))

/** The Stripe adapter, except that it stops before or after the charge where `CRASH_AT` says. */
const StallingStripe = Layer.effect(
  PaymentProvider,
  Effect.map(
    makeStripePaymentProvider({
      client: new Stripe(process.env.STRIPE_API_KEY!, {
        host: "127.0.0.1",
        port: Number(process.env.STRIPE_PORT),
        protocol: "http",
        maxNetworkRetries: 0
      }),
      successUrl: "https://tollgate.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}",
      cancelUrl: "https://tollgate.example/billing/checkout/cancelled",
      currency: "usd",
      timeoutMs: 5_000
    }),
    (stripe) =>
      PaymentProvider.of({
        ...stripe,
        chargeOffSession: (request) =>
          crashAt === "before_charge"
            ? Effect.zipRight(say({ charging: request.idempotencyKey }), Effect.never)
            : crashAt === "after_charge"
            ? Effect.flatMap(
              stripe.chargeOffSession(request),
              (outcome) => Effect.zipRight(say({ charged: outcome.paymentId ?? null }), Effect.never)
            )
            : stripe.chargeOffSession(request)
      })
  )
)

const Stack = AutoTopUp.Default.pipe(
  Layer.provide(Layer.mergeAll(
    StallingStripe,
    Layer.effect(AutoTopUpStore, makePgAutoTopUpStore),
    Layer.effect(Ledger, makePgLedger),
    Layer.effect(Outbox, makePgOutbox)
  )),
  Layer.provide(PgClient.layer({
    url: Redacted.make(process.env.DATABASE_URL!),
    maxConnections: 2,
    applicationName: "tollgate-test-auto-top-up-worker"
  }))
)

type Command = { readonly lowBalance: OutboxMessage } | { readonly resume: number }

const main = Effect.gen(function*() {
  const autoTopUp = yield* AutoTopUp
  yield* say({ ready: true })
  yield* Effect.promise(async () => {
    for await (const line of createInterface({ input: process.stdin })) {
      const command = JSON.parse(line) as Command
      const reply = "lowBalance" in command
        ? Effect.map(autoTopUp.onLowBalance(command.lowBalance, pricing), (outcome) => ({ outcome }))
        : Effect.map(
          autoTopUp.resumeStalled({ startedBefore: command.resume, limit: 10 }),
          (resumed) => ({ resumed })
        )
      await Effect.runPromise(Effect.flatMap(reply, say))
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
