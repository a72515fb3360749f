import { assert, describe, it } from "@effect/vitest"
import { makeMemoryLedger, MemoryStackLive } from "@tollgate/adapters"
import type { Credits, EventId, HoldId, IdempotencyKey, ProjectId } from "@tollgate/core"
import { Billing, BillingInbox, expiredAccount, Ledger, LedgerUnavailable } from "@tollgate/core"
import { Duration, Effect, Layer, Logger, LogLevel, Metric, Option, TestClock } from "effect"
import { EventTranslator } from "../src/EventTranslator.js"
import { processInbox, sweepGrants, sweepHolds, sweepReplays, WorkerLive } from "../src/Worker.js"
import { WorkerConfig } from "../src/WorkerConfig.js"
import { eventsDead, holdsExpired, stepFailures } from "../src/WorkerMetrics.js"
import { checkoutCompleted } from "./support.js"

const project = "demo-basic" as ProjectId

/** Every port in memory plus the billing use case, fresh per test. */
const StackLive = Billing.Default.pipe(Layer.provideMerge(MemoryStackLive))

/** One running worker reading sandbox events; `Layer.fresh` makes each use a worker of its own. */
const Worker = WorkerLive.pipe(Layer.provide(EventTranslator.Sandbox))

/** Runs `body` while the given workers run over the test's stack; they stop when it ends. */
const whileRunning = <A, E, R>(workers: Layer.Layer<never, never, any>, body: Effect.Effect<A, E, R>) =>
  body.pipe(Effect.provide(workers))

const grant = (amount: number, key: string, expiresAt?: number) =>
  Effect.flatMap(Ledger, (ledger) =>
    ledger.grant({
      idempotencyKey: key as IdempotencyKey,
      projectId: project,
      amount: amount as Credits,
      source: expiresAt === undefined ? "purchase" : "promotion",
      expiresAt
    }))

const hold = (amount: number, key: string, expiresAt: number) =>
  Effect.flatMap(
    Ledger,
    (ledger) =>
      ledger.hold({ idempotencyKey: key as IdempotencyKey, projectId: project, amount: amount as Credits, expiresAt })
  )

const available = Effect.map(Effect.flatMap(Ledger, (ledger) => ledger.balance(project)), (b) => b.available)
const holdStatus = (id: HoldId) => Effect.map(Effect.flatMap(Ledger, (ledger) => ledger.getHold(id)), (h) => h.status)
const counter = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

