import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

const statements: ReadonlyArray<string> = [
  // The token of the lease running on a pending event (NULL when none is): completing or failing
  // the event checks it, so a worker whose lease ran out changes nothing.
  `ALTER TABLE billing_inbox ADD COLUMN lease_token text`
]

/** Billing inbox leases carry a token. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
