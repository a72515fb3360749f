import { assert, describe, it } from "@effect/vitest"
import type { ApiKeyId, ProjectId, RouteId } from "@tollgate/core"
import {
  ApiKeyFormat,
  Catalog,
  demoContributor,
  earningsAccount,
  Gateway,
  KeyIssuer,
  Ledger,
  LedgerUnavailable,
  Outbox,
  RateLimiter,
  RateLimiterUnavailable,
  RateLimitPolicy,
  revenueAccount,
  Route,
  UsageLog
} from "@tollgate/core"
import { Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import { makeMemoryLedger } from "../../src/memory/MemoryLedger.js"
import { sumOfAccounts } from "../contracts/LedgerContract.js"
import { call, demoTenant, useCases, UseCasesLive } from "./support.js"

const refusal = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? (exit.cause.error as { _tag: string; code: string }) : undefined

const usageOf = (projectId: ProjectId) =>
  Effect.flatMap(UsageLog, (u) => u.list({ projectId, from: 0, to: Number.MAX_SAFE_INTEGER }, { limit: 100 }))

/** The in-memory ledger with some of its operations replaced (each given the real ledger). */
const memoryLedgerWith = (
  change: (ledger: Ledger["Type"]) => Partial<Ledger["Type"]>
) => Layer.effect(Ledger, Effect.map(makeMemoryLedger, (ledger) => ({ ...ledger, ...change(ledger) })))

/**
 * Runs `effect` while the test clock moves forward in steps of 5 ms until it ends (at most
 * `limitMs`): a single adjustment can pass before a forked fiber has begun to sleep.
 */
const withClockRunning = <A, E, R>(effect: Effect.Effect<A, E, R>, limitMs = 2_000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (let t = 0; t < limitMs; t += 5) {
      if (Option.isSome(yield* Fiber.poll(fiber))) break
      yield* TestClock.adjust("5 millis")
    }
    return yield* Fiber.await(fiber)
  })

