import type { LimitRequest, RateLimitDecision } from "@tollgate/core"
import { RateLimitAlgorithm, RateLimiter } from "@tollgate/core"
import { Effect, Layer } from "effect"

type Stored = { readonly state: RateLimitAlgorithm.WindowState; readonly expiresAt: number }

/**
 * The in-process limiter (the embedded default): the pure sliding-window algorithm over a map,
 * each decision one synchronous block, so all limits of a request are checked and consumed
 * together. Counters idle for two windows are dropped as they are met, and swept when the map grows.
 */
export const makeMemoryRateLimiter = (options: { readonly maxCounters?: number } = {}) =>
  Effect.sync(() => {
    const counters = new Map<string, Stored>()
    const maxCounters = options.maxCounters ?? 1_000_000

    const sweep = (now: number) => {
      for (const [key, stored] of counters) if (stored.expiresAt <= now) counters.delete(key)
    }

    const consume = (limits: ReadonlyArray<LimitRequest>, now: number) =>
      Effect.sync((): RateLimitDecision => {
        const checks = limits.map((l) => {
          const stored = counters.get(l.key)
          return {
            policy: l.policy,
            cost: l.cost,
            state: stored === undefined || stored.expiresAt <= now ? undefined : stored.state
          }
        })
        const decision = RateLimitAlgorithm.decide(checks, now)
        if (decision.allowed) {
          if (counters.size >= maxCounters) sweep(now)
          decision.states.forEach((state, i) => {
            const l = limits[i]!
            counters.set(l.key, { state, expiresAt: (state.window + 2) * l.policy.windowMs })
          })
        }
        return { allowed: decision.allowed, outcomes: decision.outcomes }
      })

    return RateLimiter.of({ consume })
  })

export const MemoryRateLimiterLive = Layer.effect(RateLimiter, makeMemoryRateLimiter())
