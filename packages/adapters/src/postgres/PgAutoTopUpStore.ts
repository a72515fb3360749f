import { SqlClient } from "@effect/sql"
import type {
  AutoTopUpSettings,
  AutoTopUpState,
  BeginRequest,
  ChargeResult,
  Credits,
  NotificationEndpoint
} from "@tollgate/core"
import {
  AutoTopUpStore,
  AutoTopUpStoreUnavailable,
  beginTransition,
  emptyAutoTopUpState,
  finishTransition,
  ProjectId
} from "@tollgate/core"
import { Effect, Layer, Schema } from "effect"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; the table bounds every value to a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

const Row = Schema.Struct({
  project_id: ProjectId,
  enabled: Schema.Boolean,
  threshold_credits: Int8,
  amount_credits: Int8,
  monthly_cap_credits: Int8,
  endpoint_url: Schema.NullOr(Schema.String),
  endpoint_secret: Schema.NullOr(Schema.String),
  phase: Schema.Literal("idle", "charging", "needs_customer"),
  attempt: Schema.Number,
  trigger: Schema.NullOr(Schema.String),
  credits: Schema.NullOr(Int8),
  amount_cents: Schema.NullOr(Int8),
  started_at: Schema.NullOr(Int8),
  last_result: Schema.NullOr(Schema.Literal("succeeded", "needs_customer", "failed")),
  month: Schema.String,
  month_charged: Int8
})
type Row = typeof Row.Type

const decodeRows = Schema.decodeUnknown(Schema.Array(Row))

const fromRow = (row: Row): AutoTopUpState => ({
  projectId: row.project_id,
  settings: {
    enabled: row.enabled,
    thresholdCredits: row.threshold_credits as Credits,
    amountCredits: row.amount_credits as Credits,
    monthlyCapCredits: row.monthly_cap_credits as Credits
  },
  endpoint: row.endpoint_url === null || row.endpoint_secret === null
    ? undefined
    : { url: row.endpoint_url, secret: row.endpoint_secret },
  phase: row.phase,
  current: row.attempt === 0 || row.trigger === null || row.credits === null || row.amount_cents === null ||
      row.started_at === null
    ? undefined
    : {
      attempt: row.attempt,
      trigger: row.trigger,
      credits: row.credits as Credits,
      amountCents: row.amount_cents,
      startedAt: row.started_at
    },
  lastResult: row.last_result ?? undefined,
  month: row.month,
  monthCharged: row.month_charged as Credits
})

const orUnavailable = outage(
  (message) => new AutoTopUpStoreUnavailable({ message }),
  "a stored auto top-up state could not be read"
)

/**
 * Auto top-up state in PostgreSQL. A transition locks the project's row (`FOR UPDATE`), applies
 * the same pure transition as the in-memory store and writes the result in one transaction, so
 * concurrent workers serialize on the row: at most one of them starts an attempt.
 */
export const makePgAutoTopUpStore = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const read = (projectId: ProjectId, lock: boolean) =>
    Effect.map(
      Effect.flatMap(
        lock
          ? sql`SELECT * FROM auto_top_up WHERE project_id = ${projectId} FOR UPDATE`
          : sql`SELECT * FROM auto_top_up WHERE project_id = ${projectId}`,
        decodeRows
      ),
      (rows) => rows[0] === undefined ? emptyAutoTopUpState(projectId) : fromRow(rows[0])
    )

  /** Creates the project's row if missing, so that `FOR UPDATE` has something to lock. */
  const ensureRow = (projectId: ProjectId) =>
    sql`INSERT INTO auto_top_up (project_id) VALUES (${projectId}) ON CONFLICT (project_id) DO NOTHING`

  const write = (state: AutoTopUpState) =>
    sql`
      UPDATE auto_top_up SET
        enabled = ${state.settings.enabled},
        threshold_credits = ${state.settings.thresholdCredits},
        amount_credits = ${state.settings.amountCredits},
        monthly_cap_credits = ${state.settings.monthlyCapCredits},
        phase = ${state.phase},
        attempt = ${state.current?.attempt ?? 0},
        trigger = ${state.current?.trigger ?? null},
        credits = ${state.current?.credits ?? null},
        amount_cents = ${state.current?.amountCents ?? null},
        started_at = ${state.current?.startedAt ?? null},
        last_result = ${state.lastResult ?? null},
        month = ${state.month},
        month_charged = ${state.monthCharged}
      WHERE project_id = ${state.projectId}`

  const transition = <A>(projectId: ProjectId, apply: (state: AutoTopUpState) => readonly [A, AutoTopUpState]) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* ensureRow(projectId)
      const [result, next] = apply(yield* read(projectId, true))
      yield* write(next)
      return [result, next] as const
    }))

  const get = Effect.fnUntraced(function*(projectId: ProjectId) {
    return yield* read(projectId, false)
  }, orUnavailable)

  const configure = Effect.fnUntraced(
    function*(projectId: ProjectId, settings: AutoTopUpSettings) {
      const [, next] = yield* transition(projectId, (state) => [undefined, { ...state, settings }])
      return next
    },
    orUnavailable
  )

  const setEndpoint = Effect.fnUntraced(
    function*(projectId: ProjectId, endpoint: NotificationEndpoint) {
      yield* sql`
        INSERT INTO auto_top_up (project_id, endpoint_url, endpoint_secret)
        VALUES (${projectId}, ${endpoint.url}, ${endpoint.secret})
        ON CONFLICT (project_id) DO UPDATE SET
          endpoint_url = excluded.endpoint_url,
          endpoint_secret = excluded.endpoint_secret`
    },
    orUnavailable
  )

  const begin = Effect.fnUntraced(function*(projectId: ProjectId, request: BeginRequest) {
    const [result] = yield* transition(projectId, (state) => beginTransition(state, request))
    return result
  }, orUnavailable)

  const finish = Effect.fnUntraced(
    function*(projectId: ProjectId, attempt: number, result: ChargeResult) {
      const [ended] = yield* transition(projectId, (state) => finishTransition(state, attempt, result))
      return ended
    },
    orUnavailable
  )

  const stalled = Effect.fnUntraced(
    function*(options: { readonly startedBefore: number; readonly limit: number }) {
      const limit = Number.isFinite(options.limit) ? Math.min(Math.max(0, Math.floor(options.limit)), 1_000_000) : 0
      if (limit === 0) return []
      const rows = yield* decodeRows(
        yield* sql`
          SELECT * FROM auto_top_up
          WHERE phase = 'charging' AND started_at < ${options.startedBefore}
          ORDER BY started_at, project_id
          LIMIT ${limit}`
      )
      return rows.map(fromRow)
    },
    orUnavailable
  )

  return AutoTopUpStore.of({ get, configure, setEndpoint, begin, finish, stalled })
})

export const PgAutoTopUpStoreLive = Layer.effect(AutoTopUpStore, makePgAutoTopUpStore)
