import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import { EpochMillis } from "../domain/Credits.js"
import { PlanId, ProjectId } from "../domain/Ids.js"

export class PlanChangeStoreUnavailable
  extends Schema.TaggedError<PlanChangeStoreUnavailable>()("PlanChangeStoreUnavailable", {
    message: Schema.String
  })
{}

export const PlanChangeReason = Schema.Literal("created", "upgraded", "downgraded", "cancelled")
export type PlanChangeReason = typeof PlanChangeReason.Type

/**
 * One subscription event as the provider stated it. `version` orders one project's events (Stripe's
 * `created`, in seconds); `ended` marks the subscription's deletion, after which no update of it counts.
 */
export const SubscriptionChange = Schema.Struct({
  subscriptionId: Schema.NonEmptyString,
  planId: PlanId,
  version: Schema.Int.pipe(Schema.nonNegative()),
  effectiveAt: EpochMillis,
  reason: PlanChangeReason,
  ended: Schema.Boolean
})
export type SubscriptionChange = typeof SubscriptionChange.Type

/** A change decided but not yet due: the project moves to `planId` once `effectiveAt` has passed. */
export const PendingPlanChange = Schema.Struct({
  planId: PlanId,
  effectiveAt: EpochMillis,
  reason: PlanChangeReason
})
export type PendingPlanChange = typeof PendingPlanChange.Type

/**
 * A project's subscription history: the plan it held before its first subscription event, every
 * distinct event since, and the change still pending.
 */
export const PlanChangeState = Schema.Struct({
  projectId: ProjectId,
  basePlanId: PlanId,
  changes: Schema.Array(SubscriptionChange),
  pending: Schema.optional(PendingPlanChange)
})
export type PlanChangeState = typeof PlanChangeState.Type

/** Subscription events per project, and the plan change each project is waiting for. */
export class PlanChangeStore extends Context.Tag("@tollgate/core/PlanChangeStore")<PlanChangeStore, {
  readonly get: (projectId: ProjectId) => Effect.Effect<Option.Option<PlanChangeState>, PlanChangeStoreUnavailable>
  /**
   * Adds `change` to the project's history in one atomic step, unless an identical change is there
   * (a redelivery); `basePlanId` is kept only when the project has no history yet. The history after.
   */
  readonly record: (
    projectId: ProjectId,
    basePlanId: PlanId,
    change: SubscriptionChange
  ) => Effect.Effect<PlanChangeState, PlanChangeStoreUnavailable>
  /** Sets (or, with none, clears) the project's pending change. */
  readonly setPending: (
    projectId: ProjectId,
    pending: PendingPlanChange | undefined
  ) => Effect.Effect<void, PlanChangeStoreUnavailable>
  /** Clears the pending change if it is still `applied` (a change recorded since stays); whether it did. */
  readonly clearPending: (
    projectId: ProjectId,
    applied: PendingPlanChange
  ) => Effect.Effect<boolean, PlanChangeStoreUnavailable>
  /** Projects whose pending change is due at `now`, earliest first (then by project id). */
  readonly due: (
    options: { readonly now: number; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<PlanChangeState>, PlanChangeStoreUnavailable>
}>() {}