describe("WorkerLive", () => {
  it.effect("expires a hold past its deadline; its credit is available again, once", () =>
    Effect.gen(function*() {
      yield* grant(10, "g1")
      const { hold: held } = yield* hold(10, "h1", 5_000)
      const expiredBefore = yield* counter(holdsExpired)
      yield* whileRunning(
        Worker,
        Effect.gen(function*() {
          assert.strictEqual(yield* available, 0)
          yield* TestClock.adjust("4 seconds")
          assert.strictEqual(yield* holdStatus(held.id), "pending")
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual(yield* holdStatus(held.id), "expired")
          assert.strictEqual(yield* available, 10)
          yield* TestClock.adjust("30 seconds")
          const balance = yield* (yield* Ledger).balance(project)
          assert.deepStrictEqual([balance.available, balance.balance, balance.pending], [10, 10, 0])
        })
      )
      assert.strictEqual((yield* counter(holdsExpired)) - expiredBefore, 1)
    }).pipe(Effect.provide(StackLive)))

  it.effect("expires a lot past its end at the next grant sweep", () =>
    Effect.gen(function*() {
      yield* grant(100, "promo", 30_000)
      yield* grant(5, "bought")
      yield* whileRunning(
        Worker,
        Effect.gen(function*() {
          const ledger = yield* Ledger
          yield* TestClock.adjust("59 seconds")
          // past its end the lot no longer counts as available, but is not swept yet
          assert.strictEqual(yield* available, 5)
          assert.strictEqual((yield* ledger.balance(project)).balance, 105)
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual((yield* ledger.balance(project)).balance, 5)
          assert.strictEqual(yield* ledger.accountBalance(expiredAccount), 100n)
        })
      )
    }).pipe(Effect.provide(StackLive)))

  it.effect("applies a sandbox checkout once, stored twice, under two events, with two workers running", () =>
    Effect.gen(function*() {
      const inbox = yield* BillingInbox
      const ledger = yield* Ledger
      yield* whileRunning(
        Layer.merge(Worker, Layer.fresh(Worker)),
        Effect.gen(function*() {
          const event = checkoutCompleted("evt_cs_1", { metadata: { credits: "250" } })
          assert.strictEqual(yield* inbox.store(event, 0), "stored")
          assert.strictEqual(yield* inbox.store(event, 0), "duplicate")
          // the same payment announced by a second event (a redelivery under a new id)
          yield* inbox.store(checkoutCompleted("evt_cs_2", { metadata: { credits: "250" } }), 0)
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual((yield* ledger.balance(project)).balance, 250)
          for (const id of ["evt_cs_1", "evt_cs_2"]) {
            const stored = Option.getOrThrow(yield* inbox.get(id as EventId))
            assert.deepStrictEqual([stored.status, stored.attempts], ["processed", 1])
          }
          yield* TestClock.adjust("2 minutes")
          assert.strictEqual((yield* ledger.balance(project)).balance, 250)
          assert.strictEqual(yield* (yield* Ledger).accountBalance(expiredAccount), 0n)
        })
      )
    }).pipe(Effect.provide(StackLive)))

  it.effect("a ledger outage does not stop the loops: holds and events are handled once it ends", () => {
    const outage = { on: false }
    const down = <A>(effect: Effect.Effect<A, any>) =>
      Effect.suspend(() => outage.on ? new LedgerUnavailable({ message: "connection refused" }) : effect)
    const FlakyLedger = Layer.effect(
      Ledger,
      Effect.map(makeMemoryLedger, (ledger) =>
        Ledger.of({
          ...ledger,
          grant: (request) => down(ledger.grant(request)),
          expireHolds: (now) => down(ledger.expireHolds(now)),
          expireGrants: (now) => down(ledger.expireGrants(now))
        }))
    )
    const FlakyStackLive = Billing.Default.pipe(Layer.provideMerge(Layer.merge(MemoryStackLive, FlakyLedger)))
    return Effect.gen(function*() {
      yield* grant(10, "g1")
      const { hold: held } = yield* hold(10, "h1", 2_000)
      const inbox = yield* BillingInbox
      const failuresBefore = yield* counter(Metric.tagged(stepFailures, "step", "sweep_holds"))
      outage.on = true
      yield* whileRunning(
        Worker,
        Effect.gen(function*() {
          yield* inbox.store(checkoutCompleted("evt_cs_9", { payment_intent: "pi_9", metadata: { credits: "50" } }), 0)
          yield* TestClock.adjust("5 seconds")
          assert.strictEqual(yield* holdStatus(held.id), "pending")
          assert.isAtLeast((yield* counter(Metric.tagged(stepFailures, "step", "sweep_holds"))) - failuresBefore, 5)
          const failed = Option.getOrThrow(yield* inbox.get("evt_cs_9" as EventId))
          assert.deepStrictEqual([failed.status, failed.lastError], ["pending", "connection refused"])

          outage.on = false
          yield* TestClock.adjust("1 second")
          assert.strictEqual(yield* holdStatus(held.id), "expired")
          assert.strictEqual(yield* available, 10)
          // the event waits out its retry delay, then is applied
          yield* TestClock.adjust("30 seconds")
          assert.strictEqual(Option.getOrThrow(yield* inbox.get("evt_cs_9" as EventId)).status, "processed")
          assert.strictEqual(yield* available, 60)
        })
      )
    }).pipe(Effect.provide(FlakyStackLive), Logger.withMinimumLogLevel(LogLevel.None))
  })

  it.effect("honours the configured intervals", () =>
    Effect.gen(function*() {
      yield* grant(10, "g1")
      const { hold: held } = yield* hold(10, "h1", 1_000)
      yield* whileRunning(
        Worker.pipe(Layer.provide(WorkerConfig.layer({ holdSweepInterval: Duration.seconds(10) }))),
        Effect.gen(function*() {
          yield* TestClock.adjust("9 seconds")
          assert.strictEqual(yield* holdStatus(held.id), "pending")
          yield* TestClock.adjust("1 second")
          assert.strictEqual(yield* holdStatus(held.id), "expired")
        })
      )
    }).pipe(Effect.provide(StackLive)))
})

