import { Schema } from "effect"
import { Credits } from "./Credits.js"
import { Category, RouteId } from "./Ids.js"
import { RateLimitPolicy } from "./RateLimitPolicy.js"

export const HttpMethod = Schema.Literal("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*")
export type HttpMethod = typeof HttpMethod.Type

/** What the gateway does when the rate limiter's store cannot answer. */
export const FailurePolicy = Schema.Literal("open", "closed")
export type FailurePolicy = typeof FailurePolicy.Type

/**
 * Where the dataset of a call is read from: a path segment after the prefix (`{ in: "path",
 * index: 0 }` reads `/datasets/<id>/…` as the first segment after the prefix) or a query parameter.
 */
export const DatasetParam = Schema.Union(
  Schema.Struct({ in: Schema.Literal("path"), index: Schema.Int.pipe(Schema.nonNegative()) }),
  Schema.Struct({ in: Schema.Literal("query"), name: Schema.NonEmptyTrimmedString })
)
export type DatasetParam = typeof DatasetParam.Type

export class Route extends Schema.Class<Route>("Route")({
  id: RouteId,
  method: HttpMethod,
  pathPrefix: Schema.String.pipe(Schema.pattern(/^\/[A-Za-z0-9._~\-/]*$/)),
  upstream: Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s]+$/)),
  category: Category,
  /** Overrides the plan's price for the category when set. */
  price: Schema.optional(Credits),
  datasetParam: Schema.optional(DatasetParam),
  timeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 600_000)), { default: () => 30_000 }),
  failurePolicy: Schema.optionalWith(FailurePolicy, { default: () => "open" as const }),
  /** Limits of this route on top of the plan's. */
  rateLimits: Schema.optionalWith(Schema.Array(RateLimitPolicy), { default: () => [] }),
  /** Upstream response header whose integer value is the final cost, capped by the hold. */
  costHeader: Schema.optional(Schema.String)
}) {}
