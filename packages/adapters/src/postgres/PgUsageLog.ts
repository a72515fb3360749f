import { SqlClient } from "@effect/sql"
import type { UsageFilter, UsageGrouping, UsagePage, UsageSummaryRow } from "@tollgate/core"
import { LimiterDecision, UsageLog, UsageLogUnavailable, UsageOutcome, UsageRecord } from "@tollgate/core"
import { Effect, Either, Encoding, Exit, Layer, Option, Schema } from "effect"
import type { GroupCommitOptions } from "./GroupCommit.js"
import { makeGroupCommit } from "./GroupCommit.js"
import { outage } from "./Outage.js"

/** node-postgres returns int8 (and numeric sums) as text; each must be a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

const UsageRow = Schema.Struct({
  request_id: Schema.String,
  at: Int8,
  project_id: Schema.String,
  key_id: Schema.String,
  plan_id: Schema.String,
  plan_version: Schema.Number,
  route_id: Schema.String,
  category: Schema.String,
  dataset_id: Schema.NullOr(Schema.String),
  status: Schema.Number,
  outcome: UsageOutcome,
  refusal: Schema.NullOr(Schema.String),
  latency_ms: Schema.Number,
  credits: Int8,
  limiter: LimiterDecision
})

/** A usage record as its row: the record is validated when made, so this only renames. */
const toRow = (usage: typeof UsageRecord.Encoded): typeof UsageRow.Type => ({
  request_id: usage.requestId,
  at: usage.at,
  project_id: usage.projectId,
  key_id: usage.keyId,
  plan_id: usage.planId,
  plan_version: usage.planVersion,
  route_id: usage.routeId,
  category: usage.category,
  dataset_id: usage.datasetId ?? null,
  status: usage.status,
  outcome: usage.outcome,
  refusal: usage.refusal ?? null,
  latency_ms: usage.latencyMs,
  credits: usage.credits,
  limiter: usage.limiter
})

const UsageFromRow = Schema.transform(UsageRow, UsageRecord, {
  strict: true,
  decode: (row) => ({
    requestId: row.request_id,
    at: row.at,
    projectId: row.project_id,
    keyId: row.key_id,
    planId: row.plan_id,
    planVersion: row.plan_version,
    routeId: row.route_id,
    category: row.category,
    ...(row.dataset_id === null ? {} : { datasetId: row.dataset_id }),
    status: row.status,
    outcome: row.outcome,
    ...(row.refusal === null ? {} : { refusal: row.refusal }),
    latencyMs: row.latency_ms,
    credits: row.credits,
    limiter: row.limiter
  }),
  encode: toRow
})

const decodeUsage = Schema.decodeUnknown(Schema.Array(UsageFromRow))

const usageColumns = Object.keys(UsageRow.fields).join(", ")

const SummaryRow = Schema.Struct({ grp: Schema.String, calls: Int8, credits: Int8 })
const decodeSummary = Schema.decodeUnknown(Schema.Array(SummaryRow))

/** Where a page ended: the listing order's key of the last row returned (the in-memory log's format). */
const Cursor = Schema.Tuple(Schema.Int, Schema.String)
const decodeCursorJson = Schema.decodeUnknownOption(Schema.parseJson(Cursor))

const encodeCursor = (row: UsageRecord): string => Encoding.encodeBase64Url(JSON.stringify([row.at, row.requestId]))

const decodeCursor = (cursor: string): Option.Option<readonly [number, string]> =>
  Option.flatMap(Either.getRight(Encoding.decodeBase64UrlString(cursor)), decodeCursorJson)

/**
 * Stored times are safe integers, so a bound can be rounded up to the next integer and clamped
 * to what a BIGINT holds without changing which rows it selects (`at >= 0.5` is `at >= 1`).
 */
const bound = (millis: number): number => Math.min(Math.max(Math.ceil(millis), 0), Number.MAX_SAFE_INTEGER + 1)

/**
 * The group of each grouping, as SQL over `usage_records`. Days are UTC dates computed with
 * integer division (times are non-negative), so neither float rounding nor the session's time
 * zone is involved: the date is formatted as a `timestamp` (without time zone), not the
 * `timestamptz` that `to_char` would otherwise convert it to.
 */
const groupExpression: Record<UsageGrouping, string> = {
  day: `to_char((DATE '1970-01-01' + (at / 86400000)::integer)::timestamp, 'YYYY-MM-DD')`,
  route: "route_id",
  dataset: "coalesce(dataset_id, 'none')",
  project: "project_id"
}

/** Past any table this holds; keeps `limit + 1` a valid BIGINT. */
const maxLimit = 1_000_000_000

const orUnavailable = outage((message) => new UsageLogUnavailable({ message }), "a stored usage row could not be read")

