import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive, SandboxPaymentControl, sandboxPaymentProviderLayer } from "@tollgate/adapters"
import type { Credits, MessageId, OutboxMessage, ProjectId } from "@tollgate/core"
import { AutoTopUp, AutoTopUpStore, chargeIdempotencyKey, Outbox, PaymentProvider } from "@tollgate/core"
import { Effect, FastCheck as fc, Layer, Logger, LogLevel, Ref, TestClock } from "effect"
import { resumeStalledTopUps } from "../src/AutoTopUpLoop.js"

const pricing = { creditPriceCents: 2 }

let messages = 0
const lowBalance = (projectId: ProjectId): OutboxMessage => ({
  id: `low_balance:${projectId}:${++messages}` as MessageId,
  projectId,
  topic: "balance.low",
  payload: { projectId, available: 0, threshold: 100 },
  availableAt: 0,
  attempts: 1
})

/** The sandbox, wrapped to record the most distinct idempotency keys charging at one moment. */
const trackedProvider = (peak: Ref.Ref<number>) =>
  Layer.effect(
    PaymentProvider,
    Effect.gen(function*() {
      const inner = yield* PaymentProvider
      const active = new Map<string, number>()
      return PaymentProvider.of({
        ...inner,
        chargeOffSession: (request) =>
          Effect.acquireUseRelease(
            Effect.flatMap(
              Effect.sync(() => {
                active.set(request.idempotencyKey, (active.get(request.idempotencyKey) ?? 0) + 1)
                return active.size
              }),
              (n) => Ref.update(peak, (p) => Math.max(p, n))
            ),
            // let other fibers run while this charge is "at the provider"
            () => Effect.zipRight(Effect.yieldNow(), inner.chargeOffSession(request)),
            () =>
              Effect.sync(() => {
                const left = (active.get(request.idempotencyKey) ?? 1) - 1
                if (left === 0) active.delete(request.idempotencyKey)
                else active.set(request.idempotencyKey, left)
              })
          )
      })
    })
  )

const stack = (peak?: Ref.Ref<number>) => {
  const sandbox = sandboxPaymentProviderLayer({ baseUrl: "http://checkout.test" })
  const provider = peak === undefined ? sandbox : Layer.provideMerge(trackedProvider(peak), sandbox)
  return AutoTopUp.Default.pipe(Layer.provideMerge(Layer.merge(MemoryStackLive, provider)))
}

const configure = (projectId: ProjectId, amount: number, cap: number) =>
  Effect.flatMap(AutoTopUpStore, (store) =>
    store.configure(projectId, {
      enabled: true,
      thresholdCredits: 100 as Credits,
      amountCredits: amount as Credits,
      monthlyCapCredits: cap as Credits
    }))

