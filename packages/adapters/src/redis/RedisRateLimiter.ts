import type { LimitRequest, RateLimitAlgorithm, RateLimitDecision, RateLimitPolicy } from "@tollgate/core"
import { RateLimiter, RateLimiterUnavailable } from "@tollgate/core"
import { Context, Effect, Layer, Metric } from "effect"
import type { Redis } from "ioredis"
import { Cluster } from "ioredis"
import type { DegradedReason, LimiterHealthSnapshot } from "./LimiterHealth.js"
import { limiterDegradedTotal, LimiterHealth } from "./LimiterHealth.js"
import { rateLimitLua, rateLimitSha } from "./RateLimitScript.js"
import { RedisConnection } from "./RedisConnection.js"

export interface RedisRateLimiterOptions {
  readonly client: Redis | Cluster
  /** Put before every counter key (default none). Must not contain braces. */
  readonly keyPrefix?: string
  /** The longest one decision may wait for Redis (default 50 ms). */
  readonly timeoutMs?: number
  /** Calls in flight beyond this fail at once as `overloaded` instead of queueing (default 10,000). */
  readonly maxPending?: number
  /**
   * Counters are kept in Redis this long past the end of their next window (default 1,000 ms),
   * an allowance for gateways whose clocks run behind Redis's. Decisions never depend on it.
   */
  readonly expirySlackMs?: number
}

/** The largest values `RateLimitPolicy` allows; the script's exactness argument relies on them. */
const MAX_LIMIT = 1_000_000_000
const MAX_WINDOW_MS = 31 * 24 * 3_600_000

/**
 * The Redis Cluster hash tag of a key (the part between the first `{` and the next `}`, when
 * not empty), or the whole key: keys with equal tags are in one slot.
 */
export const hashTag = (key: string): string => {
  const open = key.indexOf("{")
  if (open === -1) return key
  const close = key.indexOf("}", open + 1)
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close)
}

const invalid = (limits: ReadonlyArray<LimitRequest>, now: number): string | undefined => {
  if (!Number.isSafeInteger(now) || now < 0) return `now must be a non-negative safe integer, got ${now}`
  for (const { cost, key, policy } of limits) {
    if (!Number.isSafeInteger(cost) || cost < 0) return `cost of ${key} must be a non-negative safe integer`
    if (!Number.isInteger(policy.limit) || policy.limit < 1 || policy.limit > MAX_LIMIT) {
      return `limit of ${policy.name} must be an integer from 1 to ${MAX_LIMIT}`
    }
    if (!Number.isInteger(policy.windowMs) || policy.windowMs < 1 || policy.windowMs > MAX_WINDOW_MS) {
      return `windowMs of ${policy.name} must be an integer from 1 to ${MAX_WINDOW_MS}`
    }
  }
  return undefined
}

const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** One limit's outcome from its two reply elements (`remaining`, `retryAfterMs` or -1); see {@link rateLimitLua}. */
const outcomeOf = (
  policy: RateLimitPolicy,
  cost: number,
  now: number,
  remaining: number,
  retry: number
): RateLimitAlgorithm.LimitOutcome => {
  const impossible = cost > policy.limit
  return {
    name: policy.name,
    limit: policy.limit,
    windowMs: policy.windowMs,
    shadow: policy.shadow,
    exceeded: retry >= 0 || impossible,
    remaining,
    resetMs: policy.windowMs - (now % policy.windowMs),
    retryAfterMs: retry < 0 ? undefined : retry,
    impossible
  }
}

/**
 * The RateLimiter on Redis: every limit of a request is read, decided and, when the request is
 * allowed, written by one Lua script in one round trip ({@link rateLimitLua}, an exact port of
 * `RateLimitAlgorithm.decide`), so it is all or nothing and a refused request consumes nothing.
 * The script is called by EVALSHA; after a SCRIPT FLUSH or a failover (NOSCRIPT) it is sent once
 * with EVAL, which loads it again.
 *
 * Time is the `now` passed in (the gateway's clock), which is what lets the contract suite use
 * explicit times. Gateways whose clocks disagree decide on different windows: a gateway behind by
 * δ sees the previous window δ longer. A stored window newer than the caller's (its clock is
 * behind across a boundary) counts as absent, exactly as in `decide`, so keep the gateways'
 * clocks synchronised (NTP) to well below the shortest window.
 *
 * Failure: every call is bounded by `timeoutMs` on the wall clock (not the fiber's Clock, so a
 * test clock cannot stall it), and at most `maxPending` calls are in flight; past either, the
 * call fails at once with RateLimiterUnavailable and the gateway applies the route's failure
 * policy. The client should not queue offline (see `makeRedisClient`), so nothing accumulates
 * while Redis is down. Each such call is counted by reason in {@link LimiterHealth} and in
 * {@link limiterDegradedTotal}.
 *
 * Redis Cluster: a script may only touch keys of one slot. Tenant-scoped limits (`key`,
 * `project`, `project_route`) all carry the `{project}` tag and always combine in one call;
 * route- and plan-wide counters carry no tag and live in other slots. On a Cluster client a call
 * mixing tags is refused as a defect (splitting it would give up all-or-nothing); on a single
 * server or Sentinel any limits combine.
 */
