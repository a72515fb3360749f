import { assert, describe, it } from "@effect/vitest"
import type { LimitRequest } from "@tollgate/core"
import { Gateway, RateLimiter, RateLimitPolicy } from "@tollgate/core"
import { Effect, Either, Exit, FastCheck as fc, Fiber, Layer } from "effect"
import type { Redis } from "ioredis"
import { Cluster } from "ioredis"
import { hashTag, makeRedisRateLimiter } from "../../src/redis/RedisRateLimiter.js"
import { unique } from "../contracts/fixtures.js"
import { eventually } from "../support/Probes.js"
import { call, demoTenant, useCases } from "../usecases/support.js"
import { model, redisAvailable, TEST_SLACK_MS, testRedis } from "./RedisHarness.js"

const redis = testRedis("batching")

type Evaluate = (script: string, numKeys: number, ...keysAndArgs: Array<string | Buffer>) => Promise<unknown>

/**
 * A client whose script calls are recorded (their keys and how many decisions each carries) and
 * answered by `answer`, which may never settle (a stalled server).
 */
const scriptClient = (
  answer: (method: "evalshaBuffer" | "evalBuffer", args: Parameters<Evaluate>) => Promise<unknown>
) => {
  const calls: Array<{ readonly keys: ReadonlyArray<string>; readonly decisions: number }> = []
  const recording = (method: "evalshaBuffer" | "evalBuffer"): Evaluate => (...args) => {
    const [, numKeys, ...keysAndArgs] = args
    calls.push({
      keys: keysAndArgs.slice(0, numKeys) as Array<string>,
      decisions: (keysAndArgs[numKeys] as Buffer).readDoubleLE(8)
    })
    return answer(method, args)
  }
  return {
    calls,
    methods: { status: "ready", evalshaBuffer: recording("evalshaBuffer"), evalBuffer: recording("evalBuffer") }
  }
}

/** The real client, with its script calls recorded. */
const recorded = (client: Redis) => {
  const real = client as unknown as Record<"evalshaBuffer" | "evalBuffer", Evaluate>
  const { calls, methods } = scriptClient((method, args) => real[method].apply(client, args))
  return { calls, client: Object.assign(Object.create(client) as Redis, methods) }
}

/** A limiter on the file's client and prefix, with its script calls recorded. */
const recordedLimiter = (maxInFlight: number) =>
  Effect.gen(function*() {
    const { calls, client } = recorded(yield* redis.clientEffect)
    const { limiter } = yield* makeRedisRateLimiter({
      client,
      keyPrefix: redis.prefix,
      expirySlackMs: TEST_SLACK_MS,
      timeoutMs: 2_000,
      maxInFlight
    })
    return { calls, limiter }
  })

/** A server that never answers: every call hangs until `release` fails it (as a dropped connection does). */
const stalledClient = () => {
  const hung: Array<(error: Error) => void> = []
  const { calls, methods } = scriptClient(() => new Promise((_, reject) => hung.push(reject)))
  return {
    calls,
    client: methods as unknown as Redis,
    release: () => hung.splice(0).forEach((reject) => reject(new Error("Connection is closed.")))
  }
}

const policyArb = fc.record({
  limit: fc.integer({ min: 1, max: 5 }),
  windowMs: fc.constantFrom(1, 10, 100, 1_000, 60_000),
  shadow: fc.boolean()
})

const requestArb = fc.record({
  /** Mostly forward a little, sometimes a little back (another gateway's clock). */
  dt: fc.integer({ min: -5, max: 40 }),
  limits: fc.array(
    fc.record({
      key: fc.integer({ min: 0, max: 2 }),
      policy: fc.integer({ min: 0, max: 2 }),
      cost: fc.integer({ min: 0, max: 3 })
    }),
    { minLength: 1, maxLength: 3 }
  )
})

