import type { Effect } from "effect"
import { Context, Metric } from "effect"

/** Why a limiter call did not get an answer, so the gateway had to decide by the route's failure policy. */
export type DegradedReason = "timeout" | "unavailable" | "overloaded"

export interface LimiterHealthSnapshot {
  /** Calls the store answered. */
  readonly decisions: number
  /** Calls the store did not answer: each became a fail-open or fail-closed decision. */
  readonly degraded: number
  readonly byReason: Readonly<Record<DegradedReason, number>>
  /** Decisions queued or sent and not yet answered (bounded by the limiter's `maxPending`). */
  readonly pending: number
  readonly connected: boolean
  readonly lastError: string | undefined
}

/**
 * The limiter's own account of how it has been doing, for `/health` and `/metrics`. The usage
 * row of each degraded call says `degraded_open` or `degraded_closed` (the gateway marks it);
 * this counts them from the limiter's side, by reason.
 */
export class LimiterHealth extends Context.Tag("@tollgate/adapters/LimiterHealth")<LimiterHealth, {
  readonly snapshot: Effect.Effect<LimiterHealthSnapshot>
}>() {}

/** Process-wide counter of degraded limiter calls, tagged `reason`, for the metrics endpoint. */
export const limiterDegradedTotal = Metric.counter("tollgate_rate_limiter_degraded_total", {
  description: "Rate-limiter calls the store did not answer (decided by the route's failure policy)",
  incremental: true
})
