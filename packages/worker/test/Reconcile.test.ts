import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive, SandboxPaymentControl, sandboxPaymentProviderLayer } from "@tollgate/adapters"
import type { Credits, ProjectId } from "@tollgate/core"
import { PaymentProvider, Reconciliation, ReconciliationStore, ReconciliationStoreUnavailable } from "@tollgate/core"
import { ConfigProvider, Duration, Effect, Exit, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import {
  previousPeriod,
  ReconcileConfig,
  ReconcileEnvConfig,
  ReconcileLive,
  reconcileNow,
  reconcilePreviousPeriod
} from "../src/Reconcile.js"

const DAY = 86_400_000
const day = Date.UTC(2026, 2, 10)

const withSandbox = Reconciliation.Default.pipe(
  Layer.provideMerge(Layer.merge(MemoryStackLive, sandboxPaymentProviderLayer()))
)

const cannotList = Layer.succeed(PaymentProvider, {
  name: "stripe",
  createTopUpCheckout: () => Effect.die("unused"),
  chargeOffSession: () => Effect.die("unused")
})
const withoutListings = Reconciliation.Default.pipe(
  Layer.provideMerge(MemoryStackLive),
  Layer.provide(cannotList)
)

const runs = Effect.flatMap(ReconciliationStore, (store) => store.list({ limit: 100 })).pipe(
  Effect.map((page) => page.runs.map((r) => ({ from: r.from, to: r.to, status: r.status })))
)

const quiet = Logger.minimumLogLevel(LogLevel.None)

describe("Reconcile", () => {
  it("the previous period is the last complete UTC day by default", () => {
    assert.deepStrictEqual(previousPeriod(day + 5, DAY), { from: day - DAY, to: day })
    assert.deepStrictEqual(previousPeriod(day, DAY), { from: day - DAY, to: day })
    assert.deepStrictEqual(previousPeriod(day + 90_000, 60_000), { from: day + 60_000 - 60_000, to: day + 60_000 })
  })

  it.effect("ReconcileLive reconciles each UTC day shortly after it ends, and only then", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day + 3_600_000)
      const control = yield* SandboxPaymentControl
      const provider = yield* PaymentProvider
      const { sessionId } = yield* provider.createTopUpCheckout({
        projectId: "prj_w" as ProjectId,
        credits: 10 as Credits,
        amountCents: 100,
        idempotencyKey: "k1",
        saveCard: false
      })
      yield* control.completeCheckout(sessionId)
      yield* Effect.gen(function*() {
        yield* TestClock.adjust("20 hours")
        assert.deepStrictEqual(yield* runs, [])
        // 00:10 UTC the next day: the day just ended, with its payment never granted
        yield* TestClock.setTime(day + DAY + 10 * 60_000)
        assert.deepStrictEqual(yield* runs, [{ from: day, to: day + DAY, status: "differences" }])
        yield* TestClock.adjust("1 day")
        assert.deepStrictEqual(yield* runs, [
          { from: day + DAY, to: day + 2 * DAY, status: "clean" },
          { from: day, to: day + DAY, status: "differences" }
        ])
      }).pipe(Effect.provide(ReconcileLive))
    }).pipe(Effect.provide(withSandbox), Effect.provide(quiet)))

  it.effect("WORKER_RECONCILE_MS sets the period; a provider that cannot list gives failed runs, the loop goes on", () =>
    Effect.gen(function*() {
      const options = yield* ReconcileEnvConfig.pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["WORKER_RECONCILE_MS", "60000"]]), { pathDelim: "_" })
        )
      )
      assert.deepStrictEqual(Duration.toMillis(options.period), 60_000)
      assert.deepStrictEqual(Duration.toMillis(options.settle), 6_000)
      const bad = yield* Effect.exit(
        ReconcileEnvConfig.pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["WORKER_RECONCILE_MS", "5"]]), { pathDelim: "_" }))
        )
      )
      assert.isTrue(Exit.isFailure(bad))

      yield* TestClock.setTime(day)
      yield* Effect.gen(function*() {
        yield* TestClock.adjust("3 minutes")
        const stored = yield* runs
        assert.deepStrictEqual(stored.map((r) => r.status), ["failed", "failed", "failed"])
        assert.deepStrictEqual(stored.map((r) => r.from), [day + 60_000, day, day - 60_000])
      }).pipe(Effect.provide(ReconcileLive), Effect.provide(ReconcileConfig.layer(options)))
    }).pipe(Effect.provide(withoutListings), Effect.provide(quiet)))

  it.effect("a run that cannot store its report does not stop the loop", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day)
      let attempts = 0
      const down = Layer.succeed(ReconciliationStore, {
        save: () =>
          Effect.sync(() => attempts++).pipe(Effect.zipRight(new ReconciliationStoreUnavailable({ message: "down" }))),
        get: () => Effect.succeed(Option.none()),
        list: () => Effect.succeed({ runs: [], nextCursor: undefined })
      })
      yield* Effect.gen(function*() {
        yield* TestClock.adjust("3 minutes")
        assert.strictEqual(attempts, 3)
      }).pipe(
        Effect.provide(ReconcileLive),
        Effect.provide(ReconcileConfig.layer({ period: Duration.minutes(1), settle: Duration.seconds(1) })),
        Effect.provide(Reconciliation.Default.pipe(Layer.provide(Layer.mergeAll(MemoryStackLive, cannotList, down))))
      )
    }).pipe(Effect.provide(quiet)))

  it.effect("on demand: a window now, or the previous period", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day + 5_000)
      const now = yield* reconcileNow({ from: day - 7 * DAY, to: day })
      assert.strictEqual(now.status, "clean")
      const previous = yield* reconcilePreviousPeriod
      assert.deepStrictEqual([previous.from, previous.to], [day - DAY, day])
      assert.strictEqual((yield* runs).length, 2)
    }).pipe(Effect.provide(withSandbox), Effect.provide(quiet)))
})
