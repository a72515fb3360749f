/**
 * Rate-limiter throughput on Redis, paired in one run on one server and one client:
 *
 * - ours: `RedisRateLimiter.consume` deciding three limits per call (key per second, project per
 *   day, project and route per minute) in one script; concurrent calls share script calls, as
 *   they do in the gateway (BENCH_MAX_IN_FLIGHT sets how many script calls may be in flight);
 * - rate-limiter-flexible's `RateLimiterRedis.consume`, one limit per call (one script call per
 *   decision, as its users call it);
 * - the floor: a bare EVALSHA of `return 1` from the same client, one per call;
 * - for reference, ours deciding only the first of the three limits.
 *
 * Each is driven by BENCH_CONCURRENCY (50) fibers for BENCH_SECONDS (3) after a 1 s warm-up, in
 * BENCH_ROUNDS (3) rounds whose order rotates; the median round counts. Each round also reports
 * the CPU time per call of this process and of the Redis server (from INFO, so it includes any
 * other load on the server). Then the latency of one decision with nobody else waiting (one
 * caller, in sequence): p50 and p99. The client
 * auto-pipelines (commands of one tick go out together). Every call is admitted, so every
 * decision also writes its three counters; rate-limiter-flexible gets the same per-second limit
 * as our first limit.
 *
 * REDIS_URL picks the server (default redis://127.0.0.1:6379); keys go under a fresh prefix and
 * are deleted afterwards. Prints one JSON line last.
 */
import type { LimitRequest } from "@tollgate/core"
import { RateLimitPolicy } from "@tollgate/core"
import { Effect, Redacted } from "effect"
import type { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import { RateLimiterRedis } from "rate-limiter-flexible"
import { makeRedisClient } from "../src/redis/RedisConnection.js"
import { makeRedisRateLimiter } from "../src/redis/RedisRateLimiter.js"

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50)
/** The limiter's script calls in flight at once (its default unless set). */
const MAX_IN_FLIGHT = process.env.BENCH_MAX_IN_FLIGHT === undefined
  ? undefined
  : Number(process.env.BENCH_MAX_IN_FLIGHT)
const SERIAL_CALLS = Number(process.env.BENCH_SERIAL_CALLS ?? 20_000)
const TENANTS = 1_000
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const prefix = `tollgate-bench:${randomUUID().slice(0, 8)}:`

/**
 * Plan-sized limits, high enough that nothing is refused at these rates. (A limit whose
 * `limit × windowMs` reaches 2^51, e.g. 1e9 per day, takes the script's slower exact path; set
 * BENCH_HUGE_LIMITS=1 to measure that.)
 */
const huge = process.env.BENCH_HUGE_LIMITS === "1"
const perSecond = new RateLimitPolicy({ name: "per_second", scope: "key", limit: 10_000, windowMs: 1_000 })
const perDay = new RateLimitPolicy({
  name: "per_day",
  scope: "project",
  limit: huge ? 1_000_000_000 : 10_000_000,
  windowMs: 86_400_000
})
const perMinute = new RateLimitPolicy({
  name: "per_minute",
  scope: "project_route",
  limit: 1_000_000,
  windowMs: 60_000
})

/** The three limits of tenant `t`, keyed as `LimitKeys.limitKey` would. */
const limitsOf = Array.from({ length: TENANTS }, (_, t): ReadonlyArray<LimitRequest> => [
  { key: `{prj_${t}}:key:key_${t}:plan:per_second`, policy: perSecond, cost: 1 },
  { key: `{prj_${t}}:project:plan:per_day`, policy: perDay, cost: 1 },
  { key: `{prj_${t}}:route:search:route:per_minute`, policy: perMinute, cost: 1 }
])

const firstOf = limitsOf.map((limits) => limits.slice(0, 1))

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const round3 = (n: number) => Math.round(n * 1_000) / 1_000

/** Redis's CPU seconds so far (user + sys), from INFO. */
const redisCpu = (client: Redis) =>
  Effect.promise(async () => {
    const info = await client.info("cpu")
    const field = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? NaN)
    return field("used_cpu_user") + field("used_cpu_sys")
  })

/**
 * Runs `call` from CONCURRENCY fibers for SECONDS after a 1 s warm-up: calls per second, p99
 * latency (ms), and the CPU time per call of this process and of the Redis server (µs).
 */