/**
 * The usage log in PostgreSQL. `record` is idempotent through the primary key on the request
 * id. Pages are keyed on (at, request_id), compared as a row value: the ids are `COLLATE "C"`,
 * so the database's order is JavaScript's and the cursor format is the in-memory log's.
 */
const make = (options: { readonly batch?: GroupCommitOptions | undefined }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const matching = (filter: UsageFilter) =>
      sql.and([
        sql`at >= ${bound(filter.from)}`,
        sql`at < ${bound(filter.to)}`,
        ...(filter.projectId === undefined ? [] : [sql`project_id = ${filter.projectId}`]),
        ...(filter.datasetId === undefined ? [] : [sql`dataset_id = ${filter.datasetId}`]),
        ...(filter.routeId === undefined ? [] : [sql`route_id = ${filter.routeId}`])
      ])

    type Row = typeof UsageFromRow.Encoded
    /**
     * Inserts rows in one statement; a row whose request id is already stored (or earlier in the
     * same group) exists. The rows travel as one JSON parameter rather than fifteen parameters
     * each: the statement's text is the same for every group, and the server parses one value
     * (on the embedded store, binding each parameter cost more than the insert itself).
     */
    const insert = (rows: ReadonlyArray<Row>) =>
      sql<{ request_id: string }>`
      INSERT INTO usage_records (${sql.literal(usageColumns)})
      SELECT ${sql.literal(usageColumns)} FROM json_populate_recordset(NULL::usage_records, ${JSON.stringify(rows)})
      ON CONFLICT (request_id) DO NOTHING
      RETURNING request_id`.pipe(Effect.map((created) => {
        const fresh = new Set(created.map((r) => r.request_id))
        return rows.map((row) =>
          fresh.delete(row.request_id) ? Exit.succeed("created" as const) : Exit.succeed("exists" as const)
        )
      }))
    const insertOne = options.batch === undefined
      ? (row: Row) => Effect.flatMap(insert([row]), (outcomes) => outcomes[0]!)
      : yield* makeGroupCommit(insert, options.batch)

    const record = Effect.fnUntraced(function*(usage: UsageRecord) {
      return yield* insertOne(toRow(usage))
    }, orUnavailable)

    const list = Effect.fnUntraced(
      function*(filter: UsageFilter, page: { readonly cursor?: string | undefined; readonly limit: number }) {
        const empty: UsagePage = { records: [], nextCursor: undefined }
        const limit = Number.isFinite(page.limit) ? Math.min(Math.max(1, Math.floor(page.limit)), maxLimit) : 1
        // An unreadable cursor ends the listing rather than restarting it: a client looping on
        // `nextCursor` must terminate.
        const from = page.cursor === undefined ? Option.none() : decodeCursor(page.cursor)
        if (page.cursor !== undefined && Option.isNone(from)) return empty
        if (Number.isNaN(filter.from) || Number.isNaN(filter.to)) return empty
        const after = Option.match(from, {
          onNone: () => sql`TRUE`,
          onSome: ([at, requestId]) => sql`(at, request_id) < (${bound(at)}, ${requestId})`
        })
        const selected = yield* decodeUsage(
          yield* sql`
          SELECT * FROM usage_records
          WHERE ${matching(filter)} AND ${after}
          ORDER BY at DESC, request_id DESC
          LIMIT ${limit + 1}`
        )
        const records = selected.slice(0, limit)
        return {
          records,
          nextCursor: selected.length > limit ? encodeCursor(records[records.length - 1]!) : undefined
        }
      },
      orUnavailable
    )

    const summarize = Effect.fnUntraced(function*(filter: UsageFilter, groupBy: UsageGrouping) {
      if (Number.isNaN(filter.from) || Number.isNaN(filter.to)) return []
      const rows = yield* decodeSummary(
        yield* sql`
        SELECT (${sql.literal(groupExpression[groupBy])}) COLLATE "C" AS grp, count(*) AS calls, sum(credits) AS credits
        FROM usage_records
        WHERE ${matching(filter)}
        GROUP BY grp
        ORDER BY grp`
      )
      return rows.map((row): UsageSummaryRow => ({ group: row.grp, calls: row.calls, credits: row.credits }))
    }, orUnavailable)

    return UsageLog.of({ record, list, summarize })
  })

export const makePgUsageLog = make({}) as Effect.Effect<typeof UsageLog.Service, never, SqlClient.SqlClient>

/** Concurrent calls' rows are inserted together, one statement and one commit per group. */
export const makePgUsageLogBatched = (batch: GroupCommitOptions = { maxSize: 256, workers: 2 }) => make({ batch })

export const PgUsageLogLive = Layer.effect(UsageLog, makePgUsageLog)
export const PgUsageLogBatchedLive = Layer.scoped(UsageLog, makePgUsageLogBatched())
