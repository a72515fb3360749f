import { Schema } from "effect"

/**
 * Which counter a limit consumes: one per key, per project, per project and route, per route
 * across every tenant, or per plan across every tenant on it.
 */
export const LimitScope = Schema.Literal("key", "project", "project_route", "route", "plan")
export type LimitScope = typeof LimitScope.Type

export const PolicyName = Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_-]{0,63}$/))

/**
 * A named limit: at most `limit` units per aligned window of `windowMs`, smoothed across the
 * window boundary (sliding-window counter). A shadow limit is counted and reported, never enforced.
 */
export class RateLimitPolicy extends Schema.Class<RateLimitPolicy>("RateLimitPolicy")({
  name: PolicyName,
  scope: LimitScope,
  limit: Schema.Int.pipe(Schema.between(1, 1_000_000_000)),
  windowMs: Schema.Int.pipe(Schema.between(1, 31 * 24 * 3_600_000)),
  shadow: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}
