import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

const statements: ReadonlyArray<string> = [
  // One row per project with subscription events: the plan before the first, every distinct event
  // (a JSON array, appended under the row's lock), and the change waiting for its period's end.
  `CREATE TABLE plan_changes (
    project_id text COLLATE "C" PRIMARY KEY,
    base_plan_id text NOT NULL,
    changes jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(changes) = 'array'),
    pending_plan_id text,
    pending_effective_at bigint CHECK (pending_effective_at BETWEEN 0 AND 9007199254740991),
    pending_reason text CHECK (pending_reason IN ('created', 'upgraded', 'downgraded', 'cancelled')),
    CHECK ((pending_plan_id IS NULL) = (pending_effective_at IS NULL)
      AND (pending_plan_id IS NULL) = (pending_reason IS NULL))
  )`,
  `CREATE INDEX plan_changes_due_idx ON plan_changes (pending_effective_at, project_id)
    WHERE pending_plan_id IS NOT NULL`
]

/** Subscription histories and pending plan changes. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
