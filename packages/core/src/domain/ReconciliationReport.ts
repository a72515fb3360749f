import { Schema } from "effect"
import { Credits, EpochMillis } from "./Credits.js"
import { ProjectId } from "./Ids.js"

export const ReconciliationId = Schema.NonEmptyTrimmedString.pipe(
  Schema.maxLength(200),
  Schema.brand("ReconciliationId")
)
export type ReconciliationId = typeof ReconciliationId.Type

/**
 * What reconciliation can find between the provider's records and the ledger:
 * - `missing_grant`: the provider says paid; no grant under `purchase:<payment>`.
 * - `amount_mismatch`: the `purchase:<payment>` grant's credits differ from the payment's metadata.
 * - `double_grant`: more than one grant traceable to one payment: keyed `purchase:<payment>` or
 *   written with the reason `payment <payment>` (what a purchase grant records), under any key.
 * - `missing_clawback`: a refund or dispute whose share of the credits is positive, with no
 *   reversal transaction for it (a reversal that found the wallet empty leaves none either).
 * - `unknown_payment`: a payment whose metadata does not say which project or how many credits.
 * - `orphan_grant`: a grant traceable to a payment, made in the window, for a payment the
 *   provider does not list (in the window or the day before it).
 */
export const DifferenceKind = Schema.Literal(
  "missing_grant",
  "amount_mismatch",
  "double_grant",
  "missing_clawback",
  "unknown_payment",
  "orphan_grant"
)
export type DifferenceKind = typeof DifferenceKind.Type

export class ReconciliationDifference extends Schema.Class<ReconciliationDifference>("ReconciliationDifference")({
  kind: DifferenceKind,
  /** The provider's payment, refund or dispute id (for an orphan grant, the payment id its grant names). */
  providerObjectId: Schema.String,
  projectId: Schema.optional(ProjectId),
  /** What the provider's records say the ledger should show, when they say. */
  expectedCredits: Schema.optional(Credits),
  /** What the ledger shows. */
  ledgerCredits: Schema.optional(Credits),
  detail: Schema.String
}) {}

export const ReconciliationStatus = Schema.Literal("clean", "differences", "failed")
export type ReconciliationStatus = typeof ReconciliationStatus.Type

export const ReconciliationCounts = Schema.Struct({
  payments: Schema.NonNegativeInt,
  refunds: Schema.NonNegativeInt,
  disputes: Schema.NonNegativeInt,
  differences: Schema.NonNegativeInt
}).annotations({ identifier: "ReconciliationCounts" })
export type ReconciliationCounts = typeof ReconciliationCounts.Type

/** One run over the window `[from, to)`: what it looked at and how it ended, without its differences. */
export class ReconciliationRun extends Schema.Class<ReconciliationRun>("ReconciliationRun")({
  id: ReconciliationId,
  from: EpochMillis,
  to: EpochMillis,
  startedAt: EpochMillis,
  finishedAt: EpochMillis,
  status: ReconciliationStatus,
  counts: ReconciliationCounts,
  /** Why a `failed` run could not compare. */
  detail: Schema.optional(Schema.String)
}) {}

/** A run and every difference it found. Reconciliation reports; it never corrects the ledger. */
export class ReconciliationReport extends ReconciliationRun.extend<ReconciliationReport>("ReconciliationReport")({
  differences: Schema.Array(ReconciliationDifference)
}) {}
