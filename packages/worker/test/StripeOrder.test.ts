import { assert, describe, it } from "@effect/vitest"
import { makeMemoryLedger, MemoryStackLive } from "@tollgate/adapters"
import type { IncomingEvent, ProjectId } from "@tollgate/core"
import { Billing, fundingAccount, Ledger, LedgerUnavailable, walletAccount } from "@tollgate/core"
import { Effect, FastCheck as fc, Layer, Logger, LogLevel, TestClock } from "effect"
import { stripeTranslate } from "../src/StripeTranslate.js"
import { charge, dispute, intent, refund, session, stripeEvent } from "./stripeEvents.js"

const projects: ReadonlyArray<ProjectId> = ["demo-basic" as ProjectId, "demo-pro" as ProjectId]

/** A top-up and what happened to it afterwards, in Stripe's order. */
interface Purchase {
  readonly project: ProjectId
  readonly credits: number
  readonly amount: number
  /** Charges list their refunds, or (API 2022-11-15 and later) only the cumulative amount refunded. */
  readonly refundsListed: boolean
  readonly refunds: ReadonlyArray<number>
  readonly dispute: { readonly amount: number; readonly outcome: "open" | "won" | "lost" } | null
}

const purchaseArb: fc.Arbitrary<Purchase> = fc.record({
  project: fc.constantFrom(...projects),
  credits: fc.integer({ min: 1, max: 5_000 }),
  amount: fc.integer({ min: 1, max: 50_000 }),
  refundsListed: fc.boolean(),
  refunds: fc.array(fc.integer({ min: 1, max: 50_000 }), { maxLength: 3 }),
  dispute: fc.option(
    fc.record({
      amount: fc.integer({ min: 1, max: 50_000 }),
      outcome: fc.constantFrom("open" as const, "won" as const, "lost" as const)
    }),
    { nil: null }
  )
}).map((p) => {
  // Stripe refunds at most what was paid, and a dispute covers at most what was not refunded
  let left = p.amount
  const refunds = p.refunds.flatMap((r) => {
    const taken = Math.min(r, left)
    left -= taken
    return taken > 0 ? [taken] : []
  })
  const disputed = p.dispute === null || left === 0 ? null : { ...p.dispute, amount: Math.min(p.dispute.amount, left) }
  return { ...p, refunds, dispute: disputed }
})

/** Every event Stripe sends about the purchases, each once, in the order it happened. */
const timeline = (purchases: ReadonlyArray<Purchase>): ReadonlyArray<IncomingEvent> => {
  let clock = 1_700_000_000
  const at = () => ({ created: clock++ })
  return purchases.flatMap((p, i) => {
    const pi = `pi_${i}`
    const ch = `ch_${i}`
    const metadata = { project_id: p.project, credits: String(p.credits) }
    const paid = (fields: Record<string, unknown>) =>
      charge({ id: ch, amount: p.amount, payment_intent: pi, metadata, ...fields })
    const events = [
      stripeEvent(
        `evt_cs_${i}`,
        "checkout.session.completed",
        session({
          id: `cs_${i}`,
          client_reference_id: p.project,
          payment_intent: pi,
          metadata: { credits: String(p.credits) }
        }),
        at()
      ),
      stripeEvent(`evt_pi_${i}`, "payment_intent.succeeded", intent({ id: pi, amount: p.amount, metadata }), at())
    ]
    let refunded = 0
    const listed: Array<ReturnType<typeof refund>> = []
    p.refunds.forEach((amount, k) => {
      const previous = refunded
      refunded += amount
      listed.unshift(refund({ id: `re_${i}_${k}`, amount, charge: ch, payment_intent: pi }))
      const object = p.refundsListed
        ? paid({ amount_refunded: refunded, refunds: { object: "list", has_more: false, data: [...listed] } })
        : paid({ amount_refunded: refunded, refunds: null })
      events.push(
        stripeEvent(`evt_re_${i}_${k}`, "charge.refunded", object, {
          ...at(),
          previous: { amount_refunded: previous }
        })
      )
    })
    if (p.dispute !== null) {
      const { amount, outcome } = p.dispute
      const opened = (status: string) =>
        dispute({ id: `dp_${i}`, amount, status, charge: paid({ amount_refunded: refunded }) })
      events.push(stripeEvent(`evt_dc_${i}`, "charge.dispute.created", opened("needs_response"), at()))
      if (outcome !== "open") events.push(stripeEvent(`evt_dx_${i}`, "charge.dispute.closed", opened(outcome), at()))
    }
    return events
  })
}

/** How one copy of an event reaches the worker: processed again after a crash, or hit by an outage after `writes` writes. */
interface Delivery {
  readonly event: IncomingEvent
  readonly reprocess: boolean
  readonly outageAfterWrites: number | null
}

const deliveryArb = (event: IncomingEvent): fc.Arbitrary<Delivery> =>
  fc.record({
    reprocess: fc.boolean(),
    outageAfterWrites: fc.option(fc.integer({ min: 0, max: 2 }), { nil: null, freq: 3 })
  }).map((d) => ({ event, ...d }))

