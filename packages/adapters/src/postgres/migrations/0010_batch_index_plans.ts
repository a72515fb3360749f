import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The batch functions' generic plans join their unnested items to `holds` and `grants` by id.
 * Estimating the unnest at ten rows, the planner hashed a sequential scan of the whole table
 * whenever it was small enough to look cheap (a few thousand rows): that scan was most of a
 * capture's time (a single lease settlement went from about 2.4 to 0.9 ms on PostgreSQL 15).
 * Every row these functions touch is reached by its key, so sequential scans are priced out of
 * their plans; where no index applies the planner still scans.
 */
const statements: ReadonlyArray<string> = [
  `ALTER FUNCTION tg_capture_many(jsonb) SET enable_seqscan = off`,
  `ALTER FUNCTION tg_hold_many(jsonb) SET enable_seqscan = off`
]

/** Index plans for the batch functions. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