describe("Gateway.admit and settle", () => {
  it.effect("refuses missing, malformed, unknown and revoked keys with 401 codes before any lookup succeeds", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { key, secret } = yield* demoTenant("basic", 100)
      const forged = secret.slice(0, -1) + (secret.endsWith("A") ? "B" : "A")
      const unknown = (yield* ApiKeyFormat.generateApiKey("test")).secret
      const codes = []
      for (const credential of [undefined, "", "Bearer nonsense", forged, unknown]) {
        codes.push(refusal(yield* Effect.exit(gateway.admit(call(credential, "GET", "/api/search?q=x"))))?.code)
      }
      assert.deepStrictEqual(codes, ["missing_key", "missing_key", "malformed_key", "malformed_key", "unknown_key"])
      yield* (yield* KeyIssuer).revoke(key.id)
      const revoked = yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/search")))
      assert.strictEqual(refusal(revoked)?.code, "revoked_key")
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("a rotated key keeps working through its grace period, then stops; the new key works", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { key, projectId, secret } = yield* demoTenant("basic", 100)
      const rotated = yield* (yield* KeyIssuer).rotate(key.id, 60_000)
      assert.strictEqual(rotated.previous.rotatedTo, rotated.next.id)
      assert.strictEqual((yield* gateway.admit(call(secret, "GET", "/api/search"))).project.id, projectId)
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual(
        refusal(yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/search"))))?.code,
        "expired_key"
      )
      assert.strictEqual((yield* gateway.admit(call(rotated.secret, "GET", "/api/search"))).key.id, rotated.next.id)
      const again = yield* Effect.exit((yield* KeyIssuer).rotate(key.id, 1_000))
      assert.strictEqual(refusal(again)?._tag, "KeyConflict")
      const missing = yield* Effect.exit((yield* KeyIssuer).rotate("key_missing" as ApiKeyId, 1_000))
      assert.strictEqual(refusal(missing)?._tag, "KeyNotFound")
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("unknown routes and unknown datasets are 404s that take no credit", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("pro", 100)
      const noRoute = yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/searchx")))
      assert.strictEqual(refusal(noRoute)?.code, "route_not_found")
      const noDataset = yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/datasets/nope/rows")))
      assert.strictEqual(refusal(noDataset)?.code, "unknown_dataset")
      const badEscape = yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/datasets/%E0%A4%A/rows")))
      assert.strictEqual(refusal(badEscape)?._tag, "RouteNotFound")
      assert.strictEqual((yield* (yield* Ledger).balance(projectId)).available, 100)
      // the route is known, so an unknown dataset is recorded against it; an unknown route has nothing to attribute
      const rows = (yield* usageOf(projectId)).records
      assert.deepStrictEqual(rows.map((r) => [r.routeId, r.status, r.outcome, r.refusal, r.credits]), [
        ["dataset-query", 404, "refused", "unknown_dataset", 0],
        ["dataset-query", 404, "refused", "unknown_dataset", 0]
      ])
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("a category outside the plan is refused with the cheapest plan that allows it, and recorded", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("free", 100)
      const exportCall = refusal(yield* Effect.exit(gateway.admit(call(secret, "POST", "/api/export"))))
      assert.deepStrictEqual(
        [exportCall?.code, (exportCall as any)?.upgradeTo?.id, (exportCall as any)?.category],
        ["not_entitled", "pro", "export"]
      )
      const queryCall = refusal(yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/datasets/weather-eu/rows"))))
      assert.strictEqual((queryCall as any)?.upgradeTo?.id, "basic")
      const rows = (yield* usageOf(projectId)).records
      assert.deepStrictEqual(rows.map((r) => [r.outcome, r.refusal, r.status, r.credits]), [
        ["refused", "not_entitled", 403, 0],
        ["refused", "not_entitled", 403, 0]
      ])
      assert.strictEqual((yield* (yield* Ledger).balance(projectId)).available, 100)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("over the rate limit is a 429 naming the limit, and reserves no credit", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("free", 100)
      yield* gateway.admit(call(secret, "GET", "/api/search"))
      yield* gateway.admit(call(secret, "GET", "/api/search"))
      const third = refusal(yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/search"))))
      assert.strictEqual(third?.code, "rate_limited")
      assert.strictEqual((third as any).limit, "per_second")
      assert.isAbove((third as any).retryAfterMs, 0)
      const b = yield* (yield* Ledger).balance(projectId)
      assert.deepStrictEqual([b.available, b.pending], [98, 2])
      // a sliding window: the previous second still weighs in until it has fully passed
      yield* TestClock.adjust(`${(third as any).retryAfterMs} millis`)
      assert.isDefined((yield* gateway.admit(call(secret, "GET", "/api/search"))).hold)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("Retry-After is the longest wait among every exceeded limit", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { secret } = yield* demoTenant("free", 100)
      const catalog = yield* Catalog
      const search = Option.getOrThrow(yield* catalog.getRoute("search" as RouteId))
      const perMinute = new RateLimitPolicy({ name: "per_minute", scope: "project_route", limit: 2, windowMs: 60_000 })
      yield* catalog.putRoute(new Route({ ...search, rateLimits: [perMinute] }))
      yield* gateway.admit(call(secret, "GET", "/api/search"))
      yield* gateway.admit(call(secret, "GET", "/api/search"))
      const third = refusal(yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/search")))) as any
      assert.deepStrictEqual(third.limits.filter((l: any) => l.exceeded).map((l: any) => l.name), [
        "per_second",
        "per_minute"
      ])
      assert.strictEqual(third.limit, "per_second")
      assert.isAbove(third.retryAfterMs, 60_000)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("without enough credit the call is a 402 with the balance; nothing moves", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("basic", 4)
      const before = yield* (yield* Ledger).trialBalance
      const r = refusal(yield* Effect.exit(gateway.admit(call(secret, "GET", "/api/datasets/weather-eu/rows"))))
      assert.deepStrictEqual([r?.code, (r as any).required, (r as any).available, (r as any).balance], [
        "insufficient_credits",
        5,
        4,
        4
      ])
      assert.deepStrictEqual(yield* (yield* Ledger).trialBalance, before)
      assert.strictEqual((yield* usageOf(projectId)).records[0]?.refusal, "insufficient_credits")
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("a served call is captured and split between the dataset's contributor and the platform", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const ledger = yield* Ledger
      const { projectId, secret } = yield* demoTenant("basic", 100)
      const ticket = yield* gateway.admit(call(secret, "GET", "/api/datasets/weather-eu/rows?limit=10"))
      assert.deepStrictEqual([ticket.price, ticket.dataset?.id, ticket.hold?.amount], [5, "weather-eu", 5])
      assert.strictEqual((yield* ledger.balance(projectId)).available, 95)
      const settled = yield* gateway.settle(ticket, { status: 200, latencyMs: 12 })
      assert.deepStrictEqual([settled.outcome, settled.charged, settled.balance?.balance], ["captured", 5, 95])
      assert.strictEqual(yield* ledger.accountBalance(earningsAccount(demoContributor)), 1n) // 30 % of 5, rounded down
      assert.strictEqual(yield* ledger.accountBalance(revenueAccount), 4n)
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      const [row] = (yield* usageOf(projectId)).records
      assert.deepStrictEqual(
        [row?.outcome, row?.credits, row?.datasetId, row?.routeId, row?.planId, row?.limiter, row?.latencyMs],
        ["captured", 5, "weather-eu", "dataset-query", "basic", "allowed", 12]
      )
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("the upstream's reported cost lowers the charge and can never raise it", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("pro", 100)
      const low = yield* gateway.settle(yield* gateway.admit(call(secret, "GET", "/api/datasets/weather-eu/a")), {
        status: 200,
        latencyMs: 1,
        reportedCost: 2
      })
      const high = yield* gateway.settle(yield* gateway.admit(call(secret, "GET", "/api/datasets/weather-eu/b")), {
        status: 200,
        latencyMs: 1,
        reportedCost: 1_000
      })
      const junk = yield* gateway.settle(yield* gateway.admit(call(secret, "GET", "/api/datasets/weather-eu/c")), {
        status: 200,
        latencyMs: 1,
        reportedCost: -3
      })
      assert.deepStrictEqual([low.charged, high.charged, junk.charged], [2, 4, 4])
      assert.strictEqual((yield* (yield* Ledger).balance(projectId)).balance, 90)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("an upstream failure, timeout or error status charges nothing", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("pro", 100)
      for (const status of [500, 502, 0, 404]) {
        const s = yield* gateway.settle(yield* gateway.admit(call(secret, "GET", "/api/search")), {
          status,
          latencyMs: 5
        })
        assert.deepStrictEqual([s.outcome, s.charged], ["voided", 0])
      }
      const b = yield* (yield* Ledger).balance(projectId)
      assert.deepStrictEqual([b.balance, b.available, b.pending], [100, 100, 0])
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("a capture after the hold's deadline charges nothing and says why", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("pro", 100)
      const ticket = yield* gateway.admit(call(secret, "GET", "/api/search"))
      yield* TestClock.adjust("2 hours")
      const s = yield* gateway.settle(ticket, { status: 200, latencyMs: 7_200_000 })
      assert.deepStrictEqual([s.outcome, s.charged], ["voided", 0])
      assert.strictEqual((yield* usageOf(projectId)).records[0]?.refusal, "hold_expired")
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("crossing the plan's low-balance threshold queues one top-up prompt", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("free", 22) // threshold 20, search costs 1
      for (let i = 0; i < 2; i++) {
        yield* gateway.settle(yield* gateway.admit(call(secret, "GET", "/api/search")), { status: 200, latencyMs: 1 })
      }
      yield* TestClock.adjust("2 seconds")
      for (let i = 0; i < 2; i++) {
        yield* gateway.settle(yield* gateway.admit(call(secret, "GET", "/api/search")), { status: 200, latencyMs: 1 })
      }
      const messages = yield* (yield* Outbox).claim({ now: Number.MAX_SAFE_INTEGER, limit: 10, leaseMs: 1_000 })
      assert.deepStrictEqual(messages.map((m) => [m.topic, m.projectId, (m.payload as any).available]), [
        ["balance.low", projectId, 19]
      ])
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("when the limiter's store is down, fail-open routes serve (marked degraded) and fail-closed routes refuse", () => {
    const DownLimiter = Layer.succeed(RateLimiter, {
      consume: () => Effect.fail(new RateLimiterUnavailable({ message: "connection refused" }))
    })
    return Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("pro", 100)
      const open = yield* gateway.admit(call(secret, "GET", "/api/search"))
      assert.strictEqual(open.limiter, "degraded_open")
      yield* gateway.settle(open, { status: 200, latencyMs: 1 })
      const closed = refusal(yield* Effect.exit(gateway.admit(call(secret, "POST", "/api/export"))))
      assert.deepStrictEqual([closed?.code, (closed as any).dependency], ["dependency_unavailable", "rate_limiter"])
      const rows = (yield* usageOf(projectId)).records
      assert.deepStrictEqual(rows.map((r) => r.limiter).sort(), ["degraded_closed", "degraded_open"])
      assert.strictEqual((yield* (yield* Ledger).balance(projectId)).balance, 99)
    }).pipe(Effect.provide(useCases(DownLimiter)))
  })

  it.effect("a balance the ledger cannot read after the capture leaves the call settled and charged", () => {
    let balanceDown = false
    const FlakyBalance = memoryLedgerWith((ledger) => ({
      balance: (projectId: ProjectId) =>
        balanceDown ? Effect.fail(new LedgerUnavailable({ message: "read replica down" })) : ledger.balance(projectId)
    }))
    return Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("basic", 100)
      const ticket = yield* gateway.admit(call(secret, "GET", "/api/search?q=x"))
      balanceDown = true
      const settled = yield* gateway.settle(ticket, { status: 200, latencyMs: 3 })
      assert.deepStrictEqual([settled.outcome, settled.charged, settled.balance], ["captured", ticket.price, undefined])
      balanceDown = false
      assert.strictEqual((yield* (yield* Ledger).balance(projectId)).balance, 100 - ticket.price)
    }).pipe(Effect.provide(useCases(FlakyBalance)))
  })

  it.effect("a brief ledger outage is retried (four attempts, 10, 20 and 40 ms apart); a longer one refuses and moves nothing", () => {
    let failures = 0
    const attempts: Array<number> = []
    const FlakyHolds = memoryLedgerWith((ledger) => ({
      hold: (request: Parameters<typeof ledger.hold>[0]) =>
        Effect.flatMap(TestClock.currentTimeMillis, (now) => {
          attempts.push(now)
          if (failures > 0) {
            failures--
            return Effect.fail(new LedgerUnavailable({ message: "primary failing over" }))
          }
          return ledger.hold(request)
        })
    }))
    return Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("basic", 100)
      const before = (yield* (yield* Ledger).balance(projectId)).balance

      failures = 3
      const ticket = yield* withClockRunning(gateway.admit(call(secret, "GET", "/api/search?q=x")))
      assert.isTrue(Exit.isSuccess(ticket))
      const start = attempts[0]!
      assert.deepStrictEqual(attempts.map((t) => t - start), [0, 10, 30, 70])

      attempts.length = 0
      failures = 4
      const exit = yield* withClockRunning(gateway.admit(call(secret, "GET", "/api/search?q=y")))
      assert.strictEqual(attempts.length, 4)
      assert.deepStrictEqual([refusal(exit)?._tag, refusal(exit)?.code], [
        "DependencyUnavailable",
        "dependency_unavailable"
      ])
      if (Exit.isSuccess(ticket)) yield* gateway.settle(ticket.value, { status: 500, latencyMs: 1 })
      assert.strictEqual((yield* (yield* Ledger).balance(projectId)).balance, before)
    }).pipe(Effect.provide(useCases(FlakyHolds)))
  })

  it.effect("a capture whose answer was lost after it committed is retried under its key and charges once", () => {
    let lost = 0
    const captureKeys: Array<string> = []
    const LostAnswers = memoryLedgerWith((ledger) => ({
      capture: (request: Parameters<typeof ledger.capture>[0]) =>
        Effect.flatMap(ledger.capture(request), (result) => {
          captureKeys.push(request.idempotencyKey)
          if (lost > 0) {
            lost--
            return Effect.fail(new LedgerUnavailable({ message: "connection reset after commit" }))
          }
          return Effect.succeed(result)
        })
    }))
    return Effect.gen(function*() {
      const gateway = yield* Gateway
      const { projectId, secret } = yield* demoTenant("basic", 100)
      const ticket = yield* gateway.admit(call(secret, "GET", "/api/search?q=x"))
      lost = 2
      const settled = yield* Effect.flatten(withClockRunning(gateway.settle(ticket, { status: 200, latencyMs: 3 })))
      assert.deepStrictEqual([settled.outcome, settled.charged], ["captured", ticket.price])
      assert.strictEqual(captureKeys.length, 3)
      assert.strictEqual(new Set(captureKeys).size, 1)
      const ledger = yield* Ledger
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 100 - ticket.price)
      assert.strictEqual(yield* ledger.accountBalance(revenueAccount), BigInt(ticket.price))
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
    }).pipe(Effect.provide(useCases(LostAnswers)))
  })

  it.effect("concurrent calls can never together overspend a wallet", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const ledger = yield* Ledger
      const { projectId, secret } = yield* demoTenant("pro", 40) // ten calls at 4 credits
      const results = yield* Effect.all(
        Array.from({ length: 45 }, (_, i) =>
          gateway.admit(call(secret, "GET", `/api/datasets/weather-eu/${i}`)).pipe(
            Effect.flatMap((t) => Effect.zipRight(Effect.yieldNow(), gateway.settle(t, { status: 200, latencyMs: 1 }))),
            Effect.exit
          )),
        { concurrency: "unbounded" }
      )
      const served = results.filter(Exit.isSuccess).length
      const codes = new Set(results.filter(Exit.isFailure).map((e) => refusal(e)?.code))
      assert.strictEqual(served, 10)
      assert.deepStrictEqual([...codes], ["insufficient_credits"])
      const b = yield* ledger.balance(projectId)
      assert.deepStrictEqual([b.balance, b.available, b.pending], [0, 0, 0])
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
    }).pipe(Effect.provide(UseCasesLive)))
})
