import { SqlClient } from "@effect/sql"
import type { ReconciliationId } from "@tollgate/core"
import {
  decodeReconciliationCursor,
  DifferenceKind,
  encodeReconciliationCursor,
  ReconciliationDifference,
  ReconciliationReport,
  ReconciliationRun,
  ReconciliationStatus,
  ReconciliationStore,
  ReconciliationStoreUnavailable
} from "@tollgate/core"
import { Effect, Layer, Option, Schema } from "effect"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; the tables bound every value to a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

const RunRow = Schema.Struct({
  id: Schema.String,
  window_from: Int8,
  window_to: Int8,
  started_at: Int8,
  finished_at: Int8,
  status: ReconciliationStatus,
  payments: Schema.Number,
  refunds: Schema.Number,
  disputes: Schema.Number,
  differences: Schema.Number,
  detail: Schema.NullOr(Schema.String)
})

const RunFromRow = Schema.transform(RunRow, ReconciliationRun, {
  strict: true,
  decode: (row) => ({
    id: row.id,
    from: row.window_from,
    to: row.window_to,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    status: row.status,
    counts: { payments: row.payments, refunds: row.refunds, disputes: row.disputes, differences: row.differences },
    ...(row.detail === null ? {} : { detail: row.detail })
  }),
  encode: (run) => ({
    id: run.id,
    window_from: run.from,
    window_to: run.to,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    status: run.status,
    ...run.counts,
    detail: run.detail ?? null
  })
})

const DifferenceRow = Schema.Struct({
  kind: DifferenceKind,
  provider_object_id: Schema.String,
  project_id: Schema.NullOr(Schema.String),
  expected_credits: Schema.NullOr(Int8),
  ledger_credits: Schema.NullOr(Int8),
  detail: Schema.String
})

const DifferenceFromRow = Schema.transform(DifferenceRow, ReconciliationDifference, {
  strict: true,
  decode: (row) => ({
    kind: row.kind,
    providerObjectId: row.provider_object_id,
    ...(row.project_id === null ? {} : { projectId: row.project_id }),
    ...(row.expected_credits === null ? {} : { expectedCredits: row.expected_credits }),
    ...(row.ledger_credits === null ? {} : { ledgerCredits: row.ledger_credits }),
    detail: row.detail
  }),
  encode: (difference) => ({
    kind: difference.kind,
    provider_object_id: difference.providerObjectId,
    project_id: difference.projectId ?? null,
    expected_credits: difference.expectedCredits ?? null,
    ledger_credits: difference.ledgerCredits ?? null,
    detail: difference.detail
  })
})

const decodeRuns = Schema.decodeUnknown(Schema.Array(RunFromRow))
const decodeDifferences = Schema.decodeUnknown(Schema.Array(DifferenceFromRow))
const encodeRun = Schema.encode(RunFromRow)
const encodeDifferences = Schema.encode(Schema.Array(DifferenceFromRow))

const orUnavailable = outage(
  (message) => new ReconciliationStoreUnavailable({ message }),
  "a stored reconciliation report could not be read"
)

/** Reconciliation reports in PostgreSQL: a save replaces the report and its differences in one transaction. */
export const makePgReconciliationStore = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const save = Effect.fnUntraced(function*(report: ReconciliationReport) {
    const { differences, ...run } = report
    const row = yield* encodeRun(new ReconciliationRun(run))
    const rows = (yield* encodeDifferences(differences)).map((d, position) => ({
      report_id: report.id,
      position,
      ...d
    }))
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`
        INSERT INTO reconciliation_reports ${sql.insert(row)}
        ON CONFLICT (id) DO UPDATE SET
          window_from = excluded.window_from,
          window_to = excluded.window_to,
          started_at = excluded.started_at,
          finished_at = excluded.finished_at,
          status = excluded.status,
          payments = excluded.payments,
          refunds = excluded.refunds,
          disputes = excluded.disputes,
          differences = excluded.differences,
          detail = excluded.detail`
      yield* sql`DELETE FROM reconciliation_differences WHERE report_id = ${report.id}`
      if (rows.length > 0) yield* sql`INSERT INTO reconciliation_differences ${sql.insert(rows)}`
    }))
  }, orUnavailable)

  const get = Effect.fnUntraced(function*(id: ReconciliationId) {
    const runs = yield* decodeRuns(yield* sql`SELECT * FROM reconciliation_reports WHERE id = ${id}`)
    const run = runs[0]
    if (run === undefined) return Option.none()
    const differences = yield* decodeDifferences(
      yield* sql`SELECT * FROM reconciliation_differences WHERE report_id = ${id} ORDER BY position`
    )
    return Option.some(new ReconciliationReport({ ...run, differences }))
  }, orUnavailable)

  const list = Effect.fnUntraced(
    function*(page: { readonly cursor?: string | undefined; readonly limit: number }) {
      const after = decodeReconciliationCursor(page.cursor)
      const limit = Math.min(Math.max(0, Math.floor(page.limit)), 1_000_000)
      if (limit === 0) return { runs: [], nextCursor: undefined }
      const rows = yield* decodeRuns(
        after === undefined
          ? yield* sql`SELECT * FROM reconciliation_reports ORDER BY started_at DESC, id DESC LIMIT ${limit + 1}`
          : yield* sql`
            SELECT * FROM reconciliation_reports
            WHERE (started_at, id) < (${after.startedAt}, ${after.id})
            ORDER BY started_at DESC, id DESC LIMIT ${limit + 1}`
      )
      const runs = rows.slice(0, limit)
      const last = runs[runs.length - 1]
      return {
        runs,
        nextCursor: rows.length > limit && last !== undefined ? encodeReconciliationCursor(last) : undefined
      }
    },
    orUnavailable
  )

  return ReconciliationStore.of({ save, get, list })
})

export const PgReconciliationStoreLive = Layer.effect(ReconciliationStore, makePgReconciliationStore)