describe.skipIf(!redisAvailable)("RedisRateLimiter batching on Redis", () => {
  it.effect.prop(
    "decisions sent together get exactly the outcomes they would get one after another (admitted and refused on the same counters)",
    {
      policies: fc.array(policyArb, { minLength: 3, maxLength: 3 }),
      start: fc.integer({ min: 0, max: 2 ** 41 }),
      requests: fc.array(requestArb, { minLength: 2, maxLength: 40 }),
      maxInFlight: fc.constantFrom(1, 2, 3)
    },
    ({ maxInFlight, policies, requests, start }) =>
      Effect.gen(function*() {
        const { calls, limiter } = yield* recordedLimiter(maxInFlight)
        const run = unique("batch")
        const named = policies.map((p, i) => new RateLimitPolicy({ name: `p${i}`, scope: "key", ...p }))
        let now = start
        const batch = requests.map((r) => {
          now = Math.max(0, now + r.dt)
          const limits: ReadonlyArray<LimitRequest> = r.limits.map((l) => ({
            key: `{${run}}:k${l.key}`,
            policy: named[l.policy]!,
            cost: l.cost
          }))
          return { limits, now }
        })
        const got = yield* Effect.all(batch.map((r) => limiter.consume(r.limits, r.now)), { concurrency: "unbounded" })
        const expected = model()
        batch.forEach((r, i) => assert.deepStrictEqual(got[i], expected(r.limits, r.now), `request ${i} at ${r.now}`))
        // they went together: the first call took its share of all of them (with one slot, all)
        assert.strictEqual(calls[0]!.decisions, Math.ceil(batch.length / maxInFlight))
        assert.strictEqual(calls.reduce((n, c) => n + c.decisions, 0), batch.length)
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect("a counter shared by a batch is read and written once, and still counts every admitted request", () =>
    Effect.gen(function*() {
      const { calls, limiter } = yield* recordedLimiter(1)
      const key = `{${unique("shared")}}:k`
      const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 30, windowMs: 60_000 })
      const now = 1_700_000_000_000
      const got = yield* Effect.all(
        Array.from({ length: 50 }, () => limiter.consume([{ key, policy: p, cost: 1 }], now)),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(calls.map((c) => c.keys), [[redis.prefix + key]])
      assert.strictEqual(got.filter((d) => d.allowed).length, 30)
      assert.deepStrictEqual(got.map((d) => d.outcomes[0]!.remaining).slice(28, 31), [1, 0, 0])
      const probe = yield* limiter.consume([{ key, policy: p, cost: 0 }], now)
      assert.strictEqual(probe.outcomes[0]!.remaining, 0)
    }))
  it.effect("a call carries at most 4,000 limits (Lua's unpack bounds the MGET), so many requests of many limits still go through", () =>
    Effect.gen(function*() {
      const { calls, limiter } = yield* recordedLimiter(1)
      const run = unique("wide")
      const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 5, windowMs: 60_000 })
      const got = yield* Effect.all(
        Array.from(
          { length: 100 },
          (_, r) =>
            limiter.consume(
              Array.from({ length: 100 }, (_, l) => ({ key: `{${run}}:r${r}:l${l}`, policy: p, cost: 1 })),
              0
            )
        ),
        { concurrency: "unbounded" }
      )
      assert.isTrue(got.every((d) => d.allowed))
      assert.deepStrictEqual(calls.map((c) => c.decisions), [40, 40, 20])
    }))
})