/** Purchases, and their events delivered any number of times (none too) in any order. */
const scenarioArb = fc.array(purchaseArb, { minLength: 1, maxLength: 3 }).chain((purchases) => {
  const events = timeline(purchases)
  return fc.tuple(...events.map((e) => fc.array(deliveryArb(e), { maxLength: 3 }))).chain((copies) => {
    const deliveries = copies.flat()
    return fc.shuffledSubarray(deliveries, { minLength: deliveries.length, maxLength: deliveries.length }).map((
      shuffled
    ) => ({ purchases, events, delivered: copies.map((c) => c.length > 0), deliveries: shuffled }))
  })
})

/**
 * Delivers the events to a fresh memory stack whose ledger goes down when a delivery says so,
 * then retries what is left pending until nothing is; the ledger's state at the end.
 */
const settle = (deliveries: ReadonlyArray<Delivery>) => {
  const outage = { writesLeft: Number.POSITIVE_INFINITY }
  const flaky = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.suspend((): Effect.Effect<A, E | LedgerUnavailable> =>
      outage.writesLeft-- <= 0 ? Effect.fail(new LedgerUnavailable({ message: "connection reset" })) : effect
    )
  const FlakyLedger = Layer.effect(
    Ledger,
    Effect.map(makeMemoryLedger, (ledger) =>
      Ledger.of({
        ...ledger,
        grant: (request) => flaky(ledger.grant(request)),
        withdraw: (request) => flaky(ledger.withdraw(request))
      }))
  )
  return Effect.gen(function*() {
    const billing = yield* Billing
    const ledger = yield* Ledger
    for (const d of deliveries) {
      outage.writesLeft = d.outageAfterWrites ?? Number.POSITIVE_INFINITY
      yield* billing.applyBillingEvent(d.event, stripeTranslate)
      outage.writesLeft = Number.POSITIVE_INFINITY
      // a replay by a worker whose lease has ended: it applies nothing twice and marks nothing
      if (d.reprocess) yield* billing.process({ ...d.event, leaseToken: "ended" }, stripeTranslate)
    }
    for (let round = 0;; round++) {
      assert.isBelow(round, 5, "the inbox settles")
      yield* TestClock.adjust("1 minute")
      const outcomes = yield* billing.processPending({ limit: 1_000, leaseMs: 10_000, translate: stripeTranslate })
      if (outcomes.length === 0) break
    }
    const trial = yield* ledger.trialBalance
    const purchaseGrants: Array<string> = []
    for (const project of projects) {
      const { transactions } = yield* ledger.history(project, { limit: 10_000 })
      for (const t of transactions) {
        if (t.idempotencyKey.startsWith("purchase:")) purchaseGrants.push(t.idempotencyKey)
      }
    }
    return {
      wallets: projects.map((p) => trial.get(walletAccount(p)) ?? 0n),
      funding: trial.get(fundingAccount) ?? 0n,
      trial: [...trial.entries()].filter(([, amount]) => amount !== 0n).sort(([a], [b]) => a < b ? -1 : 1),
      sum: [...trial.values()].reduce((s, a) => s + a, 0n),
      purchaseGrants
    }
  }).pipe(Effect.provide(Billing.Default.pipe(Layer.provideMerge(Layer.merge(MemoryStackLive, FlakyLedger)))))
}

/** Each purchase's credits, less what its refunds and an open or lost dispute took. */
const modelWallets = (purchases: ReadonlyArray<Purchase>) =>
  projects.map((project) =>
    purchases.filter((p) => p.project === project).reduce((sum, p) => {
      const share = (part: number) => Math.floor((p.credits * part) / p.amount)
      const refunded = p.refunds.reduce((s, r) => s + r, 0)
      const refundedCredits = p.refundsListed ? p.refunds.reduce((s, r) => s + share(r), 0) : share(refunded)
      const disputed = p.dispute === null || p.dispute.outcome === "won" ? 0 : share(p.dispute.amount)
      return sum + BigInt(p.credits - refundedCredits - disputed)
    }, 0n)
  )

describe("Stripe events in any order", () => {
  it.effect.prop(
    "any duplication, order, crash or outage ends where each distinct event applied once in its true order does",
    { scenario: scenarioArb },
    ({ scenario }) =>
      Effect.gen(function*() {
        const distinct = scenario.events.filter((_, i) => scenario.delivered[i])
        const expected = yield* settle(distinct.map((event) => ({ event, reprocess: false, outageAfterWrites: null })))
        const actual = yield* settle(scenario.deliveries)
        assert.deepStrictEqual(actual.wallets, expected.wallets)
        assert.strictEqual(actual.funding, expected.funding)
        assert.deepStrictEqual(actual.trial, expected.trial)
        assert.strictEqual(actual.sum, 0n)
        assert.strictEqual(
          new Set(actual.purchaseGrants).size,
          actual.purchaseGrants.length,
          "no purchase granted twice"
        )
        if (scenario.delivered.every(Boolean)) {
          assert.deepStrictEqual(actual.wallets, modelWallets(scenario.purchases))
          assert.strictEqual(actual.purchaseGrants.length, scenario.purchases.length)
        }
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
    { fastCheck: { numRuns: 300 } }
  )
})
