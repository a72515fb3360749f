import { SqlClient } from "@effect/sql"
import type { PendingPlanChange, PlanChangeState, PlanId, SubscriptionChange } from "@tollgate/core"
import {
  PlanChangeReason,
  PlanChangeStore,
  PlanChangeStoreUnavailable,
  ProjectId,
  SubscriptionChange as Change
} from "@tollgate/core"
import { Effect, Layer, Option, Schema } from "effect"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; the table bounds every value to a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

const Row = Schema.Struct({
  project_id: ProjectId,
  base_plan_id: Schema.String,
  changes: Schema.Array(Change),
  pending_plan_id: Schema.NullOr(Schema.String),
  pending_effective_at: Schema.NullOr(Int8),
  pending_reason: Schema.NullOr(PlanChangeReason)
})
type Row = typeof Row.Type

const decodeRows = Schema.decodeUnknown(Schema.Array(Row))

const fromRow = (row: Row): PlanChangeState => {
  const state = { projectId: row.project_id, basePlanId: row.base_plan_id as PlanId, changes: row.changes }
  return row.pending_plan_id === null || row.pending_effective_at === null || row.pending_reason === null
    ? state
    : {
      ...state,
      pending: {
        planId: row.pending_plan_id as PlanId,
        effectiveAt: row.pending_effective_at,
        reason: row.pending_reason
      }
    }
}

const orUnavailable = outage(
  (message) => new PlanChangeStoreUnavailable({ message }),
  "a stored plan change could not be read"
)

/**
 * Subscription histories in PostgreSQL, one row per project. `record` appends under the row's lock
 * in one statement, so concurrent workers never lose an event; an event already in the array (by
 * JSON containment of the whole event: every event has the same keys) is not appended twice.
 */
export const makePgPlanChangeStore = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const read = (rows: unknown) => Effect.map(decodeRows(rows), (decoded) => decoded.map(fromRow))

  const get = Effect.fnUntraced(function*(projectId: ProjectId) {
    const rows = yield* read(yield* sql`SELECT * FROM plan_changes WHERE project_id = ${projectId}`)
    return Option.fromNullable(rows[0])
  }, orUnavailable)

  const record = Effect.fnUntraced(
    function*(projectId: ProjectId, basePlanId: PlanId, change: SubscriptionChange) {
      const added = JSON.stringify([{ ...change }])
      const rows = yield* read(
        yield* sql`
          INSERT INTO plan_changes (project_id, base_plan_id, changes)
          VALUES (${projectId}, ${basePlanId}, ${added}::jsonb)
          ON CONFLICT (project_id) DO UPDATE SET changes = CASE
            WHEN plan_changes.changes @> excluded.changes THEN plan_changes.changes
            ELSE plan_changes.changes || excluded.changes
          END
          RETURNING *`
      )
      return rows[0]!
    },
    orUnavailable
  )

  const setPending = Effect.fnUntraced(
    function*(projectId: ProjectId, pending: PendingPlanChange | undefined) {
      yield* sql`
        UPDATE plan_changes SET
          pending_plan_id = ${pending?.planId ?? null},
          pending_effective_at = ${pending?.effectiveAt ?? null},
          pending_reason = ${pending?.reason ?? null}
        WHERE project_id = ${projectId}`
    },
    orUnavailable
  )

  const clearPending = Effect.fnUntraced(
    function*(projectId: ProjectId, applied: PendingPlanChange) {
      const rows = yield* sql`
        UPDATE plan_changes SET pending_plan_id = NULL, pending_effective_at = NULL, pending_reason = NULL
        WHERE project_id = ${projectId} AND pending_plan_id = ${applied.planId}
          AND pending_effective_at = ${applied.effectiveAt} AND pending_reason = ${applied.reason}
        RETURNING project_id`
      return rows.length > 0
    },
    orUnavailable
  )

  const due = Effect.fnUntraced(function*(options: { readonly now: number; readonly limit: number }) {
    return yield* read(
      yield* sql`
        SELECT * FROM plan_changes
        WHERE pending_plan_id IS NOT NULL AND pending_effective_at <= ${options.now}
        ORDER BY pending_effective_at, project_id
        LIMIT ${Math.max(0, options.limit)}`
    )
  }, orUnavailable)

  return PlanChangeStore.of({ get, record, setPending, clearPending, due })
})

export const PgPlanChangeStoreLive = Layer.effect(PlanChangeStore, makePgPlanChangeStore)