describe("RedisRateLimiter batching when Redis does not answer", () => {
  const p = new RateLimitPolicy({ name: "p", scope: "key", limit: 10, windowMs: 1_000 })
  const TIMEOUT_MS = 30

  it.live("a stalled server holds at most maxPending decisions: queued ones time out and free their place, sent ones when the call fails", () =>
    Effect.gen(function*() {
      const { calls, client, release } = stalledClient()
      const { health, limiter } = yield* makeRedisRateLimiter({
        client,
        timeoutMs: TIMEOUT_MS,
        maxPending: 100,
        maxInFlight: 2
      })
      const wave = (n: number) =>
        Effect.gen(function*() {
          const started = performance.now()
          const results = yield* Effect.all(
            Array.from({ length: n }, (_, i) =>
              Effect.either(limiter.consume([{ key: `k${i}`, policy: p, cost: 1 }], 0))),
            { concurrency: "unbounded" }
          )
          assert.isTrue(results.every(Either.isLeft))
          assert.isBelow(performance.now() - started, TIMEOUT_MS + 250)
          return yield* health.snapshot
        })
      // 40 decisions go out in the two calls allowed, which hang
      const first = yield* wave(40)
      assert.deepStrictEqual(calls.map((c) => c.decisions), [20, 20])
      assert.deepStrictEqual([first.byReason.timeout, first.byReason.overloaded, first.pending], [40, 0, 40])
      // both slots are taken: 60 more queue (bounded by maxPending), the other 40 are refused at once
      const second = yield* wave(100)
      assert.deepStrictEqual([second.byReason.timeout, second.byReason.overloaded, second.pending], [100, 40, 40])
      // the queued ones timed out and left: the next wave gets the same 60 places, no more
      const third = yield* wave(100)
      assert.deepStrictEqual([third.byReason.timeout, third.byReason.overloaded, third.pending], [160, 80, 40])
      assert.strictEqual(calls.length, 2)
      // the connection drops: the two calls fail and release what they carried
      release()
      const drained = yield* eventually(health.snapshot, (s) => s.pending === 0, 2_000)
      assert.deepStrictEqual([drained.pending, drained.degraded], [0, 240])
    }))

  it.live("each decision of a batch that gets no answer is decided by its own route's failure policy", () =>
    Effect.gen(function*() {
      const { calls, client, release } = stalledClient()
      const { limiter } = yield* makeRedisRateLimiter({ client, timeoutMs: 200, maxInFlight: 1 })
      yield* Effect.gen(function*() {
        const gateway = yield* Gateway
        const { secret } = yield* demoTenant("pro", 1_000)
        // a first call takes the only slot and fails after 50 ms; the admissions queue behind it
        // and then go out together in the next call, which never returns
        const blocker = yield* Effect.fork(Effect.either(limiter.consume([{ key: "blocker", policy: p, cost: 1 }], 0)))
        yield* Effect.sleep("5 millis")
        setTimeout(release, 50)
        const routes = ["GET /api/search", "POST /api/export", "GET /api/search", "POST /api/export"]
        const exits = yield* Effect.all(
          routes.map((route) => {
            const [method, path] = route.split(" ")
            return Effect.exit(gateway.admit(call(secret, method!, path!)))
          }),
          { concurrency: "unbounded" }
        )
        assert.isTrue(Either.isLeft(yield* Fiber.join(blocker)))
        assert.deepStrictEqual(calls.map((c) => c.decisions), [1, 4])
        exits.forEach((exit, i) => {
          if (routes[i]!.startsWith("GET")) {
            assert.isTrue(Exit.isSuccess(exit) && exit.value.limiter === "degraded_open", `${i}: fail-open`)
          } else {
            const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
            assert.deepStrictEqual(
              [error?._tag, (error as { dependency?: string } | undefined)?.dependency],
              ["DependencyUnavailable", "rate_limiter"],
              `${i}: fail-closed`
            )
          }
        })
      }).pipe(Effect.provide(useCases(Layer.succeed(RateLimiter, limiter))))
      release()
    }))

  it.live("a reply that does not fit the batch fails each of its decisions as unavailable", () =>
    Effect.gen(function*() {
      const { methods } = scriptClient(() => Promise.resolve(Buffer.alloc(8)))
      const { health, limiter } = yield* makeRedisRateLimiter({ client: methods as unknown as Redis })
      const results = yield* Effect.all(
        [0, 1, 2].map((i) => Effect.either(limiter.consume([{ key: `k${i}`, policy: p, cost: 1 }], 0))),
        { concurrency: "unbounded" }
      )
      assert.isTrue(results.every(Either.isLeft))
      assert.strictEqual((yield* health.snapshot).byReason.unavailable, 3)
    }))

  it.live("on a Cluster client only decisions of one hash tag share a call", () =>
    Effect.gen(function*() {
      const cluster = new Cluster([{ host: "127.0.0.1", port: 1 }], { lazyConnect: true })
      const { calls, methods } = scriptClient(() => new Promise(() => undefined))
      Object.assign(cluster, { evalshaBuffer: methods.evalshaBuffer, evalBuffer: methods.evalBuffer })
      const { limiter } = yield* makeRedisRateLimiter({ client: cluster, timeoutMs: TIMEOUT_MS, maxInFlight: 1 })
      yield* Effect.all(
        ["a", "b", "a", "c", "b", "a"].map((project, i) =>
          Effect.either(limiter.consume([{ key: `{${project}}:k${i}`, policy: p, cost: 1 }], 0))
        ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        calls.map((c) => [new Set(c.keys.map(hashTag)).size, c.decisions]),
        [[1, 3], [1, 2], [1, 1]]
      )
      cluster.disconnect()
    }))
})
