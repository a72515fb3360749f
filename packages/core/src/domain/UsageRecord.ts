import { Schema } from "effect"
import { Credits, EpochMillis } from "./Credits.js"
import { ApiKeyId, Category, DatasetId, PlanId, ProjectId, RequestId, RouteId } from "./Ids.js"

/** How the rate limiter decided: normally, or degraded because its store did not answer. */
export const LimiterDecision = Schema.Literal("allowed", "rejected", "degraded_open", "degraded_closed", "skipped")
export type LimiterDecision = typeof LimiterDecision.Type

export const UsageOutcome = Schema.Literal("captured", "voided", "refused")
export type UsageOutcome = typeof UsageOutcome.Type

/** One row per call through the gateway, charged or not. */
export class UsageRecord extends Schema.Class<UsageRecord>("UsageRecord")({
  requestId: RequestId,
  at: EpochMillis,
  projectId: ProjectId,
  keyId: ApiKeyId,
  planId: PlanId,
  planVersion: Schema.Int,
  routeId: RouteId,
  category: Category,
  datasetId: Schema.optional(DatasetId),
  status: Schema.Int,
  outcome: UsageOutcome,
  refusal: Schema.optional(Schema.String),
  latencyMs: Schema.Int.pipe(Schema.nonNegative()),
  credits: Credits,
  limiter: LimiterDecision
}) {}