describe("AutoTopUp", () => {
  it.effect("a low balance charges the configured amount off-session under the attempt's key", () =>
    Effect.gen(function*() {
      const autoTopUp = yield* AutoTopUp
      const control = yield* SandboxPaymentControl
      const p = "prj_auto_1" as ProjectId
      yield* configure(p, 500, 5_000)
      assert.strictEqual(yield* autoTopUp.onLowBalance(lowBalance(p), pricing), "charged")
      const charges = yield* control.charges()
      assert.deepStrictEqual(
        charges.map((c) => [c.idempotencyKey, c.credits, c.amountCents, c.outcome.status]),
        [[chargeIdempotencyKey(p, 1), 500, 1_000, "succeeded"]]
      )
      const state = yield* Effect.flatMap(AutoTopUpStore, (s) => s.get(p))
      assert.strictEqual(state.phase, "idle")
      assert.strictEqual(state.monthCharged, 500)
    }).pipe(Effect.provide(stack())))

  it.effect("disabled, above the threshold, or handled before: no charge", () =>
    Effect.gen(function*() {
      const autoTopUp = yield* AutoTopUp
      const control = yield* SandboxPaymentControl
      const p = "prj_auto_2" as ProjectId
      assert.strictEqual(yield* autoTopUp.onLowBalance(lowBalance(p), pricing), "disabled")
      yield* configure(p, 500, 5_000)
      const m = lowBalance(p)
      assert.strictEqual(yield* autoTopUp.onLowBalance(m, pricing), "charged")
      assert.strictEqual(yield* autoTopUp.onLowBalance(m, pricing), "already_handled")
      assert.strictEqual((yield* control.charges()).length, 1)
    }).pipe(Effect.provide(stack())))

  it.effect("requires_customer falls back to a topup.required message with a Checkout link", () =>
    Effect.gen(function*() {
      const autoTopUp = yield* AutoTopUp
      const control = yield* SandboxPaymentControl
      const outbox = yield* Outbox
      const p = "prj_auto_3" as ProjectId
      yield* configure(p, 500, 5_000)
      yield* control.requireCustomerFor(p)
      assert.strictEqual(yield* autoTopUp.onLowBalance(lowBalance(p), pricing), "needs_customer")
      const state = yield* Effect.flatMap(AutoTopUpStore, (s) => s.get(p))
      assert.strictEqual(state.phase, "needs_customer")
      assert.strictEqual(state.monthCharged, 0)
      const [message, ...rest] = yield* outbox.claim({ now: Number.MAX_SAFE_INTEGER, limit: 10, leaseMs: 1 })
      assert.deepStrictEqual(rest, [])
      assert.strictEqual(message?.topic, "topup.required")
      const payload = message?.payload as { checkoutUrl: string; sessionId: string; credits: number }
      const [session] = yield* control.sessions()
      assert.strictEqual(payload.checkoutUrl, session?.url)
      assert.isTrue(payload.checkoutUrl.startsWith("http://checkout.test/sandbox/checkout/"))
      assert.strictEqual(payload.credits, 500)
      assert.isTrue(session?.saveCard)
    }).pipe(Effect.provide(stack())))

  it.effect("a crash between the provider's answer and its record is replayed under the same key: one charge", () =>
    Effect.gen(function*() {
      const control = yield* SandboxPaymentControl
      const store = yield* AutoTopUpStore
      const p = "prj_auto_4" as ProjectId
      yield* configure(p, 300, 5_000)
      // the first worker dies right after the provider answered, before `finish` is recorded
      const crashing = AutoTopUp.Default.pipe(
        Layer.provide(Layer.succeed(AutoTopUpStore, {
          ...store,
          finish: () => Effect.die("worker crashed")
        }))
      )
      const m = lowBalance(p)
      const crashed = yield* Effect.exit(
        Effect.flatMap(AutoTopUp, (a) => a.onLowBalance(m, pricing)).pipe(Effect.provide(crashing))
      )
      assert.isTrue(crashed._tag === "Failure")
      assert.strictEqual((yield* store.get(p)).phase, "charging")
      assert.strictEqual((yield* control.charges()).length, 1)

      // the message comes back after its lease, and the stalled-charge loop finds it too
      const autoTopUp = yield* AutoTopUp
      assert.strictEqual(yield* autoTopUp.onLowBalance(m, pricing), "charged")
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* resumeStalledTopUps, 0)
      const charges = yield* control.charges()
      assert.deepStrictEqual(charges.map((c) => c.idempotencyKey), [chargeIdempotencyKey(p, 1)])
      const state = yield* store.get(p)
      assert.strictEqual(state.phase, "idle")
      assert.strictEqual(state.current?.attempt, 1)
      assert.strictEqual(state.monthCharged, 300)
    }).pipe(Effect.provide(stack())))

  it.effect("the stalled-charge loop replays an attempt a crash left in flight", () =>
    Effect.gen(function*() {
      const control = yield* SandboxPaymentControl
      const store = yield* AutoTopUpStore
      const p = "prj_auto_5" as ProjectId
      yield* configure(p, 300, 5_000)
      // recorded, then the worker died before even calling the provider
      const begun = yield* store.begin(p, { trigger: "msg_x", credits: 300 as Credits, amountCents: 600, now: 0 })
      assert.strictEqual(begun._tag, "Started")
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(yield* resumeStalledTopUps, 1)
      assert.strictEqual(yield* resumeStalledTopUps, 0)
      assert.deepStrictEqual((yield* control.charges()).map((c) => c.idempotencyKey), [chargeIdempotencyKey(p, 1)])
      assert.strictEqual((yield* store.get(p)).phase, "idle")
    }).pipe(Effect.provide(stack())))

  it.effect.prop(
    "concurrent low-balance messages: at most one charge in flight per wallet, the monthly cap never exceeded",
    {
      messages: fc.integer({ min: 1, max: 24 }),
      amount: fc.integer({ min: 1, max: 1_000 }),
      cap: fc.integer({ min: 0, max: 5_000 }),
      replays: fc.integer({ min: 1, max: 3 })
    },
    ({ amount, cap, messages: n, replays }) =>
      Effect.gen(function*() {
        const peak = yield* Ref.make(0)
        yield* Effect.gen(function*() {
          const autoTopUp = yield* AutoTopUp
          const control = yield* SandboxPaymentControl
          const p = "prj_prop" as ProjectId
          yield* configure(p, amount, cap)
          const batch = Array.from({ length: n }, () => lowBalance(p))
          // each message may be delivered several times, all at once
          const deliveries = batch.flatMap((m) => Array.from({ length: replays }, () => m))
          yield* Effect.forEach(deliveries, (m) => autoTopUp.onLowBalance(m, pricing), {
            concurrency: "unbounded",
            discard: true
          })
          const charges = yield* control.charges()
          const keys = charges.map((c) => c.idempotencyKey)
          assert.strictEqual(new Set(keys).size, keys.length)
          const charged = charges.reduce((sum, c) => sum + c.credits, 0)
          assert.isAtMost(charged, cap)
          assert.isAtMost(charges.length, n)
          assert.deepStrictEqual(keys, charges.map((_, i) => chargeIdempotencyKey(p, i + 1)))
          const state = yield* Effect.flatMap(AutoTopUpStore, (s) => s.get(p))
          assert.strictEqual(state.phase, "idle")
          assert.strictEqual(state.monthCharged, charged)
        }).pipe(Effect.provide(stack(peak)))
        assert.isAtMost(yield* Ref.get(peak), 1)
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
    { fastCheck: { numRuns: 200 } }
  )
})
