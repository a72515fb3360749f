import { Schema } from "effect"

// Why the gateway refuses a call. Each carries a stable `code`; the HTTP layer attaches the
// status (401, 403, 404, 402, 429, 503) where these are mapped to problem documents.

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  code: Schema.Literal("missing_key", "malformed_key", "unknown_key", "revoked_key", "expired_key")
}) {}

export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  code: Schema.Literal("route_not_found", "unknown_dataset"),
  method: Schema.String,
  path: Schema.String
}) {}

export const UpsellPlan = Schema.Struct({ id: Schema.String, name: Schema.String, priceCents: Schema.Number })

export class NotEntitled extends Schema.TaggedError<NotEntitled>()("NotEntitled", {
  code: Schema.Literal("not_entitled"),
  category: Schema.String,
  plan: Schema.String,
  /** The cheapest plan that allows the category, when one does. */
  upgradeTo: Schema.optional(UpsellPlan)
}) {}

export const LimitReport = Schema.Struct({
  name: Schema.String,
  limit: Schema.Number,
  windowMs: Schema.Number,
  remaining: Schema.Number,
  resetMs: Schema.Number,
  shadow: Schema.Boolean,
  exceeded: Schema.Boolean
})
export type LimitReport = typeof LimitReport.Type

export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  code: Schema.Literal("rate_limited"),
  /** The enforced limit that tripped first. */
  limit: Schema.String,
  /** Undefined when the request can never fit (its cost exceeds the limit). */
  retryAfterMs: Schema.optional(Schema.Number),
  limits: Schema.Array(LimitReport)
}) {}

export class InsufficientCredits extends Schema.TaggedError<InsufficientCredits>()("InsufficientCredits", {
  code: Schema.Literal("insufficient_credits"),
  projectId: Schema.String,
  required: Schema.Number,
  available: Schema.Number,
  balance: Schema.Number
}) {}

export class DependencyUnavailable extends Schema.TaggedError<DependencyUnavailable>()("DependencyUnavailable", {
  code: Schema.Literal("dependency_unavailable"),
  dependency: Schema.Literal("rate_limiter", "ledger", "key_store", "project_store", "catalog", "billing_inbox"),
  message: Schema.String
}) {}

/** Maps a port's outage to the refusal the caller sees. */
export const dependencyUnavailable =
  (dependency: DependencyUnavailable["dependency"]) => (e: { readonly message: string }) =>
    new DependencyUnavailable({ code: "dependency_unavailable", dependency, message: e.message })

/**
 * The gateway protecting itself or an upstream: the project already has as many calls in flight
 * as its plan allows, or the route's upstream is failing and its circuit is open.
 */
export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
  code: Schema.Literal("concurrency_limited", "upstream_circuit_open"),
  message: Schema.String,
  retryAfterMs: Schema.optional(Schema.Number)
}) {}

export class ProjectNotFound extends Schema.TaggedError<ProjectNotFound>()("ProjectNotFound", {
  code: Schema.Literal("project_not_found"),
  projectId: Schema.String
}) {}

export type Refusal =
  | Unauthorized
  | RouteNotFound
  | NotEntitled
  | RateLimited
  | InsufficientCredits
  | DependencyUnavailable
  | Overloaded
