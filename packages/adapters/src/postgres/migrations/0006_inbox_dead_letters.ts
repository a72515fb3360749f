import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

const statements: ReadonlyArray<string> = [
  // An event that failed every allowed attempt is parked as `dead` until an operator requeues it.
  `ALTER TABLE billing_inbox DROP CONSTRAINT billing_inbox_status_check`,
  `ALTER TABLE billing_inbox ADD CONSTRAINT billing_inbox_status_check
    CHECK (status IN ('pending', 'processed', 'failed', 'dead'))`,
  `CREATE INDEX billing_inbox_dead_idx ON billing_inbox (created_at, received_at, id) WHERE status = 'dead'`
]

/** Dead billing events. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
