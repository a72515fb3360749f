/**
 * What keeps one tenant or one upstream from hurting the rest, per gateway process:
 *
 * - a concurrency cap per project (the plan's `concurrencyCap`): calls in flight, counted from
 *   admission until the response body has been sent;
 * - a circuit breaker per upstream origin ({@link CircuitBreaker}): an upstream that keeps failing
 *   is refused at once instead of tying up connections and callers until it times out.
 *
 * State lives in this process (JavaScript runs one callback at a time, so each check-and-update
 * is atomic). With several gateways the effective cap is the plan's cap per gateway.
 */
import type { ProjectId } from "@tollgate/core"
import { CircuitBreaker, Overloaded } from "@tollgate/core"
import { Context, Effect, Layer, Metric } from "effect"
import { breakerTransitions } from "../Metrics.js"

export interface IsolationOptions {
  readonly breaker: CircuitBreaker.BreakerOptions
}

export const defaultIsolationOptions: IsolationOptions = {
  breaker: { failureThreshold: 5, cooldownMs: 5_000 }
}

export interface IsolationService {
  /** Takes a slot of the project's cap, or refuses. The returned function gives the slot back (once). */
  readonly acquireSlot: (projectId: ProjectId, cap: number) => Effect.Effect<() => void, Overloaded>
  /** Asks the upstream's breaker to let one call through, or refuses. */
  readonly admitUpstream: (upstream: string, now: number) => Effect.Effect<void, Overloaded>
  /** Tells the upstream's breaker how an admitted call ended. */
  readonly recordUpstream: (upstream: string, succeeded: boolean, now: number) => Effect.Effect<void>
  readonly inFlight: (projectId: ProjectId) => number
  readonly breakerState: (upstream: string) => CircuitBreaker.BreakerState
}

export class Isolation extends Context.Tag("@tollgate/http/Isolation")<Isolation, IsolationService>() {}

/** The breaker is per origin: routes on one upstream service share its health. */
export const originOf = (upstream: string): string => {
  try {
    return new URL(upstream).origin
  } catch {
    return upstream
  }
}

export const makeIsolation = (options: IsolationOptions = defaultIsolationOptions): IsolationService => {
  const inFlight = new Map<ProjectId, number>()
  const breakers = new Map<string, CircuitBreaker.BreakerState>()

  const transition = (origin: string, from: CircuitBreaker.BreakerState, to: CircuitBreaker.BreakerState) => {
    breakers.set(origin, to)
    if (from._tag === to._tag) return Effect.void
    return Effect.zipRight(
      Metric.increment(Metric.tagged(Metric.tagged(breakerTransitions, "upstream", origin), "state", to._tag)),
      to._tag === "open"
        ? Effect.logWarning("upstream circuit opened", origin)
        : Effect.logInfo(`upstream circuit ${to._tag}`, origin)
    )
  }

  return {
    acquireSlot: (projectId, cap) =>
      Effect.suspend(() => {
        const current = inFlight.get(projectId) ?? 0
        if (current >= cap) {
          return Effect.fail(
            new Overloaded({
              code: "concurrency_limited",
              message: `The project already has ${current} calls in flight, its plan's limit`,
              retryAfterMs: 1_000
            })
          )
        }
        inFlight.set(projectId, current + 1)
        let released = false
        return Effect.succeed(() => {
          if (released) return
          released = true
          const left = (inFlight.get(projectId) ?? 1) - 1
          if (left <= 0) inFlight.delete(projectId)
          else inFlight.set(projectId, left)
        })
      }),
    admitUpstream: (upstream, now) =>
      Effect.suspend(() => {
        const origin = originOf(upstream)
        const state = breakers.get(origin) ?? CircuitBreaker.closed
        const admission = CircuitBreaker.admit(state, options.breaker, now)
        const moved = transition(origin, state, admission.state)
        if (admission.admitted) return moved
        return Effect.zipRight(
          moved,
          Effect.fail(
            new Overloaded({
              code: "upstream_circuit_open",
              message: "The upstream of this route is failing; calls to it are paused",
              retryAfterMs: admission.retryAfterMs
            })
          )
        )
      }),
    recordUpstream: (upstream, succeeded, now) =>
      Effect.suspend(() => {
        const origin = originOf(upstream)
        const state = breakers.get(origin) ?? CircuitBreaker.closed
        return transition(origin, state, CircuitBreaker.record(state, options.breaker, succeeded, now))
      }),
    inFlight: (projectId) => inFlight.get(projectId) ?? 0,
    breakerState: (upstream) => breakers.get(originOf(upstream)) ?? CircuitBreaker.closed
  }
}

export const isolationLayer = (options: IsolationOptions = defaultIsolationOptions) =>
  Layer.sync(Isolation, () => makeIsolation(options))
