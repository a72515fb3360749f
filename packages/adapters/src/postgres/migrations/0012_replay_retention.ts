import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * `Ledger.pruneReplays` deletes the remembered outcomes of per-call writes (holds, captures,
 * voids) older than a cut-off, in slices taken in `created_at` order, each starting where the
 * last ended. (A BRIN index would cost the writes less, but the records kept for good, grants
 * and withdrawals, and rows written into space freed by pruning would widen its ranges until
 * every sweep scanned most of the table.) On a large existing table the build blocks ledger
 * writes while it runs; build it beforehand with CREATE INDEX CONCURRENTLY under this name.
 */
const statements: ReadonlyArray<string> = [
  `CREATE INDEX IF NOT EXISTS ledger_idempotency_created ON ledger_idempotency (created_at)`
]

/** An index for pruning old replay records. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
