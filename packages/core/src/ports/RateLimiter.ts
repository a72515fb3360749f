import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { RateLimitPolicy } from "../domain/RateLimitPolicy.js"
import type { LimitOutcome } from "../logic/RateLimitAlgorithm.js"

export class RateLimiterUnavailable extends Schema.TaggedError<RateLimiterUnavailable>()("RateLimiterUnavailable", {
  message: Schema.String
}) {}

/** One limit to check: its counter's key, its policy and what this request costs against it. */
export interface LimitRequest {
  readonly key: string
  readonly policy: RateLimitPolicy
  readonly cost: number
}

export interface RateLimitDecision {
  readonly allowed: boolean
  readonly outcomes: ReadonlyArray<LimitOutcome>
}

/**
 * Checks and consumes every limit of one request in one atomic step: if any enforced limit
 * would be exceeded, none is consumed.
 */
export class RateLimiter extends Context.Tag("@tollgate/core/RateLimiter")<RateLimiter, {
  readonly consume: (
    limits: ReadonlyArray<LimitRequest>,
    now: number
  ) => Effect.Effect<RateLimitDecision, RateLimiterUnavailable>
}>() {}