export const makeRedisRateLimiter = (options: RedisRateLimiterOptions) =>
  Effect.sync(() => {
    const { client } = options
    const prefix = options.keyPrefix ?? ""
    const timeoutMs = options.timeoutMs ?? 50
    const maxPending = options.maxPending ?? 10_000
    const slack = String(options.expirySlackMs ?? 1_000)
    const cluster = client instanceof Cluster
    if (/[{}]/.test(prefix)) throw new Error("the key prefix must not contain braces")

    let pending = 0
    let decisions = 0
    let lastError: string | undefined
    const byReason: Record<DegradedReason, number> = { timeout: 0, unavailable: 0, overloaded: 0 }

    const degrade = (reason: DegradedReason, message: string) => {
      byReason[reason]++
      lastError = message
      return Metric.increment(Metric.tagged(limiterDegradedTotal, "reason", reason)).pipe(
        Effect.zipRight(Effect.fail(new RateLimiterUnavailable({ message })))
      )
    }

    const evaluate = (keysAndArgs: ReadonlyArray<string>, numKeys: number): Promise<unknown> =>
      client.evalsha(rateLimitSha, numKeys, ...keysAndArgs).catch((error: unknown) =>
        isNoScript(error) ? client.eval(rateLimitLua, numKeys, ...keysAndArgs) : Promise.reject(error)
      )

    /** The decision from the script's reply, or a degraded failure when there is none. */
    const decisionOf = (limits: ReadonlyArray<LimitRequest>, now: number, reply: unknown) => {
      const n = limits.length
      const fields = typeof reply === "string" ? reply.split(" ").map(Number) : []
      if (fields.length !== 1 + 2 * n || !fields.every(Number.isSafeInteger)) {
        return degrade("unavailable", "Redis answered the rate-limit script with an unexpected reply")
      }
      decisions++
      const outcomes = new Array<RateLimitAlgorithm.LimitOutcome>(n)
      for (let i = 0; i < n; i++) {
        const { cost, policy } = limits[i]!
        outcomes[i] = outcomeOf(policy, cost, now, fields[1 + 2 * i]!, fields[2 + 2 * i]!)
      }
      return Effect.succeed<RateLimitDecision>({ allowed: fields[0] === 1, outcomes })
    }

    /**
     * One round trip, bounded by `timeoutMs` of wall-clock time and by `maxPending`. A single
     * `Effect.async` with a plain timer rather than `Effect.timeout`: this runs once per request.
     */
    const decide = (limits: ReadonlyArray<LimitRequest>, now: number, keysAndArgs: ReadonlyArray<string>) =>
      Effect.async<RateLimitDecision, RateLimiterUnavailable>((resume) => {
        if (pending >= maxPending) {
          resume(degrade("overloaded", `${pending} Redis calls are pending; not queueing more`))
          return
        }
        pending++
        let settled = false
        const timer = setTimeout(() => {
          settled = true
          resume(degrade("timeout", `Redis did not answer within ${timeoutMs} ms`))
        }, timeoutMs)
        evaluate(keysAndArgs, limits.length).then(
          (reply) => {
            pending--
            if (settled) return
            settled = true
            clearTimeout(timer)
            resume(decisionOf(limits, now, reply))
          },
          (error: unknown) => {
            pending--
            if (settled) return
            settled = true
            clearTimeout(timer)
            resume(degrade("unavailable", error instanceof Error ? error.message : String(error)))
          }
        )
        return Effect.sync(() => {
          settled = true
          clearTimeout(timer)
        })
      })

    // No span per call: this is the hottest path of the gateway, and `Gateway.admit`'s span covers it.
    const consume = (limits: ReadonlyArray<LimitRequest>, now: number) =>
      Effect.suspend((): Effect.Effect<RateLimitDecision, RateLimiterUnavailable> => {
        if (limits.length === 0) return Effect.succeed({ allowed: true, outcomes: [] })
        const problem = invalid(limits, now)
        if (problem !== undefined) return Effect.dieMessage(`RateLimiter.consume: ${problem}`)
        if (cluster) {
          const tag = hashTag(limits[0]!.key)
          const other = limits.find((l) => hashTag(l.key) !== tag)
          if (other !== undefined) {
            return Effect.dieMessage(
              `RateLimiter.consume: ${limits[0]!.key} and ${other.key} are in different Redis Cluster slots; ` +
                "one call can only decide limits that share a hash tag"
            )
          }
        }
        const n = limits.length
        const keysAndArgs = new Array<string>(n + 1)
        let args = `${now} ${slack}`
        for (let i = 0; i < n; i++) {
          const { cost, key, policy } = limits[i]!
          keysAndArgs[i] = prefix + key
          args += ` ${policy.shadow ? -policy.limit : policy.limit} ${policy.windowMs} ${cost}`
        }
        keysAndArgs[n] = args
        return decide(limits, now, keysAndArgs)
      })

    const snapshot = Effect.sync((): LimiterHealthSnapshot => ({
      decisions,
      degraded: byReason.timeout + byReason.unavailable + byReason.overloaded,
      byReason: { ...byReason },
      pending,
      connected: client.status === "ready",
      lastError
    }))

    return { limiter: RateLimiter.of({ consume }), health: LimiterHealth.of({ snapshot }) } as const
  })

/** The limiter over a given client, as a layer of RateLimiter and LimiterHealth. */
export const redisRateLimiterLayer = (
  options: RedisRateLimiterOptions
): Layer.Layer<RateLimiter | LimiterHealth> =>
  Layer.effectContext(
    Effect.map(
      makeRedisRateLimiter(options),
      ({ health, limiter }) => Context.make(RateLimiter, limiter).pipe(Context.add(LimiterHealth, health))
    )
  )

/** The limiter over the gateway's {@link RedisConnection} (`REDIS_URL`, `REDIS_KEY_PREFIX`, `REDIS_TIMEOUT_MS`). */
export const RedisRateLimiterLive: Layer.Layer<RateLimiter | LimiterHealth, never, RedisConnection> = Layer
  .unwrapEffect(
    Effect.map(
      RedisConnection,
      ({ client, keyPrefix, timeoutMs }) => redisRateLimiterLayer({ client, keyPrefix: `${keyPrefix}rl:`, timeoutMs })
    )
  )
