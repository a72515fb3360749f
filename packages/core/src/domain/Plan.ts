import { Schema } from "effect"
import { Credits } from "./Credits.js"
import { Category, PlanId } from "./Ids.js"
import { RateLimitPolicy } from "./RateLimitPolicy.js"

/**
 * A plan is versioned: a change creates a new version, and a project stays on the version it
 * subscribed to until it moves. `priceCents` orders plans for the upsell ("cheapest plan that
 * allows this category").
 */
export class Plan extends Schema.Class<Plan>("Plan")({
  id: PlanId,
  version: Schema.Int.pipe(Schema.positive()),
  name: Schema.NonEmptyTrimmedString,
  priceCents: Schema.Int.pipe(Schema.nonNegative()),
  allowedCategories: Schema.Array(Category),
  rateLimits: Schema.Array(RateLimitPolicy),
  monthlyAllowance: Credits,
  prices: Schema.Record({ key: Category, value: Credits }),
  defaultPrice: Credits,
  concurrencyCap: Schema.Int.pipe(Schema.positive()),
  lowBalanceThreshold: Credits,
  /** Offered to new subscribers and named in upsell suggestions. */
  public: Schema.optionalWith(Schema.Boolean, { default: () => true })
}) {}

export const PlanRef = Schema.Struct({ id: PlanId, version: Schema.Int.pipe(Schema.positive()) })
export type PlanRef = typeof PlanRef.Type
