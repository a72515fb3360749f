import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * `Ledger.pruneReplays` deletes the remembered outcomes of per-call writes (holds, captures,
 * voids) older than a cut-off, in slices. Rows are written in time order, so a BRIN index on
 * `created_at` finds the old ones at almost no cost to the writes (a B-tree would add an index
 * insert to every hold and capture).
 */
const statements: ReadonlyArray<string> = [
  `CREATE INDEX ledger_idempotency_created ON ledger_idempotency USING brin (created_at)`
]

/** An index for pruning old replay records. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
