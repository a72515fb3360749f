import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { RateLimiter, RateLimitPolicy } from "@tollgate/core"
import { Effect } from "effect"
import { unique } from "../contracts/fixtures.js"
import type { Worker } from "./RedisHarness.js"
import { limiterLayer, redisAvailable, redisUrl, spawnWorker, testRedis } from "./RedisHarness.js"

const redis = testRedis("concurrency")

const DAY = 86_400_000

/** A key per second, a project per day, and a project and route per minute (the tightest, at 100). */
const threeLimits = (project: string) => [
  { key: `{${project}}:key:k1:plan:per_second`, limit: 1_000, windowMs: 1_000 },
  { key: `{${project}}:project:plan:per_day`, limit: 5_000, windowMs: DAY },
  { key: `{${project}}:route:export:route:per_minute`, limit: 100, windowMs: 60_000 }
]
const NOW = 1_700_000_000_000 + 1_234

interface Limit {
  readonly key: string
  readonly limit: number
  readonly windowMs: number
}

const request = (l: Limit, i = 0) => ({
  key: l.key,
  policy: new RateLimitPolicy({ name: `l${i}`, scope: "key", limit: l.limit, windowMs: l.windowMs }),
  cost: 1
})

interface Burst {
  readonly admitted: number
  readonly refused: number
  readonly degraded: number
}

/**
 * Exactness under real concurrency: two gateway processes, each with its own connection, fire
 * 500 calls at once at the same counters.
 */
describe.skipIf(!redisAvailable)("RedisRateLimiter across processes", () => {
  let workers: ReadonlyArray<Worker> = []

  beforeAll(async () => {
    workers = [0, 1].map(() => spawnWorker("LimiterWorker.ts", { REDIS_URL: redisUrl, PREFIX: redis.prefix }, 90_000))
    for (const w of workers) assert.deepStrictEqual(await w.next(), { ready: true })
  }, 60_000)

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()))
  })

  /** Both processes fire `callers` calls each, released together. */
  const burst = (limits: ReadonlyArray<Limit>, callers = 500) =>
    Effect.promise(async () => {
      const line = JSON.stringify({ limits, callers, now: NOW })
      for (const w of workers) w.send(line)
      return (await Promise.all(workers.map((w) => w.next()))) as ReadonlyArray<Burst>
    })

  /** What is left of each limit, read with a cost of 0 (which counts nothing). */
  const remaining = (limits: ReadonlyArray<Limit>) =>
    Effect.gen(function*() {
      const decision = yield* (yield* RateLimiter).consume(limits.map((l, i) => ({ ...request(l, i), cost: 0 })), NOW)
      return decision.outcomes.map((o) => o.remaining)
    }).pipe(Effect.provide(limiterLayer(redis)))

  it.live("1,000 concurrent calls from two processes against a limit of 100: exactly 100 admitted", () =>
    Effect.gen(function*() {
      const limit = { key: `{${unique("prj")}}:key:k1:plan:per_day`, limit: 100, windowMs: DAY }
      const results = yield* burst([limit])
      assert.deepStrictEqual(results.map((r) => r.degraded), [0, 0])
      assert.strictEqual(results.reduce((n, r) => n + r.admitted, 0), 100)
      assert.strictEqual(results.reduce((n, r) => n + r.refused, 0), 900)
      assert.deepStrictEqual(yield* remaining([limit]), [0])
    }))

  it.live("three limits, one exhausted: 1,000 concurrent calls from two processes consume none of the three", () =>
    Effect.gen(function*() {
      const project = unique("prj")
      const limits = threeLimits(project)
      // exhaust the third limit alone
      const limiter = limiterLayer(redis)
      yield* Effect.gen(function*() {
        const rl = yield* RateLimiter
        const filled = yield* rl.consume([{ ...request(limits[2]!, 2), cost: 100 }], NOW)
        assert.isTrue(filled.allowed)
      }).pipe(Effect.provide(limiter))
      const results = yield* burst(limits)
      assert.deepStrictEqual(results.map((r) => [r.admitted, r.degraded]), [[0, 0], [0, 0]])
      // nothing was written for the refused calls (the probe below writes: a cost of 0 is admitted)
      const client = yield* redis.clientEffect
      const written = yield* Effect.promise(() =>
        client.exists(redis.prefix + limits[0]!.key, redis.prefix + limits[1]!.key)
      )
      assert.strictEqual(written, 0)
      assert.deepStrictEqual(yield* remaining(limits), [1_000, 5_000, 0])
    }))

  it.live("three limits, the tightest at 100: exactly 100 admitted, and each limit counted exactly 100", () =>
    Effect.gen(function*() {
      const project = unique("prj")
      const limits = threeLimits(project)
      const results = yield* burst(limits)
      assert.strictEqual(results.reduce((n, r) => n + r.admitted, 0), 100)
      assert.deepStrictEqual(yield* remaining(limits), [900, 4_900, 0])
    }))
}, 120_000)
