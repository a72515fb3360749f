import { assert, describe, it } from "@effect/vitest"
import { RateLimiter, RateLimitPolicy } from "@tollgate/core"
import { Cause, Effect, Exit, FastCheck as fc } from "effect"
import { Cluster } from "ioredis"
import { decodeCounter } from "../../src/redis/RateLimitScript.js"
import { hashTag, makeRedisRateLimiter } from "../../src/redis/RedisRateLimiter.js"
import { unique } from "../contracts/fixtures.js"
import { rateLimiterContract } from "../contracts/RateLimiterContract.js"
import { limiterLayer, model, redisAvailable, TEST_SLACK_MS, testRedis } from "./RedisHarness.js"

const redis = testRedis("limiter")

const RedisLimiter = limiterLayer(redis)

const DAY = 86_400_000
const MAX_WINDOW = 31 * DAY

/** Small limits and windows for rolling and retries; huge ones so products pass 2^53 (the bignum path). */
const policyArb = fc.oneof(
  fc.record({
    limit: fc.integer({ min: 1, max: 12 }),
    windowMs: fc.constantFrom(1, 3, 10, 100, 1_000),
    shadow: fc.boolean()
  }),
  fc.record({
    limit: fc.constantFrom(1_000_000_000, 999_999_937, 5_000_000, 3_000_000_000 / 3),
    windowMs: fc.constantFrom(MAX_WINDOW, MAX_WINDOW - 1, 7 * DAY, 2_147_483_647),
    shadow: fc.boolean()
  }),
  fc.record({
    limit: fc.integer({ min: 1, max: 1_000_000_000 }),
    windowMs: fc.integer({ min: 1, max: MAX_WINDOW }),
    shadow: fc.boolean()
  })
)

const stepArb = fc.record({
  /** Mostly forward, sometimes far (a window or more), sometimes a little back (a gateway behind). */
  dt: fc.oneof(
    fc.integer({ min: 0, max: 5 }),
    fc.integer({ min: 0, max: 2_000 }),
    fc.integer({ min: 0, max: 40 * DAY }),
    fc.integer({ min: -20, max: 0 })
  ),
  /** Then, maybe, to just before, at or just after the end of one policy's current window. */
  edge: fc.option(fc.record({ policy: fc.integer({ min: 0, max: 3 }), offset: fc.integer({ min: -2, max: 1 }) })),
  limits: fc.array(
    fc.record({
      key: fc.integer({ min: 0, max: 3 }),
      policy: fc.integer({ min: 0, max: 3 }),
      /** Small, near the limit, above it, or any safe integer. */
      cost: fc.oneof(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 1_000_000_000 }),
        fc.constantFrom(1_000_000_001, 2_000_000_000, Number.MAX_SAFE_INTEGER)
      )
    }),
    { minLength: 1, maxLength: 3 }
  )
})

