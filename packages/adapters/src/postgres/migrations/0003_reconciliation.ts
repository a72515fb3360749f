import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Reconciliation reports and their differences. A report is saved whole: its differences are
 * replaced with it, and deleted with it.
 */
const statements: ReadonlyArray<string> = [
  `CREATE TABLE reconciliation_reports (
    id text COLLATE "C" PRIMARY KEY,
    window_from bigint NOT NULL CHECK (window_from BETWEEN 0 AND 9007199254740991),
    window_to bigint NOT NULL CHECK (window_to BETWEEN 0 AND 9007199254740991),
    started_at bigint NOT NULL CHECK (started_at BETWEEN 0 AND 9007199254740991),
    finished_at bigint NOT NULL CHECK (finished_at BETWEEN 0 AND 9007199254740991),
    status text NOT NULL CHECK (status IN ('clean', 'differences', 'failed')),
    payments integer NOT NULL CHECK (payments >= 0),
    refunds integer NOT NULL CHECK (refunds >= 0),
    disputes integer NOT NULL CHECK (disputes >= 0),
    differences integer NOT NULL CHECK (differences >= 0),
    detail text,
    CHECK (window_from < window_to)
  )`,
  `CREATE INDEX reconciliation_reports_started_idx ON reconciliation_reports (started_at DESC, id DESC)`,

  `CREATE TABLE reconciliation_differences (
    report_id text COLLATE "C" NOT NULL REFERENCES reconciliation_reports (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    kind text NOT NULL CHECK (kind IN (
      'missing_grant', 'amount_mismatch', 'double_grant', 'missing_clawback', 'unknown_payment', 'orphan_grant'
    )),
    provider_object_id text NOT NULL,
    project_id text COLLATE "C",
    expected_credits bigint CHECK (expected_credits BETWEEN 0 AND 9007199254740991),
    ledger_credits bigint CHECK (ledger_credits BETWEEN 0 AND 9007199254740991),
    detail text NOT NULL,
    PRIMARY KEY (report_id, position)
  )`
]

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