const measure = (client: Redis, call: (n: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    let done = 0
    let counting = false
    let stop = false
    const latencies: Array<number> = []
    const worker = (w: number) =>
      Effect.gen(function*() {
        let n = w * 7
        while (!stop) {
          const started = performance.now()
          yield* call(n++ % TENANTS)
          if (counting) {
            done++
            if ((done & 15) === 0) latencies.push(performance.now() - started)
          }
        }
      })
    const fibers = yield* Effect.forkAll(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)))
    yield* Effect.sleep("1 second")
    const redisBefore = yield* redisCpu(client)
    const cpuBefore = process.cpuUsage()
    counting = true
    const started = performance.now()
    yield* Effect.sleep(`${SECONDS} seconds`)
    counting = false
    const elapsed = (performance.now() - started) / 1_000
    const cpu = process.cpuUsage(cpuBefore)
    const redisAfter = yield* redisCpu(client)
    stop = true
    yield* fibers.await
    return {
      perSecond: Math.round(done / elapsed),
      p99: percentile(Float64Array.from(latencies).sort(), 99),
      nodeUs: (cpu.user + cpu.system) / done,
      redisUs: ((redisAfter - redisBefore) * 1e6) / done
    }
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const deleteKeys = async (client: Redis) => {
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== "0")
}

const main = Effect.gen(function*() {
  const client = yield* makeRedisClient(Redacted.make(url), { name: "bench-limiter" })
  if (client.status !== "ready") return yield* Effect.dieMessage(`Redis at ${url} is not answering`)
  yield* Effect.addFinalizer(() => Effect.promise(() => deleteKeys(client)))
  const { health, limiter } = yield* makeRedisRateLimiter({
    client,
    keyPrefix: `${prefix}rl:`,
    timeoutMs: 1_000,
    ...(MAX_IN_FLIGHT === undefined ? {} : { maxInFlight: MAX_IN_FLIGHT })
  })
  const flexible = new RateLimiterRedis({
    storeClient: client,
    keyPrefix: `${prefix}rlflx`,
    points: 10_000,
    duration: 1
  })
  const floorSha = (yield* Effect.promise(() => client.script("LOAD", "return 1"))) as string

  const variants = {
    ours: (t: number) => limiter.consume(limitsOf[t]!, Date.now()),
    ours1: (t: number) => limiter.consume(firstOf[t]!, Date.now()),
    flexible: (t: number) => Effect.promise(() => flexible.consume(`prj_${t}`)),
    floor: (_: number) => Effect.promise(() => client.evalsha(floorSha, 0))
  } as const
  type Variant = keyof typeof variants
  const order: Array<Variant> = ["ours", "flexible", "floor", "ours1"]
  const rounds: Record<Variant, Array<{ perSecond: number; p99: number; nodeUs: number; redisUs: number }>> = {
    ours: [],
    ours1: [],
    flexible: [],
    floor: []
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < order.length; i++) {
      const variant = order[(i + r) % order.length]!
      const result = yield* measure(client, variants[variant])
      rounds[variant].push(result)
      console.log(JSON.stringify({
        round: r + 1,
        variant,
        per_s: result.perSecond,
        p99_ms: round3(result.p99),
        client_cpu_us_per_call: round3(result.nodeUs),
        redis_cpu_us_per_call: round3(result.redisUs)
      }))
    }
  }

  // one caller, one decision at a time: the latency of a decision itself
  const serial = new Float64Array(SERIAL_CALLS)
  for (let i = 0; i < SERIAL_CALLS; i++) {
    const started = performance.now()
    yield* variants.ours(i % TENANTS)
    serial[i] = performance.now() - started
  }
  serial.sort()

  const ours = median(rounds.ours.map((x) => x.perSecond))
  const flex = median(rounds.flexible.map((x) => x.perSecond))
  const floor = median(rounds.floor.map((x) => x.perSecond))
  const p99 = round3(percentile(serial, 99))
  const degraded = (yield* health.snapshot).degraded
  const summary = {
    bench: "limiter",
    ours_3limits_per_s: ours,
    flexible_1limit_per_s: flex,
    evalsha_floor_per_s: floor,
    ours_1limit_per_s: median(rounds.ours1.map((x) => x.perSecond)),
    vs_flexible: round3(ours / flex),
    vs_floor: round3(ours / floor),
    p99_ms: p99,
    p50_ms: round3(percentile(serial, 50)),
    p99_ms_at_concurrency: round3(median(rounds.ours.map((x) => x.p99))),
    cpu_us_per_call: Object.fromEntries(
      order.map((v) => [v, {
        client: round3(median(rounds[v].map((x) => x.nodeUs))),
        redis: round3(median(rounds[v].map((x) => x.redisUs)))
      }])
    ),
    concurrency: CONCURRENCY,
    seconds: SECONDS,
    rounds: ROUNDS,
    huge_limits: huge,
    degraded,
    targets: {
      vs_flexible_ge_1: ours >= flex,
      vs_floor_ge_0_8: ours >= 0.8 * floor,
      p99_le_1ms: p99 <= 1
    }
  }
  console.log(JSON.stringify(summary))
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
