import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive } from "@tollgate/adapters"
import type { Credits, EventId, ProjectId, ProviderCharge } from "@tollgate/core"
import { Billing, BillingInbox, Ledger, PaymentProvider, PaymentProviderError } from "@tollgate/core"
import { Effect, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import { EventTranslator, stripeTranslateWith } from "../src/EventTranslator.js"
import { chargeToRetrieve } from "../src/StripeTranslate.js"
import { charge, dispute, refund, stripeEvent } from "./stripeEvents.js"

const project = "demo-basic" as ProjectId

/** A provider that knows some charges, counts what it is asked, and can be down. */
const fakeProvider = (known: ReadonlyArray<ProviderCharge>) => {
  const state = { down: false, asked: [] as Array<string> }
  const provider = PaymentProvider.of({
    name: "stripe",
    createTopUpCheckout: () => Effect.die("not used"),
    chargeOffSession: () => Effect.die("not used"),
    retrieveCharge: (chargeId) =>
      Effect.suspend(() => {
        state.asked.push(chargeId)
        return state.down
          ? Effect.fail(new PaymentProviderError({ message: "stripe: charges.retrieve failed: connection reset" }))
          : Effect.succeed(Option.fromNullable(known.find((c) => c.id === chargeId)))
      })
  })
  return { provider, state }
}

/** A charge of 20.00 for 1000 credits; its metadata is on its payment intent only. */
const known: ProviderCharge = {
  id: "ch_9",
  amountCents: 2000,
  paymentId: "pi_9",
  projectId: project,
  credits: 1000 as Credits
}

/** A dispute of half the charge, with `charge` and `payment_intent` as bare ids, as Stripe sends it. */
const thinDispute = (eventId: string) =>
  stripeEvent(
    eventId,
    "charge.dispute.created",
    dispute({ id: "dp_9", amount: 1000, charge: "ch_9", payment_intent: "pi_9" })
  )

/** A refund of a quarter of the charge; the charge carries no metadata and its intent is a bare id. */
const thinRefund = (eventId: string) =>
  stripeEvent(
    eventId,
    "charge.refunded",
    charge({
      id: "ch_9",
      amount: 2000,
      amount_refunded: 500,
      payment_intent: "pi_9",
      metadata: {},
      refunds: { object: "list", has_more: false, data: [refund({ id: "re_9", amount: 500, status: "succeeded" })] }
    })
  )

const StackLive = Billing.Default.pipe(Layer.provideMerge(MemoryStackLive))

const wallet = Effect.flatMap(Ledger, (ledger) => Effect.map(ledger.balance(project), (b) => b.balance))

describe("Stripe events that only name their charge", () => {
  it("a refund or dispute that does not say what its charge paid for names the charge to retrieve; one that says does not", () => {
    assert.deepStrictEqual(chargeToRetrieve(thinDispute("evt_a")), Option.some("ch_9"))
    assert.deepStrictEqual(chargeToRetrieve(thinRefund("evt_b")), Option.some("ch_9"))
    const fat = stripeEvent(
      "evt_c",
      "charge.dispute.created",
      dispute({ charge: charge({ id: "ch_9", amount: 2000, metadata: { project_id: project, credits: "1000" } }) })
    )
    assert.isTrue(Option.isNone(chargeToRetrieve(fat)))
    assert.isTrue(Option.isNone(chargeToRetrieve(stripeEvent("evt_d", "customer.created", { object: "customer" }))))
  })

  it.effect("a dispute with a bare charge id: the charge is retrieved, the purchase granted and the disputed half taken, once", () =>
    Effect.gen(function*() {
      const { provider, state } = fakeProvider([known])
      const translate = stripeTranslateWith(provider)
      const billing = yield* Billing
      assert.strictEqual(yield* billing.applyBillingEvent(thinDispute("evt_d1"), translate), "applied")
      assert.strictEqual(yield* wallet, 500)
      // Stripe redelivers, and sends the same dispute again under another event id
      assert.strictEqual(yield* billing.applyBillingEvent(thinDispute("evt_d1"), translate), "duplicate")
      assert.strictEqual(yield* billing.applyBillingEvent(thinDispute("evt_d2"), translate), "applied")
      assert.strictEqual(yield* wallet, 500)
      assert.deepStrictEqual(state.asked, ["ch_9", "ch_9"])
    }).pipe(Effect.provide(StackLive)))

  it.effect("a refund whose charge has no metadata: the charge is retrieved and the refunded quarter taken, once", () =>
    Effect.gen(function*() {
      const { provider } = fakeProvider([known])
      const translate = stripeTranslateWith(provider)
      const billing = yield* Billing
      assert.strictEqual(yield* billing.applyBillingEvent(thinRefund("evt_r1"), translate), "applied")
      assert.strictEqual(yield* wallet, 750)
      assert.strictEqual(yield* billing.applyBillingEvent(thinRefund("evt_r2"), translate), "applied")
      assert.strictEqual(yield* wallet, 750)
    }).pipe(Effect.provide(StackLive)))

  it.effect("the provider down: the event fails and is retried, and applies once it answers", () =>
    Effect.gen(function*() {
      const { provider, state } = fakeProvider([known])
      const translate = stripeTranslateWith(provider)
      const billing = yield* Billing
      const inbox = yield* BillingInbox
      state.down = true
      assert.strictEqual(yield* billing.applyBillingEvent(thinDispute("evt_o"), translate), "failed")
      const failed = Option.getOrThrow(yield* inbox.get("evt_o" as EventId))
      assert.deepStrictEqual([failed.status, failed.lastError], [
        "pending",
        "stripe: charges.retrieve failed: connection reset"
      ])
      assert.strictEqual(yield* wallet, 0)
      state.down = false
      yield* TestClock.adjust("31 seconds")
      assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: 5_000, translate }), ["applied"])
      assert.strictEqual(yield* wallet, 500)
    }).pipe(Effect.provide(StackLive), Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("a charge the provider does not know: the event is completed as ignored, moving nothing", () =>
    Effect.gen(function*() {
      const { provider } = fakeProvider([])
      const billing = yield* Billing
      const inbox = yield* BillingInbox
      assert.strictEqual(
        yield* billing.applyBillingEvent(thinDispute("evt_u"), stripeTranslateWith(provider)),
        "ignored"
      )
      assert.strictEqual(Option.getOrThrow(yield* inbox.get("evt_u" as EventId)).status, "processed")
      assert.strictEqual(yield* wallet, 0)
    }).pipe(Effect.provide(StackLive), Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("the worker's Stripe translator asks the PaymentProvider, for provider \"stripe\" only", () =>
    Effect.gen(function*() {
      const { translate } = yield* EventTranslator
      const billing = yield* Billing
      assert.strictEqual(yield* billing.applyBillingEvent(thinDispute("evt_w"), translate), "applied")
      assert.strictEqual(yield* wallet, 500)
      const sandbox = { ...thinDispute("evt_s"), provider: "sandbox" as const }
      assert.strictEqual(yield* billing.applyBillingEvent(sandbox, translate), "ignored")
    }).pipe(
      Effect.provide(
        Layer.merge(
          StackLive,
          EventTranslator.Stripe.pipe(Layer.provide(Layer.succeed(PaymentProvider, fakeProvider([known]).provider)))
        )
      )
    ))
})