describe("worker steps", () => {
  it.effect("each step runs once on its own, for the embedded process and for tests", () =>
    Effect.gen(function*() {
      yield* grant(10, "g1")
      yield* grant(3, "promo", 500)
      yield* hold(4, "h1", 1_000)
      yield* (yield* BillingInbox).store(checkoutCompleted("evt_cs_1", {}), 0)
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* sweepHolds, { count: 1, amount: 4 as Credits })
      assert.deepStrictEqual(yield* sweepGrants, { count: 1, amount: 3 as Credits })
      assert.deepStrictEqual(yield* processInbox, ["applied"])
      assert.deepStrictEqual(yield* processInbox, [])
      assert.strictEqual(yield* available, 510)
    }).pipe(Effect.provide(Layer.merge(StackLive, EventTranslator.Sandbox))))

  it.effect("the replay sweep forgets the records of holds older than the retention, not newer ones or grants", () =>
    Effect.gen(function*() {
      yield* grant(10, "g1")
      yield* hold(4, "h-old", 86_400_000)
      yield* TestClock.adjust("2 hours")
      yield* hold(4, "h-new", 86_400_000)
      assert.strictEqual(yield* sweepReplays, 1)
      assert.strictEqual(yield* sweepReplays, 0)
      assert.strictEqual((yield* hold(4, "h-new", 86_400_000)).code, "exists")
      assert.strictEqual((yield* grant(10, "g1")).code, "exists")
      assert.strictEqual((yield* hold(1, "h-old", 86_400_000)).code, "created")
    }).pipe(Effect.provide(Layer.merge(StackLive, WorkerConfig.layer({ replayRetention: Duration.hours(1) })))))

  it.effect("an event that fails the configured number of attempts is parked as dead and counted", () => {
    const DownLedger = Layer.effect(
      Ledger,
      Effect.map(
        makeMemoryLedger,
        (ledger) => Ledger.of({ ...ledger, grant: () => new LedgerUnavailable({ message: "connection refused" }) })
      )
    )
    return Effect.gen(function*() {
      const inbox = yield* BillingInbox
      yield* inbox.store(checkoutCompleted("evt_cs_dead", {}), 0)
      const deadBefore = yield* counter(eventsDead)
      assert.deepStrictEqual(yield* processInbox, ["failed"])
      yield* TestClock.adjust("31 seconds")
      assert.deepStrictEqual(yield* processInbox, ["dead"])
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* processInbox, [])
      const dead = Option.getOrThrow(yield* inbox.get("evt_cs_dead" as EventId))
      assert.deepStrictEqual([dead.status, dead.attempts, dead.lastError], ["dead", 2, "connection refused"])
      assert.strictEqual((yield* counter(eventsDead)) - deadBefore, 1)
    }).pipe(
      Effect.provide(Layer.mergeAll(
        Billing.Default.pipe(Layer.provideMerge(Layer.merge(MemoryStackLive, DownLedger))),
        EventTranslator.Sandbox,
        WorkerConfig.layer({ maxAttempts: 2 })
      )),
      Logger.withMinimumLogLevel(LogLevel.None)
    )
  })
})
