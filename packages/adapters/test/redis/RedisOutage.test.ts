import { afterAll, assert, describe, it } from "@effect/vitest"
import type { ProjectId } from "@tollgate/core"
import { Gateway, RateLimiter, RateLimitPolicy, UsageLog } from "@tollgate/core"
import { Effect, Exit, Layer, Metric, Redacted } from "effect"
import type { Redis } from "ioredis"
import { limiterDegradedTotal } from "../../src/redis/LimiterHealth.js"
import { rateLimitSha } from "../../src/redis/RateLimitScript.js"
import { makeRedisClient } from "../../src/redis/RedisConnection.js"
import { makeRedisRateLimiter } from "../../src/redis/RedisRateLimiter.js"
import { unique } from "../contracts/fixtures.js"
import { eventually } from "../support/Probes.js"
import { call, demoTenant, useCases } from "../usecases/support.js"
import type { RedisServer } from "./RedisHarness.js"
import { redisAvailable, sparePort, startRedisServer, TEST_SLACK_MS } from "./RedisHarness.js"

const refusal = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? (exit.cause.error as Record<string, unknown>) : undefined

const usageOf = (projectId: ProjectId) =>
  Effect.flatMap(UsageLog, (u) => u.list({ projectId, from: 0, to: Number.MAX_SAFE_INTEGER }, { limit: 100 }))

const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    const result = yield* effect
    return [result, performance.now() - started] as const
  })

const TIMEOUT_MS = 50

/**
 * A Redis of our own on a spare port, killed (or stopped with SIGSTOP) mid-test and started again
 * on the same port; the gateway's client is never recreated.
 */
