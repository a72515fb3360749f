import type { RequestId, UsageFilter, UsageGrouping, UsageRecord, UsageSummaryRow } from "@tollgate/core"
import { UsageLog } from "@tollgate/core"
import { Effect, Either, Encoding, Layer, Option, Schema } from "effect"

/** Where a page ended: the listing order's key of the last row returned. */
const Cursor = Schema.Tuple(Schema.Int, Schema.String)
const decodeCursorJson = Schema.decodeUnknownOption(Schema.parseJson(Cursor))

const encodeCursor = (row: UsageRecord): string => Encoding.encodeBase64Url(JSON.stringify([row.at, row.requestId]))

const decodeCursor = (cursor: string): Option.Option<readonly [number, string]> =>
  Option.flatMap(Either.getRight(Encoding.decodeBase64UrlString(cursor)), decodeCursorJson)

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Listing order: newest first, equal times by request id descending. A total order, so pages never overlap. */
const newestFirst = (a: UsageRecord, b: UsageRecord): number => b.at - a.at || compareText(b.requestId, a.requestId)

const after = (row: UsageRecord, [at, requestId]: readonly [number, string]): boolean =>
  row.at < at || (row.at === at && row.requestId < requestId)

const matches = (filter: UsageFilter) => (row: UsageRecord): boolean =>
  row.at >= filter.from && row.at < filter.to &&
  (filter.projectId === undefined || row.projectId === filter.projectId) &&
  (filter.datasetId === undefined || row.datasetId === filter.datasetId) &&
  (filter.routeId === undefined || row.routeId === filter.routeId)

const groupOf = (groupBy: UsageGrouping) => (row: UsageRecord): string => {
  switch (groupBy) {
    case "day":
      return new Date(row.at).toISOString().slice(0, 10)
    case "route":
      return row.routeId
    case "dataset":
      return row.datasetId ?? "none"
    case "project":
      return row.projectId
  }
}

/**
 * The usage log in process memory. Rows are immutable once recorded: a replayed request id
 * keeps the first row. Pages are keyed on (at, requestId), not on offsets, so rows recorded
 * between two pages neither repeat nor push rows out of the pages still to come.
 */
export const makeMemoryUsageLog = Effect.sync(() => {
  const rows = new Map<RequestId, UsageRecord>()

  const record = Effect.fnUntraced(function*(row: UsageRecord) {
    if (rows.has(row.requestId)) return "exists" as const
    rows.set(row.requestId, row)
    return "created" as const
  })

  const list = Effect.fnUntraced(
    function*(filter: UsageFilter, page: { readonly cursor?: string | undefined; readonly limit: number }) {
      const limit = Math.max(1, Math.floor(page.limit))
      // An unreadable cursor ends the listing rather than restarting it: a client looping on
      // `nextCursor` must terminate.
      const from = page.cursor === undefined ? Option.none() : decodeCursor(page.cursor)
      if (page.cursor !== undefined && Option.isNone(from)) return { records: [], nextCursor: undefined }
      const selected = [...rows.values()]
        .filter((row) => matches(filter)(row) && (Option.isNone(from) || after(row, from.value)))
        .sort(newestFirst)
      const records = selected.slice(0, limit)
      return {
        records,
        nextCursor: selected.length > limit ? encodeCursor(records[records.length - 1]!) : undefined
      }
    }
  )

  const summarize = Effect.fnUntraced(function*(filter: UsageFilter, groupBy: UsageGrouping) {
    const groups = new Map<string, { calls: number; credits: number }>()
    const keyOf = groupOf(groupBy)
    for (const row of rows.values()) {
      if (!matches(filter)(row)) continue
      const group = keyOf(row)
      const totals = groups.get(group) ?? { calls: 0, credits: 0 }
      totals.calls += 1
      totals.credits += row.credits
      groups.set(group, totals)
    }
    return [...groups.entries()]
      .map(([group, totals]): UsageSummaryRow => ({ group, ...totals }))
      .sort((a, b) => compareText(a.group, b.group))
  })

  return UsageLog.of({ record, list, summarize })
})

export const MemoryUsageLogLive = Layer.effect(UsageLog, makeMemoryUsageLog)
