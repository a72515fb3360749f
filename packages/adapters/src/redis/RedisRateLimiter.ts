import type { LimitRequest, RateLimitDecision } from "@tollgate/core"
import { RateLimiter, RateLimiterUnavailable } from "@tollgate/core"
import { Context, Effect, Layer, Metric } from "effect"
import type { Redis } from "ioredis"
import { Cluster } from "ioredis"
import type { DegradedReason, LimiterHealthSnapshot } from "./LimiterHealth.js"
import { limiterDegradedTotal, LimiterHealth } from "./LimiterHealth.js"
import { decodeReply, encodeBatch, rateLimitLua, rateLimitSha } from "./RateLimitScript.js"
import { RedisConnection } from "./RedisConnection.js"

export interface RedisRateLimiterOptions {
  readonly client: Redis | Cluster
  /** Put before every counter key (default none). Must not contain braces. */
  readonly keyPrefix?: string
  /** The longest one decision may wait for Redis, queued or sent (default 50 ms). */
  readonly timeoutMs?: number
  /**
   * Decisions queued or sent and not yet answered beyond this fail at once as `overloaded`
   * instead of queueing (default 10,000): what a stalled Redis can hold in memory.
   */
  readonly maxPending?: number
  /**
   * Script calls in flight at once (per hash tag on a Cluster client; default 2). Decisions that
   * arrive while all are in flight wait and go together in the next call. Two calls in flight let
   * the client prepare one while the server runs the other, instead of the two taking turns;
   * each call then carries fewer decisions. Measured on a loopback server sharing two cores,
   * over two days: 0.86–1.04 × rate-limiter-flexible's decisions per second with 2, 0.68–0.89 ×
   * with 1 (docs/benchmarks.md).
   */
  readonly maxInFlight?: number
  /** The most decisions one script call carries (default 256). */
  readonly maxBatch?: number
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
 * The most limits one script call carries (unless one request has more): the script passes
 * every key to one MGET, and Lua's `unpack` fails past about 8,000 values.
 */
const MAX_BATCH_LIMITS = 4_000

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

/**
 * The Buffer forms (binary replies, see {@link rateLimitLua}) that ioredis defines for every
 * command at run time; its types leave out EVALSHA's and EVAL's. (`callBuffer` would do, but
 * with auto-pipelining it drops the command name.)
 */
interface BufferScripting {
  evalshaBuffer(sha: string, numKeys: number, ...keysAndArgs: ReadonlyArray<string | Buffer>): Promise<unknown>
  evalBuffer(script: string, numKeys: number, ...keysAndArgs: ReadonlyArray<string | Buffer>): Promise<unknown>
}

type Answer = Effect.Effect<RateLimitDecision, RateLimiterUnavailable>

/** One decision waiting for Redis, from `consume` until it is answered, timed out or interrupted. */
interface Waiter {
  readonly limits: ReadonlyArray<LimitRequest>
  readonly now: number
  /** `performance.now()` after which it is answered as a timeout. */
  readonly deadline: number
  /** Cleared once it is answered (or its caller is gone): each waiter is answered once. */
  resume: ((answer: Answer) => void) | undefined
  /** In a script call: it stays pending (and counted against `maxPending`) until that call returns. */
  sent: boolean
}

/** The decisions that may share a script call (all of them; on a Cluster client, those of one hash tag). */
interface Lane {
  readonly tag: string
  queue: Array<Waiter>
  inFlight: number
  scheduled: boolean
}

/** Drops the answered waiters of `list` (which keeps its order) once there are `limit` or more entries. */
const compact = (list: Array<Waiter>, limit: number): Array<Waiter> =>
  list.length < limit ? list : list.filter((w) => w.resume !== undefined)

/**
 * The RateLimiter on Redis: every limit of a request is read, decided and, when the request is
 * allowed, written by one Lua script ({@link rateLimitLua}, an exact port of
 * `RateLimitAlgorithm.decide`), so it is all or nothing and a refused request consumes nothing.
 * The script is called by EVALSHA; after a SCRIPT FLUSH or a failover (NOSCRIPT) it is sent once
 * with EVAL, which loads it again.
 *
 * Batching. Concurrent decisions share script calls: a decision that arrives while no call is
 * in flight (fewer than `maxInFlight`) is sent at the end of the current turn of the event loop,
 * with whatever else arrived in that turn; decisions that arrive while a call is in flight queue
 * and go together in the next call, sent as soon as it returns. A lone caller therefore pays no
 * wait, and under load the per-call cost of the client and the server is shared by up to
 * `maxBatch` decisions. The script decides the requests of a call one after another, each all or
 * nothing, so every decision is the one it would get as a call of its own in that order.
 *
 * Time is the `now` passed in (the gateway's clock), which is what lets the contract suite use
 * explicit times. Gateways whose clocks disagree decide on different windows: a gateway behind by
 * δ sees the previous window δ longer. A stored window newer than the caller's (its clock is
 * behind across a boundary) counts as absent, exactly as in `decide`, so keep the gateways'
 * clocks synchronised (NTP) to well below the shortest window.
 *
 * Failure: every decision is bounded by `timeoutMs` on the wall clock from the moment it arrives,
 * queued or sent (not the fiber's Clock, so a test clock cannot stall it), and at most
 * `maxPending` decisions are queued or in flight; past either, the decision fails at once with
 * RateLimiterUnavailable and the gateway applies its own route's failure policy. A call that
 * fails or returns nonsense fails each of its decisions the same way. The client should not
 * queue offline (see `makeRedisClient`), so nothing accumulates while Redis is down. Each such
 * decision is counted by reason in {@link LimiterHealth} and in {@link limiterDegradedTotal}.
 *
 * Redis Cluster: a script may only touch keys of one slot. Tenant-scoped limits (`key`,
 * `project`, `project_route`) all carry the `{project}` tag and always combine in one call;
 * route- and plan-wide counters carry no tag and live in other slots. On a Cluster client a
 * request mixing tags is refused as a defect (splitting it would give up all-or-nothing), and
 * only requests of one tag share a call; on a single server or Sentinel any limits and any
 * requests combine.
 */
export const makeRedisRateLimiter = (options: RedisRateLimiterOptions) =>
  Effect.sync(() => {
    const { client } = options
    const prefix = options.keyPrefix ?? ""
    const timeoutMs = options.timeoutMs ?? 50
    const maxPending = options.maxPending ?? 10_000
    const maxInFlight = options.maxInFlight ?? 2
    const maxBatch = options.maxBatch ?? 256
    const slack = options.expirySlackMs ?? 1_000
    const cluster = client instanceof Cluster
    const scripting = client as unknown as BufferScripting
    if (/[{}]/.test(prefix)) throw new Error("the key prefix must not contain braces")
    if (!(Number.isInteger(maxInFlight) && maxInFlight >= 1 && Number.isInteger(maxBatch) && maxBatch >= 1)) {
      throw new Error("maxInFlight and maxBatch must be positive integers")
    }

    let pending = 0
    let decisions = 0
    let lastError: string | undefined
    const byReason: Record<DegradedReason, number> = { timeout: 0, unavailable: 0, overloaded: 0 }

    const degrade = (reason: DegradedReason, message: string): Answer => {
      byReason[reason]++
      lastError = message
      return Metric.increment(Metric.tagged(limiterDegradedTotal, "reason", reason)).pipe(
        Effect.zipRight(Effect.fail(new RateLimiterUnavailable({ message })))
      )
    }

    /**
     * Takes `w`'s callback, once: a waiter not sent stops counting against `maxPending` here (a
     * sent one when its call returns).
     */
    const release = (w: Waiter) => {
      const resume = w.resume
      if (resume !== undefined) {
        w.resume = undefined
        if (!w.sent) pending--
      }
      return resume
    }
    const answer = (w: Waiter, result: () => Answer) => release(w)?.(result())

    // Timeouts: every waiter, in arrival order (so by deadline), and one timer for the oldest
    // unanswered. Answers arrive roughly in that order too, so the front is dropped as they do.
    let timeline: Array<Waiter> = []
    let head = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = () => degrade("timeout", `Redis did not answer within ${timeoutMs} ms`)
    const advance = () => {
      while (head < timeline.length && timeline[head]!.resume === undefined) head++
      if (head === timeline.length) {
        timeline = []
        head = 0
      } else if (head >= 1_024 && head * 2 >= timeline.length) {
        timeline = timeline.slice(head)
        head = 0
      }
    }
    const sweep = () => {
      timer = undefined
      const t = performance.now()
      for (; head < timeline.length; head++) {
        const w = timeline[head]!
        if (w.resume !== undefined && w.deadline > t) break
        answer(w, timedOut)
      }
      advance()
      if (head < timeline.length) timer = setTimeout(sweep, Math.max(1, timeline[head]!.deadline - t))
    }

    const evaluate = (keysAndArgs: ReadonlyArray<string | Buffer>, numKeys: number): Promise<unknown> =>
      scripting.evalshaBuffer(rateLimitSha, numKeys, ...keysAndArgs).catch((error: unknown) =>
        isNoScript(error) ? scripting.evalBuffer(rateLimitLua, numKeys, ...keysAndArgs) : Promise.reject(error)
      )

    const lanes = new Map<string, Lane>()
    const laneOf = (tag: string): Lane => {
      let lane = lanes.get(tag)
      if (lane === undefined) {
        lane = { tag, queue: [], inFlight: 0, scheduled: false }
        lanes.set(tag, lane)
      }
      return lane
    }

    /** A Cluster client's lane per hash tag lives while it has work. */
    const retire = (lane: Lane) => {
      if (cluster && lane.queue.length === 0 && lane.inFlight === 0) lanes.delete(lane.tag)
    }

    const scheduleFlush = (lane: Lane) => {
      if (lane.scheduled || lane.inFlight >= maxInFlight || lane.queue.length === 0) return
      lane.scheduled = true
      setImmediate(flush, lane)
    }

    /**
     * Sends one call with the queue (with several call slots, its share spread over the free
     * ones), and leaves the rest for the next turn of the event loop. Calls written together are
     * run together by Redis, which answers all of them after the last; written a turn apart, the
     * first is answered while the server runs the second, so the client prepares one call while
     * the server runs another.
     */
    const flush = (lane: Lane) => {
      lane.scheduled = false
      const { queue } = lane
      const size = Math.min(maxBatch, Math.ceil(queue.length / (maxInFlight - lane.inFlight)))
      const batch: Array<Waiter> = []
      let i = 0
      let limits = 0
      for (; i < queue.length && batch.length < size; i++) {
        const w = queue[i]!
        if (w.resume === undefined) continue
        if (batch.length > 0 && limits + w.limits.length > MAX_BATCH_LIMITS) break
        limits += w.limits.length
        w.sent = true
        batch.push(w)
      }
      lane.queue = i === queue.length ? [] : queue.slice(i)
      if (batch.length > 0) send(lane, batch)
      scheduleFlush(lane)
      retire(lane)
    }

    const send = (lane: Lane, batch: ReadonlyArray<Waiter>) => {
      lane.inFlight++
      const keysAndArgs = encodeBatch(prefix, slack, batch)
      const numKeys = keysAndArgs.length - 1
      const done = (results: (w: Waiter, b: number) => Answer) => {
        lane.inFlight--
        for (let b = 0; b < batch.length; b++) {
          const w = batch[b]!
          pending--
          answer(w, () => results(w, b))
        }
        advance()
        scheduleFlush(lane)
        retire(lane)
      }
      evaluate(keysAndArgs, numKeys).then(
        (reply) => {
          const decided = decodeReply(batch, reply)
          if (decided === undefined) {
            done(() => degrade("unavailable", "Redis answered the rate-limit script with an unexpected reply"))
          } else {
            done((_, b) => {
              decisions++
              return Effect.succeed(decided[b]!)
            })
          }
        },
        (error: unknown) => {
          const message = error instanceof Error ? error.message : String(error)
          done(() => degrade("unavailable", message))
        }
      )
    }

    /** Queues one decision; bounded by `maxPending` now and by `timeoutMs` from now. */
    const enqueue = (limits: ReadonlyArray<LimitRequest>, now: number, tag: string) =>
      Effect.async<RateLimitDecision, RateLimiterUnavailable>((resume) => {
        if (pending >= maxPending) {
          resume(degrade("overloaded", `${pending} rate-limit decisions are queued or in flight; not queueing more`))
          return
        }
        pending++
        const w: Waiter = { limits, now, deadline: performance.now() + timeoutMs, resume, sent: false }
        // at most maxPending of them are unanswered, so each compaction halves the list at least
        if (timeline.length - head >= 2 * maxPending) {
          timeline = compact(timeline.slice(head), 0)
          head = 0
        }
        timeline.push(w)
        timer ??= setTimeout(sweep, timeoutMs)
        const lane = laneOf(tag)
        // answered waiters leave the queue when it is sent; a stalled Redis must not let them pile up
        lane.queue = compact(lane.queue, 2 * maxPending)
        lane.queue.push(w)
        scheduleFlush(lane)
        return Effect.sync(() => {
          release(w)
        })
      })

    // No span per call: this is the hottest path of the gateway, and `Gateway.admit`'s span covers it.
    const consume = (limits: ReadonlyArray<LimitRequest>, now: number) =>
      Effect.suspend((): Answer => {
        if (limits.length === 0) return Effect.succeed({ allowed: true, outcomes: [] })
        const problem = invalid(limits, now)
        if (problem !== undefined) return Effect.dieMessage(`RateLimiter.consume: ${problem}`)
        if (!cluster) return enqueue(limits, now, "")
        const tag = hashTag(limits[0]!.key)
        const other = limits.find((l) => hashTag(l.key) !== tag)
        if (other !== undefined) {
          return Effect.dieMessage(
            `RateLimiter.consume: ${limits[0]!.key} and ${other.key} are in different Redis Cluster slots; ` +
              "one call can only decide limits that share a hash tag"
          )
        }
        return enqueue(limits, now, tag)
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