describe.skipIf(!redisAvailable)("RedisRateLimiter", () => {
  rateLimiterContract("redis", RedisLimiter, { numRuns: 200 })

  it.effect.prop(
    "reproduces RateLimitAlgorithm.decide exactly over random sequences (admits, remaining, reset, retry, shadow caps, rolling)",
    {
      policies: fc.array(policyArb, { minLength: 4, maxLength: 4 }),
      start: fc.integer({ min: 0, max: 2 ** 41 }),
      steps: fc.array(stepArb, { minLength: 1, maxLength: 30 })
    },
    ({ policies, start, steps }) =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const expected = model()
        const run = unique("run")
        const named = policies.map((p, i) => new RateLimitPolicy({ name: `p${i}`, scope: "key", ...p }))
        let now = start
        for (const [index, step] of steps.entries()) {
          now = Math.max(0, now + step.dt)
          if (step.edge !== null) {
            const w = named[step.edge.policy]!.windowMs
            now = Math.max(0, (Math.floor(now / w) + 1) * w + step.edge.offset)
          }
          const limits = step.limits.map((l) => ({
            key: `{${run}}:k${l.key}`,
            policy: named[l.policy]!,
            cost: l.cost
          }))
          const got = yield* limiter.consume(limits, now)
          assert.deepStrictEqual(got, expected(limits, now), `step ${index} at ${now}`)
        }
      }).pipe(Effect.provide(RedisLimiter)),
    { fastCheck: { numRuns: 250 } }
  )

  it.effect("the bignum path rounds exactly where remainders are 1 (1e9 per 31 days)", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const expected = model()
      const L = 1_000_000_000
      const p = new RateLimitPolicy({ name: "monthly", scope: "project", limit: L, windowMs: MAX_WINDOW })
      const t0 = 634 * MAX_WINDOW // a window start
      const W = BigInt(MAX_WINDOW)
      // the smallest d in 0..6 with d * W = target (mod 7): 7 does not divide W, so one exists
      const mod7 = (target: bigint) => [0, 1, 2, 3, 4, 5, 6].find((d) => ((BigInt(d) * W) % 7n + 7n) % 7n === target)!
      const check = (key: string, cost: number, now: number) =>
        Effect.gen(function*() {
          const limits = [{ key, policy: p, cost }]
          const want = expected(limits, now)
          assert.deepStrictEqual(yield* limiter.consume(limits, now), want, `${key} cost ${cost} at ${now - t0}`)
          return want
        })
      // remaining: ceil(previous * (W - e) / W) with previous = 1 at the window's last ms = ceil(1 / W)
      const a = `{${unique("ceil")}}:a`
      yield* check(a, 1, t0)
      assert.strictEqual((yield* check(a, 0, t0 + 2 * MAX_WINDOW - 1)).outcomes[0]!.remaining, L - 1)
      // retryAfter, not before the next window: ceil(7W - D*W, 7) with the remainder 1
      const b = `{${unique("retry1")}}:b`
      const d = mod7(6n)
      yield* check(b, 7, t0)
      const r1 = yield* check(b, L - d, t0 + MAX_WINDOW)
      assert.isTrue(r1.outcomes[0]!.exceeded && r1.outcomes[0]!.retryAfterMs !== undefined)
      // retryAfter, after the next window starts: ceil(E*W, 7) with the remainder 1
      const c = `{${unique("retry2")}}:c`
      const e = mod7(1n)
      yield* check(c, 7, t0)
      const r2 = yield* check(c, L + e - 7, t0 + 5)
      assert.isTrue(r2.outcomes[0]!.exceeded && r2.outcomes[0]!.retryAfterMs! > MAX_WINDOW - 5)
    }).pipe(Effect.provide(RedisLimiter)))

  it.live("a counter expires two windows (plus slack) after its window starts, and holds the in-memory limiter's state", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const client = yield* redis.clientEffect
      const key = `{${unique("ttl")}}:key:k:plan:per_minute`
      const now = 1_700_000_000_000 + 12_345
      yield* limiter.consume([{
        key,
        policy: new RateLimitPolicy({ name: "per_minute", scope: "key", limit: 5, windowMs: 60_000 }),
        cost: 2
      }], now)
      const window = Math.floor(now / 60_000)
      const stored = yield* Effect.promise(() => client.getBuffer(redis.prefix + key))
      assert.deepStrictEqual(decodeCounter(stored!), {
        window,
        current: 2,
        previous: 0,
        expiresAt: (window + 2) * 60_000
      })
      const ttl = yield* Effect.promise(() => client.pttl(redis.prefix + key))
      const expected = (window + 2) * 60_000 - now + TEST_SLACK_MS
      assert.isTrue(ttl <= expected && ttl > expected - 1_000, `pttl ${ttl}`)
      // a later write in the same window keeps the expiry (KEEPTTL) rather than pushing it back
      yield* Effect.sleep("20 millis")
      yield* limiter.consume([{
        key,
        policy: new RateLimitPolicy({ name: "per_minute", scope: "key", limit: 5, windowMs: 60_000 }),
        cost: 1
      }], now + 10_000)
      const later = yield* Effect.promise(() => client.pttl(redis.prefix + key))
      assert.isTrue(later <= ttl - 15, `pttl ${later} after ${ttl}`)
      assert.strictEqual(decodeCounter((yield* Effect.promise(() => client.getBuffer(redis.prefix + key)))!).current, 3)
    }).pipe(Effect.provide(RedisLimiter)))

  it.effect("malformed input is a defect, not an outage (it would otherwise fail open)", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 5, windowMs: 1_000 })
      for (const [cost, now] of [[-1, 0], [1.5, 0], [1, -1], [1, 0.5]] as const) {
        const exit = yield* Effect.exit(limiter.consume([{ key: unique("bad"), policy: p, cost }], now))
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), `cost ${cost} at ${now}`)
      }
      assert.deepStrictEqual(yield* limiter.consume([], 0), { allowed: true, outcomes: [] })
    }).pipe(Effect.provide(RedisLimiter)))
})

describe("Redis Cluster hash tags", () => {
  it("tenant-scoped keys share the project's tag; shared scopes have none", () => {
    assert.strictEqual(hashTag("tollgate:rl:{prj_1}:key:k1:plan:per_second"), "prj_1")
    assert.strictEqual(hashTag("tollgate:rl:{prj_1}:route:search:route:burst"), "prj_1")
    assert.strictEqual(hashTag("tollgate:rl:route:search:route:global"), "tollgate:rl:route:search:route:global")
    assert.strictEqual(hashTag("a{}b{c}"), "a{}b{c}")
    assert.strictEqual(hashTag("a{b"), "a{b")
  })

  it.effect("on a Cluster client a call mixing slots is refused before any I/O", () =>
    Effect.gen(function*() {
      const cluster = new Cluster([{ host: "127.0.0.1", port: 1 }], { lazyConnect: true })
      const { limiter } = yield* makeRedisRateLimiter({ client: cluster })
      const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 5, windowMs: 1_000 })
      const exit = yield* Effect.exit(limiter.consume([
        { key: "{prj_1}:key:k:plan:p", policy: p, cost: 1 },
        { key: "route:search:route:p", policy: p, cost: 1 }
      ], 0))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.include(Cause.pretty(Exit.isFailure(exit) ? exit.cause : Cause.empty), "different Redis Cluster slots")
      cluster.disconnect()
    }))
})
