import { assert, describe, it } from "@effect/vitest"
import type { EpochMillis, OffSessionCharge, TopUpCheckout } from "@tollgate/core"
import { PaymentProvider } from "@tollgate/core"
import { Effect, Option, TestClock } from "effect"
import {
  SandboxPaymentControl,
  sandboxPaymentProviderLayer,
  SandboxPaymentProviderLive
} from "../../src/memory/SandboxPaymentProvider.js"
import { cr, projectId, unique } from "../contracts/fixtures.js"

const checkout = (fields: Partial<TopUpCheckout> = {}): TopUpCheckout => ({
  projectId: projectId(),
  credits: cr(5_000),
  amountCents: 1_000,
  idempotencyKey: unique("topup"),
  saveCard: true,
  ...fields
})

const charge = (fields: Partial<OffSessionCharge> = {}): OffSessionCharge => ({
  projectId: projectId(),
  credits: cr(5_000),
  amountCents: 1_000,
  idempotencyKey: unique("auto"),
  ...fields
})

const run = <A, E>(body: Effect.Effect<A, E, PaymentProvider | SandboxPaymentControl>) =>
  Effect.provide(body, SandboxPaymentProviderLive)

describe("SandboxPaymentProvider", () => {
  it.effect("is named sandbox", () =>
    run(Effect.gen(function*() {
      assert.strictEqual((yield* PaymentProvider).name, "sandbox")
    })))

  it.effect("a checkout opens a session on the sandbox page and remembers what it is for", () =>
    run(Effect.gen(function*() {
      const provider = yield* PaymentProvider
      const control = yield* SandboxPaymentControl
      const request = checkout()
      const { sessionId, url } = yield* provider.createTopUpCheckout(request)
      assert.match(sessionId, /^sbx_cs_[0-9a-f]{12}_\d+$/)
      assert.strictEqual(url, `http://localhost:8080/sandbox/checkout/${sessionId}`)
      const session = Option.getOrThrow(yield* control.session(sessionId))
      assert.deepStrictEqual(
        [session.projectId, session.credits, session.amountCents, session.saveCard, session.idempotencyKey],
        [request.projectId, 5_000, 1_000, true, request.idempotencyKey]
      )
      assert.isTrue(Option.isNone(yield* control.session("sbx_cs_0")))
    })))

  it.effect("the same idempotency key returns the same session; another key opens another", () =>
    run(Effect.gen(function*() {
      const provider = yield* PaymentProvider
      const control = yield* SandboxPaymentControl
      const request = checkout()
      const first = yield* provider.createTopUpCheckout(request)
      const again = yield* provider.createTopUpCheckout({ ...request })
      assert.deepStrictEqual(again, first)
      const other = yield* provider.createTopUpCheckout({ ...request, idempotencyKey: unique("topup") })
      assert.notStrictEqual(other.sessionId, first.sessionId)
      assert.deepStrictEqual((yield* control.sessions()).map((s) => s.sessionId), [first.sessionId, other.sessionId])
      const reused = yield* Effect.flip(provider.createTopUpCheckout({ ...request, amountCents: 2_000 }))
      assert.strictEqual(reused._tag, "PaymentProviderError")
      assert.strictEqual((yield* control.sessions()).length, 2)
    })))

  it.effect("the checkout page lives under the configured base URL", () =>
    Effect.gen(function*() {
      const { sessionId, url } = yield* (yield* PaymentProvider).createTopUpCheckout(checkout())
      assert.strictEqual(url, `https://pay.example.test/sandbox/checkout/${sessionId}`)
    }).pipe(Effect.provide(sandboxPaymentProviderLayer({ baseUrl: "https://pay.example.test/" }))))

  it.effect("an off-session charge succeeds, once per idempotency key", () =>
    run(Effect.gen(function*() {
      const provider = yield* PaymentProvider
      const control = yield* SandboxPaymentControl
      const request = charge()
      const first = yield* provider.chargeOffSession(request)
      assert.strictEqual(first.status, "succeeded")
      assert.match(first.paymentId ?? "", /^sbx_pi_[0-9a-f]{12}_\d+$/)
      const replays = yield* Effect.all(
        Array.from({ length: 5 }, () => provider.chargeOffSession({ ...request })),
        { concurrency: "unbounded" }
      )
      assert.isTrue(replays.every((r) => r.status === first.status && r.paymentId === first.paymentId))
      const charges = yield* control.charges()
      assert.strictEqual(charges.length, 1)
      assert.deepStrictEqual(charges[0]!.outcome, first)
      const second = yield* provider.chargeOffSession({ ...request, idempotencyKey: unique("auto") })
      assert.notStrictEqual(second.paymentId, first.paymentId)
      assert.strictEqual((yield* control.charges()).length, 2)
      const reused = yield* Effect.flip(provider.chargeOffSession({ ...request, credits: cr(1) }))
      assert.strictEqual(reused._tag, "PaymentProviderError")
      assert.strictEqual((yield* control.charges()).length, 2)
    })))

  it.effect("a project marked to require its customer gets requires_customer; replays keep their first outcome", () =>
    run(Effect.gen(function*() {
      const provider = yield* PaymentProvider
      const control = yield* SandboxPaymentControl
      const p = projectId()
      const before = charge({ projectId: p })
      const paid = yield* provider.chargeOffSession(before)
      yield* control.requireCustomerFor(p)
      const refusedRequest = charge({ projectId: p })
      const refused = yield* provider.chargeOffSession(refusedRequest)
      assert.deepStrictEqual(refused, {
        status: "requires_customer",
        paymentId: undefined,
        reason: "authentication_required"
      })
      assert.deepStrictEqual(yield* provider.chargeOffSession(refusedRequest), refused)
      assert.deepStrictEqual(yield* provider.chargeOffSession(before), paid)
      assert.strictEqual((yield* provider.chargeOffSession(charge())).status, "succeeded")
      const mine = (yield* control.charges()).filter((c) => c.projectId === p)
      assert.deepStrictEqual(mine.map((c) => c.outcome.status), ["succeeded", "requires_customer"])
    })))

  it.effect("amounts must be positive", () =>
    run(Effect.gen(function*() {
      const provider = yield* PaymentProvider
      const control = yield* SandboxPaymentControl
      const errors = yield* Effect.all([
        Effect.flip(provider.createTopUpCheckout(checkout({ amountCents: 0 }))),
        Effect.flip(provider.createTopUpCheckout(checkout({ amountCents: 9.5 }))),
        Effect.flip(provider.createTopUpCheckout(checkout({ credits: cr(0) }))),
        Effect.flip(provider.chargeOffSession(charge({ amountCents: -1 })))
      ])
      assert.isTrue(errors.every((e) => e._tag === "PaymentProviderError"))
      assert.deepStrictEqual([(yield* control.sessions()).length, (yield* control.charges()).length], [0, 0])
    })))

  it.effect("each layer is its own sandbox", () =>
    Effect.gen(function*() {
      const count = Effect.gen(function*() {
        const provider = yield* PaymentProvider
        yield* provider.createTopUpCheckout(checkout())
        return (yield* (yield* SandboxPaymentControl).sessions()).length
      })
      assert.deepStrictEqual(yield* Effect.all([run(count), run(count)]), [1, 1])
    }))
})

