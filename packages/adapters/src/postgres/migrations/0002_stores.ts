import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Identifiers are `text COLLATE "C"`: byte order, which is JavaScript's string order for the
 * ids we issue, so every `ORDER BY id` agrees with the in-memory adapters and with cursors
 * compared in TypeScript. Times are epoch millis and credits whole units, both BIGINT bounded
 * to JavaScript's safe integers so every stored value reads back exactly as a number.
 */
const statements: ReadonlyArray<string> = [
  `CREATE TABLE api_keys (
    id text COLLATE "C" PRIMARY KEY,
    project_id text COLLATE "C" NOT NULL,
    hash text NOT NULL CONSTRAINT api_keys_hash_key UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    prefix text NOT NULL,
    environment text NOT NULL CHECK (environment IN ('live', 'test')),
    name text,
    status text NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at bigint NOT NULL CHECK (created_at BETWEEN 0 AND 9007199254740991),
    expires_at bigint CHECK (expires_at BETWEEN 0 AND 9007199254740991),
    revoked_at bigint CHECK (revoked_at BETWEEN 0 AND 9007199254740991),
    rotated_to text COLLATE "C" CHECK (rotated_to <> id)
  )`,
  `CREATE INDEX api_keys_project_idx ON api_keys (project_id, created_at DESC, id DESC)`,

  `CREATE TABLE projects (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    plan_id text COLLATE "C" NOT NULL,
    plan_version integer NOT NULL CHECK (plan_version > 0),
    created_at bigint NOT NULL CHECK (created_at BETWEEN 0 AND 9007199254740991)
  )`,
  `CREATE INDEX projects_created_idx ON projects (created_at, id)`,

  // A plan's fields live in `body` (encoded with the Plan schema, without its version); the
  // columns are what the queries filter and sort on.
  `CREATE TABLE plan_versions (
    id text COLLATE "C" NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    price_cents bigint NOT NULL CHECK (price_cents BETWEEN 0 AND 9007199254740991),
    body jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'),
    PRIMARY KEY (id, version)
  )`,

  `CREATE TABLE routes (
    id text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object')
  )`,

  `CREATE TABLE datasets (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    contributor text COLLATE "C" NOT NULL,
    share_bps integer NOT NULL CHECK (share_bps BETWEEN 0 AND 10000)
  )`,

  `CREATE TABLE usage_records (
    request_id text COLLATE "C" PRIMARY KEY,
    at bigint NOT NULL CHECK (at BETWEEN 0 AND 9007199254740991),
    project_id text COLLATE "C" NOT NULL,
    key_id text COLLATE "C" NOT NULL,
    plan_id text COLLATE "C" NOT NULL,
    plan_version integer NOT NULL,
    route_id text COLLATE "C" NOT NULL,
    category text COLLATE "C" NOT NULL,
    dataset_id text COLLATE "C",
    status integer NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('captured', 'voided', 'refused')),
    refusal text,
    latency_ms integer NOT NULL CHECK (latency_ms >= 0),
    credits bigint NOT NULL CHECK (credits BETWEEN 0 AND 9007199254740991),
    limiter text NOT NULL
      CHECK (limiter IN ('allowed', 'rejected', 'degraded_open', 'degraded_closed', 'skipped'))
  )`,
  // Listing a project's usage newest first, keyed on (at, request_id), and its daily summaries.
  `CREATE INDEX usage_records_project_at_idx ON usage_records (project_id, at DESC, request_id DESC)`,
  // A contributor's revenue per dataset, and traffic per route, across every project.
  `CREATE INDEX usage_records_dataset_at_idx ON usage_records (dataset_id, at) WHERE dataset_id IS NOT NULL`,
  `CREATE INDEX usage_records_route_at_idx ON usage_records (route_id, at)`,

  // `claimable_at` is null until the first claim, then the end of the lease or the retry time.
  `CREATE TABLE billing_inbox (
    id text COLLATE "C" PRIMARY KEY,
    provider text NOT NULL CHECK (provider IN ('stripe', 'sandbox')),
    type text NOT NULL,
    created_at bigint NOT NULL CHECK (created_at BETWEEN 0 AND 9007199254740991),
    payload jsonb NOT NULL,
    received_at bigint NOT NULL CHECK (received_at BETWEEN 0 AND 9007199254740991),
    status text NOT NULL CHECK (status IN ('pending', 'processed', 'failed')),
    attempts integer NOT NULL CHECK (attempts >= 0),
    processed_at bigint CHECK (processed_at BETWEEN 0 AND 9007199254740991),
    last_error text,
    claimable_at bigint,
    CHECK ((status = 'processed') = (processed_at IS NOT NULL))
  )`,
  `CREATE INDEX billing_inbox_pending_idx ON billing_inbox (created_at, received_at, id) WHERE status = 'pending'`,

  // Delivered messages stay (with `delivered_at`) so that their ids deduplicate for good.
  `CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    project_id text COLLATE "C" NOT NULL,
    topic text NOT NULL,
    payload jsonb NOT NULL,
    available_at bigint NOT NULL CHECK (available_at BETWEEN -9007199254740991 AND 9007199254740991),
    attempts integer NOT NULL CHECK (attempts >= 0),
    last_error text,
    delivered_at bigint
  )`,
  `CREATE INDEX outbox_due_idx ON outbox (available_at, id) WHERE delivered_at IS NULL`
]

/** Keys, projects, the catalog, usage rows, the billing inbox and the outbox. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
