import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

const statements: ReadonlyArray<string> = [
  // One row per project that configured anything. The attempt in flight is recorded before the
  // provider is called (its idempotency key derives from `attempt`), so a replay reuses it.
  `CREATE TABLE auto_top_up (
    project_id text COLLATE "C" PRIMARY KEY,
    enabled boolean NOT NULL DEFAULT false,
    threshold_credits bigint NOT NULL DEFAULT 0 CHECK (threshold_credits BETWEEN 0 AND 9007199254740991),
    amount_credits bigint NOT NULL DEFAULT 0 CHECK (amount_credits BETWEEN 0 AND 9007199254740991),
    monthly_cap_credits bigint NOT NULL DEFAULT 0 CHECK (monthly_cap_credits BETWEEN 0 AND 9007199254740991),
    endpoint_url text,
    endpoint_secret text,
    phase text NOT NULL DEFAULT 'idle' CHECK (phase IN ('idle', 'charging', 'needs_customer')),
    attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    trigger text,
    credits bigint CHECK (credits BETWEEN 0 AND 9007199254740991),
    amount_cents bigint CHECK (amount_cents BETWEEN 0 AND 9007199254740991),
    started_at bigint CHECK (started_at BETWEEN 0 AND 9007199254740991),
    last_result text CHECK (last_result IN ('succeeded', 'needs_customer', 'failed')),
    month text NOT NULL DEFAULT '',
    month_charged bigint NOT NULL DEFAULT 0 CHECK (month_charged BETWEEN 0 AND 9007199254740991),
    CHECK (phase <> 'charging' OR attempt > 0)
  )`,
  `CREATE INDEX auto_top_up_charging_idx ON auto_top_up (started_at, project_id) WHERE phase = 'charging'`
]

/** Auto top-up settings, the notification endpoint and the per-wallet charge state. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
