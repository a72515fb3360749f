import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { DatasetId, ProjectId, RouteId } from "../domain/Ids.js"
import type { UsageRecord } from "../domain/UsageRecord.js"

export class UsageLogUnavailable extends Schema.TaggedError<UsageLogUnavailable>()("UsageLogUnavailable", {
  message: Schema.String
}) {}

export interface UsageFilter {
  readonly projectId?: ProjectId | undefined
  readonly datasetId?: DatasetId | undefined
  readonly routeId?: RouteId | undefined
  /** Inclusive, epoch millis. */
  readonly from: number
  /** Exclusive, epoch millis. */
  readonly to: number
}

export type UsageGrouping = "day" | "route" | "dataset" | "project"

export interface UsageSummaryRow {
  readonly group: string
  readonly calls: number
  readonly credits: number
}

export interface UsagePage {
  readonly records: ReadonlyArray<UsageRecord>
  readonly nextCursor: string | undefined
}

/** One row per call. Recording is idempotent by request id. */
export class UsageLog extends Context.Tag("@tollgate/core/UsageLog")<UsageLog, {
  readonly record: (row: UsageRecord) => Effect.Effect<"created" | "exists", UsageLogUnavailable>
  readonly list: (
    filter: UsageFilter,
    page: { readonly cursor?: string | undefined; readonly limit: number }
  ) => Effect.Effect<UsagePage, UsageLogUnavailable>
  readonly summarize: (
    filter: UsageFilter,
    groupBy: UsageGrouping
  ) => Effect.Effect<ReadonlyArray<UsageSummaryRow>, UsageLogUnavailable>
}>() {}
