import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { ReconciliationId, ReconciliationReport, ReconciliationRun } from "../domain/ReconciliationReport.js"

export class ReconciliationStoreUnavailable
  extends Schema.TaggedError<ReconciliationStoreUnavailable>()("ReconciliationStoreUnavailable", {
    message: Schema.String
  })
{}

export interface ReconciliationPage {
  /** Latest start first, equal starts by id descending. */
  readonly runs: ReadonlyArray<ReconciliationRun>
  readonly nextCursor: string | undefined
}

/** Where a page starts: after the run with this start and id. */
export interface ReconciliationCursor {
  readonly startedAt: number
  readonly id: string
}

export const encodeReconciliationCursor = (run: ReconciliationCursor): string => `${run.startedAt}:${run.id}`

/** An unreadable cursor is none: the caller gets the first page rather than an error. */
export const decodeReconciliationCursor = (cursor: string | undefined): ReconciliationCursor | undefined => {
  if (cursor === undefined) return undefined
  const match = /^(\d{1,16}):(.+)$/.exec(cursor)
  if (match === null) return undefined
  const startedAt = Number(match[1])
  return Number.isSafeInteger(startedAt) ? { startedAt, id: match[2]! } : undefined
}

/** Reconciliation reports: each saved whole (a save under a known id replaces it), read back whole. */
export class ReconciliationStore extends Context.Tag("@tollgate/core/ReconciliationStore")<ReconciliationStore, {
  readonly save: (report: ReconciliationReport) => Effect.Effect<void, ReconciliationStoreUnavailable>
  readonly get: (
    id: ReconciliationId
  ) => Effect.Effect<Option.Option<ReconciliationReport>, ReconciliationStoreUnavailable>
  readonly list: (
    page: { readonly cursor?: string | undefined; readonly limit: number }
  ) => Effect.Effect<ReconciliationPage, ReconciliationStoreUnavailable>
}>() {}