describe("SandboxPaymentProvider listings", () => {
  const everything = { from: 0 as EpochMillis, to: Number.MAX_SAFE_INTEGER as EpochMillis }

  it.effect("retrieves a paid checkout's charge with what it paid for; an unknown charge is none", () =>
    Effect.provide(
      Effect.gen(function*() {
        const provider = yield* PaymentProvider
        const control = yield* SandboxPaymentControl
        const request = checkout({ credits: cr(700), amountCents: 1_400 })
        const { sessionId } = yield* provider.createTopUpCheckout(request)
        const paid = Option.getOrThrow(yield* control.completeCheckout(sessionId))
        assert.deepStrictEqual(
          yield* provider.retrieveCharge!(paid.id),
          Option.some({
            id: paid.id,
            amountCents: 1_400,
            paymentId: paid.paymentId,
            projectId: request.projectId,
            credits: cr(700)
          })
        )
        assert.isTrue(Option.isNone(yield* provider.retrieveCharge!("sbx_pi_none")))
      }),
      sandboxPaymentProviderLayer()
    ))

  it.effect("lists paid checkouts and succeeded charges, their refunds and disputes, within the window", () =>
    run(Effect.gen(function*() {
      const provider = yield* PaymentProvider
      const control = yield* SandboxPaymentControl
      const request = checkout()
      const { sessionId } = yield* provider.createTopUpCheckout(request)
      assert.deepStrictEqual(yield* provider.listPayments!(everything), [])
      const paid = Option.getOrThrow(yield* control.completeCheckout(sessionId))
      assert.deepStrictEqual(yield* control.completeCheckout(sessionId), Option.some(paid))
      assert.isTrue(Option.isNone(yield* control.completeCheckout("sbx_cs_0")))
      yield* control.requireCustomerFor(request.projectId)
      yield* provider.chargeOffSession(charge({ projectId: request.projectId }))
      yield* TestClock.adjust(1_000)
      const auto = yield* provider.chargeOffSession(charge({ amountCents: 700 }))
      const payments = yield* provider.listPayments!(everything)
      assert.deepStrictEqual(
        payments.map((p) => [p.paymentId, p.projectId, p.amountCents, p.credits, p.status]),
        [
          [paid.id, request.projectId, 1_000, 5_000, "succeeded"],
          [auto.paymentId, payments[1]!.projectId, 700, 5_000, "succeeded"]
        ]
      )
      assert.deepStrictEqual(
        (yield* provider.listPayments!({ from: 1_000 as EpochMillis, to: 2_000 as EpochMillis })).map((p) => p.id),
        [auto.paymentId]
      )
      assert.deepStrictEqual(yield* provider.listPayments!({ from: 0 as EpochMillis, to: 1_000 as EpochMillis }), [
        paid
      ])
      const refund = Option.getOrThrow(yield* control.refund(paid.id, 250))
      const dispute = Option.getOrThrow(yield* control.dispute(paid.id, "lost"))
      assert.isTrue(Option.isNone(yield* control.refund("sbx_pi_0", 1)))
      assert.deepStrictEqual(
        (yield* provider.listRefunds!(everything)).map((r) => [r.id, r.paymentId, r.projectId, r.amountCents]),
        [[refund.id, paid.id, request.projectId, 250]]
      )
      assert.deepStrictEqual(
        (yield* provider.listDisputes!(everything)).map((d) => [d.id, d.paymentId, d.status, d.amountCents]),
        [[dispute.id, paid.id, "lost", 1_000]]
      )
    })))
})