describe.skipIf(!redisAvailable)("RedisRateLimiter when Redis fails", () => {
  let server: RedisServer | undefined
  afterAll(async () => {
    await server?.kill()
  })

  /** A scoped client on the dedicated server, as the gateway builds it. */
  const gatewayClient = Effect.suspend(() =>
    makeRedisClient(Redacted.make(server!.url), { name: "outage-test", maxReconnectDelayMs: 200 })
  )

  it.live("killed: fail-open routes serve, marked degraded; fail-closed routes refuse 503; a restart recovers", () =>
    Effect.gen(function*() {
      server = yield* Effect.promise(async () => startRedisServer(await sparePort()))
      const client = yield* gatewayClient
      const prefix = `tollgate-test:outage:${unique("p")}:`
      const { health, limiter } = yield* makeRedisRateLimiter({ client, keyPrefix: prefix, timeoutMs: TIMEOUT_MS })
      const layer = useCases(Layer.succeed(RateLimiter, limiter))
      const unavailableBefore = (yield* Metric.value(Metric.tagged(limiterDegradedTotal, "reason", "unavailable")))
        .count

      yield* Effect.gen(function*() {
        const gateway = yield* Gateway
        const { projectId, secret } = yield* demoTenant("pro", 1_000)

        // Redis up: both routes are decided by Redis
        const first = yield* gateway.admit(call(secret, "GET", "/api/search"))
        assert.strictEqual(first.limiter, "allowed")
        assert.strictEqual(first.limits.find((l) => l.name === "per_second")?.remaining, 49)
        yield* gateway.settle(first, { status: 200, latencyMs: 1 })
        assert.strictEqual((yield* gateway.admit(call(secret, "POST", "/api/export"))).limiter, "allowed")

        // Redis killed mid-test
        yield* Effect.promise(() => server!.kill())
        for (let i = 0; i < 5; i++) {
          const [open, openMs] = yield* elapsed(gateway.admit(call(secret, "GET", "/api/search")))
          assert.strictEqual(open.limiter, "degraded_open")
          assert.isBelow(openMs, TIMEOUT_MS + 250)
          yield* gateway.settle(open, { status: 200, latencyMs: 1 })
          const [closed, closedMs] = yield* elapsed(Effect.exit(gateway.admit(call(secret, "POST", "/api/export"))))
          assert.deepStrictEqual(
            [refusal(closed)?._tag, refusal(closed)?.code, refusal(closed)?.dependency],
            ["DependencyUnavailable", "dependency_unavailable", "rate_limiter"]
          )
          assert.isString(refusal(closed)?.message)
          assert.isBelow(closedMs, TIMEOUT_MS + 250)
        }
        const down = yield* health.snapshot
        assert.isFalse(down.connected)
        assert.strictEqual(down.degraded, 10)
        assert.strictEqual(down.pending, 0)
        const unavailableAfter = (yield* Metric.value(Metric.tagged(limiterDegradedTotal, "reason", "unavailable")))
          .count
        assert.isAtLeast(unavailableAfter - unavailableBefore, 10)

        // Redis back on the same port, empty (so the script is gone too: NOSCRIPT, then EVAL)
        server = yield* Effect.promise(() => startRedisServer(server!.port))
        const back = yield* eventually(
          Effect.suspend(() => gateway.admit(call(secret, "GET", "/api/search"))),
          (t) => t.limiter === "allowed",
          10_000
        )
        assert.strictEqual(back.limiter, "allowed")
        assert.strictEqual((yield* gateway.admit(call(secret, "POST", "/api/export"))).limiter, "allowed")
        assert.isTrue((yield* health.snapshot).connected)

        const rows = (yield* usageOf(projectId)).records
        const marks = rows.map((r) => r.limiter)
        assert.strictEqual(marks.filter((m) => m === "degraded_open").length, 5)
        assert.strictEqual(marks.filter((m) => m === "degraded_closed").length, 5)
        assert.isTrue(
          rows.filter((r) => r.limiter === "degraded_closed").every((r) =>
            r.status === 503 && r.refusal === "dependency_unavailable"
          )
        )
      }).pipe(Effect.provide(layer))

      // and the limiter itself answers again, on the same client: nothing was restarted
      const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 1, windowMs: 60_000 })
      const d = yield* limiter.consume([{ key: unique("after"), policy: p, cost: 1 }], Date.now())
      assert.isTrue(d.allowed)
    }).pipe(Effect.scoped))

  it.live("stalled (SIGSTOP): calls give up after the timeout, pending calls stay bounded, and it recovers", () =>
    Effect.gen(function*() {
      server ??= yield* Effect.promise(async () => startRedisServer(await sparePort()))
      const client: Redis = yield* gatewayClient
      const { health, limiter } = yield* makeRedisRateLimiter({
        client,
        keyPrefix: `tollgate-test:stall:${unique("p")}:`,
        timeoutMs: TIMEOUT_MS,
        maxPending: 100,
        expirySlackMs: TEST_SLACK_MS
      })
      const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 1_000_000, windowMs: 60_000 })
      const consume = limiter.consume([{ key: `{${unique("stall")}}:k`, policy: p, cost: 1 }], Date.now())
      assert.isTrue((yield* consume).allowed)

      server!.process.kill("SIGSTOP")
      try {
        const [results, ms] = yield* elapsed(
          Effect.all(Array.from({ length: 500 }, () => Effect.either(consume)), { concurrency: "unbounded" })
        )
        assert.isTrue(results.every((r) => r._tag === "Left"))
        assert.isBelow(ms, TIMEOUT_MS + 500)
        const stalled = yield* health.snapshot
        assert.strictEqual(stalled.byReason.overloaded, 400)
        assert.strictEqual(stalled.byReason.timeout, 100)
        assert.isAtMost(stalled.pending, 100)
        // the client drops a connection that owes replies and stays silent (socket timeout), so what was sent is released
        const drained = yield* eventually(health.snapshot, (s) => s.pending === 0, 5_000)
        assert.strictEqual(drained.pending, 0)
      } finally {
        server!.process.kill("SIGCONT")
      }
      const recovered = yield* eventually(Effect.either(consume), (r) => r._tag === "Right", 10_000)
      assert.strictEqual(recovered._tag, "Right")
    }).pipe(Effect.scoped))

  it.live("after SCRIPT FLUSH the script is sent again (NOSCRIPT, then EVAL) and the counters are intact", () =>
    Effect.gen(function*() {
      server ??= yield* Effect.promise(async () => startRedisServer(await sparePort()))
      const client = yield* gatewayClient
      const { limiter } = yield* makeRedisRateLimiter({
        client,
        keyPrefix: `tollgate-test:noscript:${unique("p")}:`,
        timeoutMs: 2_000,
        expirySlackMs: TEST_SLACK_MS
      })
      const limits = [{
        key: `{${unique("ns")}}:k`,
        policy: new RateLimitPolicy({ name: "p", scope: "key", limit: 3, windowMs: 60_000 }),
        cost: 1
      }]
      const now = 1_700_000_000_000
      assert.strictEqual((yield* limiter.consume(limits, now)).outcomes[0]!.remaining, 2)
      yield* Effect.promise(() => client.script("FLUSH"))
      assert.strictEqual((yield* limiter.consume(limits, now + 1)).outcomes[0]!.remaining, 1)
      const [loaded] = (yield* Effect.promise(() => client.script("EXISTS", rateLimitSha))) as Array<number>
      assert.strictEqual(loaded, 1)
    }).pipe(Effect.scoped))
})
