import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The credit ledger. Money rules live in the database as well as in code: amounts are checked,
 * transactions and entries cannot be updated or deleted, every transaction must balance at
 * commit, and each write is one function call that takes the wallet's lock, so two gateways
 * can never interleave on one wallet. Lock order is always: idempotency key, then wallet,
 * then balance rows by account name (no cycles, so no deadlocks).
 */
const statements = [
  `CREATE TABLE grants (
    id text PRIMARY KEY,
    project_id text NOT NULL,
    source text NOT NULL CHECK (source IN ('purchase', 'plan_allowance', 'promotion', 'adjustment')),
    amount bigint NOT NULL CHECK (amount > 0),
    remaining bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at bigint,
    created_at bigint NOT NULL
  ) WITH (fillfactor = 50)`,
  // No index mentions `remaining`, so drawing from a lot is a HOT update (no new index entries),
  // and fillfactor leaves room on the page for it: a hot wallet's lot is updated on every hold.
  `CREATE INDEX grants_drawable ON grants (project_id, (coalesce(expires_at, 9223372036854775807)), created_at, id COLLATE "C")`,
  `CREATE INDEX grants_expiring ON grants (expires_at) WHERE expires_at IS NOT NULL`,
  `CREATE TABLE holds (
    id text PRIMARY KEY,
    project_id text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    status text NOT NULL CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    allocations jsonb NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    captured bigint CHECK (captured >= 0 AND captured <= amount),
    resolved_at bigint,
    transaction_id bigint,
    CHECK ((status = 'pending') = (resolved_at IS NULL)),
    CHECK ((status = 'captured') = (captured IS NOT NULL))
  ) WITH (fillfactor = 70)`,
  `CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'pending'`,
  `CREATE INDEX holds_project_pending ON holds (project_id) WHERE status = 'pending'`,
  `CREATE TABLE ledger_transactions (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('grant', 'capture', 'expire_grant', 'withdraw')),
    project_id text NOT NULL,
    created_at bigint NOT NULL,
    reason text
  )`,
  `CREATE INDEX ledger_transactions_project ON ledger_transactions (project_id, id DESC)`,
  `CREATE TABLE ledger_entries (
    transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    ordinal smallint NOT NULL,
    account text NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (transaction_id, ordinal)
  )`,
  // Balances are counters derived from the entries. Shared accounts (revenue, funding, a popular
  // contributor's earnings) are spread over 16 rows so concurrent captures do not queue on one.
  `CREATE TABLE account_balances (
    account text NOT NULL,
    shard smallint NOT NULL,
    balance bigint NOT NULL,
    PRIMARY KEY (account, shard)
  )`,
  `CREATE TABLE ledger_idempotency (
    key text PRIMARY KEY,
    fingerprint text NOT NULL,
    outcome jsonb NOT NULL,
    created_at bigint NOT NULL
  )`,
  `CREATE FUNCTION tg_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'ledger % rows are immutable; post a correcting transaction instead', TG_TABLE_NAME;
  END $$`,
  `CREATE TRIGGER ledger_transactions_immutable BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION tg_immutable()`,
  `CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION tg_immutable()`,
  `CREATE FUNCTION tg_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE total numeric; legs int;
  BEGIN
    SELECT coalesce(sum(amount), 0), count(*) INTO total, legs FROM ledger_entries WHERE transaction_id = NEW.id;
    IF total <> 0 OR legs < 2 THEN
      RAISE EXCEPTION 'ledger transaction % is unbalanced (sum %, % entries)', NEW.id, total, legs;
    END IF;
    RETURN NULL;
  END $$`,
  `CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tg_check_balanced()`,

  `CREATE FUNCTION tg_lock_wallet(p_project text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('tollgate.wallet:' || p_project, 0))
  $$`,
  // The first outcome of a key, or null. Holding the key's lock until commit makes concurrent
  // writes with one key take effect once.
  `CREATE FUNCTION tg_replay(p_key text, p_fingerprint text) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior record;
  BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('tollgate.key:' || p_key, 0));
    SELECT fingerprint, outcome INTO prior FROM ledger_idempotency WHERE key = p_key;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF prior.fingerprint <> p_fingerprint THEN
      RETURN jsonb_build_object('err', jsonb_build_object(
        '_tag', 'IdempotencyConflict', 'code', 'exists_with_different_request', 'idempotencyKey', p_key));
    END IF;
    RETURN prior.outcome || '{"replay": true}'::jsonb;
  END $$`,
  `CREATE FUNCTION tg_remember(p_key text, p_fingerprint text, p_outcome jsonb, p_now bigint) RETURNS jsonb
    LANGUAGE sql AS $$
    INSERT INTO ledger_idempotency (key, fingerprint, outcome, created_at) VALUES (p_key, p_fingerprint, p_outcome, p_now);
    SELECT p_outcome
  $$`,
  // Balance rows are always updated in account order (no lock cycles). Shared accounts take one
  // of 16 rows at random, so concurrent transactions rarely queue on the same row.
  `CREATE FUNCTION tg_apply_balances(p_accounts text[], p_amounts bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO account_balances AS b (account, shard, balance)
      SELECT acc, CASE WHEN acc LIKE 'wallet:%' THEN 0 ELSE floor(random() * 16)::smallint END, sum(amt)
      FROM unnest(p_accounts, p_amounts) AS e(acc, amt) GROUP BY acc ORDER BY acc COLLATE "C"
      ON CONFLICT (account, shard) DO UPDATE SET balance = b.balance + EXCLUDED.balance
  $$`,
  `CREATE FUNCTION tg_begin_batch() RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    CREATE TEMP TABLE IF NOT EXISTS tg_batch_deltas (account text NOT NULL, amount bigint NOT NULL) ON COMMIT DELETE ROWS;
    PERFORM set_config('tollgate.batch', 'on', true);
  END $$`,
  `CREATE FUNCTION tg_end_batch() RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM tg_apply_balances(
      ARRAY(SELECT account FROM tg_batch_deltas GROUP BY account ORDER BY account COLLATE "C"),
      ARRAY(SELECT sum(amount)::bigint FROM tg_batch_deltas GROUP BY account ORDER BY account COLLATE "C"));
    DELETE FROM tg_batch_deltas;
    PERFORM set_config('tollgate.batch', 'off', true);
  END $$`,
  `CREATE FUNCTION tg_post(p_key text, p_kind text, p_project text, p_now bigint, p_reason text,
      p_accounts text[], p_amounts bigint[]) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE tx bigint; total numeric;
  BEGIN
    SELECT coalesce(sum(a), 0) INTO total FROM unnest(p_amounts) AS a;
    IF total <> 0 OR cardinality(p_accounts) <> cardinality(p_amounts) THEN
      RAISE EXCEPTION 'unbalanced % transaction %', p_kind, p_key;
    END IF;
    INSERT INTO ledger_transactions (idempotency_key, kind, project_id, created_at, reason)
      VALUES (p_key, p_kind, p_project, p_now, p_reason) RETURNING id INTO tx;
    INSERT INTO ledger_entries (transaction_id, ordinal, account, amount)
      SELECT tx, (row_number() OVER ())::smallint, acc, amt FROM unnest(p_accounts, p_amounts) AS e(acc, amt) WHERE amt <> 0;
    IF current_setting('tollgate.batch', true) = 'on' THEN
      -- inside a batch: balances move once, at the end of the batch (tg_flush_balances)
      INSERT INTO tg_batch_deltas (account, amount)
        SELECT acc, amt FROM unnest(p_accounts, p_amounts) AS e(acc, amt) WHERE amt <> 0;
    ELSE
      PERFORM tg_apply_balances(ARRAY(SELECT acc FROM unnest(p_accounts, p_amounts) AS e(acc, amt) WHERE amt <> 0),
        ARRAY(SELECT amt FROM unnest(p_accounts, p_amounts) AS e(acc, amt) WHERE amt <> 0));
    END IF;
    RETURN tx;
  END $$`,
  `CREATE FUNCTION tg_transaction_json(p_tx bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
      'id', t.id::text, 'idempotencyKey', t.idempotency_key, 'kind', t.kind, 'projectId', t.project_id,
      'createdAt', t.created_at, 'reason', t.reason,
      'entries', (SELECT jsonb_agg(jsonb_build_object('account', e.account, 'amount', e.amount) ORDER BY e.ordinal)
                  FROM ledger_entries e WHERE e.transaction_id = t.id)))
    FROM ledger_transactions t WHERE t.id = p_tx
  $$`,
  // The JSON of a transaction just posted, from what was posted (no read-back on the hot path).
  // Entries keep the order tg_post gave them; zero legs are not stored, so they are left out.
  `CREATE FUNCTION tg_posted_json(p_tx bigint, p_key text, p_kind text, p_project text, p_now bigint, p_reason text,
      p_accounts text[], p_amounts bigint[]) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
      'id', p_tx::text, 'idempotencyKey', p_key, 'kind', p_kind, 'projectId', p_project, 'createdAt', p_now,
      'reason', p_reason,
      'entries', (SELECT jsonb_agg(jsonb_build_object('account', acc, 'amount', amt) ORDER BY n)
                  FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS e(acc, amt, n) WHERE amt <> 0)))
  $$`,
  `CREATE FUNCTION tg_grant_json(g grants) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object('id', g.id, 'projectId', g.project_id, 'source', g.source,
      'amount', g.amount, 'remaining', g.remaining, 'expiresAt', g.expires_at, 'createdAt', g.created_at))
  $$`,
  `CREATE FUNCTION tg_hold_json(h holds) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object('id', h.id, 'projectId', h.project_id, 'amount', h.amount,
      'status', h.status, 'allocations', h.allocations, 'createdAt', h.created_at, 'expiresAt', h.expires_at,
      'captured', h.captured, 'resolvedAt', h.resolved_at, 'transactionId', h.transaction_id::text))
  $$`,
  `CREATE FUNCTION tg_insufficient(p_project text, p_requested bigint, p_available bigint) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('err', jsonb_build_object('_tag', 'InsufficientCredit', 'code', 'insufficient_credit',
      'projectId', p_project, 'requested', p_requested, 'available', p_available))
  $$`,
  // Takes up to p_amount from the wallet's live lots, earliest expiry first; returns the allocations.
  `CREATE FUNCTION tg_draw(p_project text, p_amount bigint, p_now bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE lot record; left_ bigint := p_amount; take bigint; allocations jsonb := '[]';
  BEGIN
    FOR lot IN SELECT id, remaining FROM grants
      WHERE project_id = p_project AND remaining > 0 AND (expires_at IS NULL OR expires_at > p_now)
      ORDER BY coalesce(expires_at, 9223372036854775807), created_at, id COLLATE "C"
    LOOP
      EXIT WHEN left_ = 0;
      take := least(left_, lot.remaining);
      UPDATE grants SET remaining = remaining - take WHERE id = lot.id;
      allocations := allocations || jsonb_build_array(jsonb_build_object('grantId', lot.id, 'amount', take));
      left_ := left_ - take;
    END LOOP;
    RETURN allocations;
  END $$`,
  `CREATE FUNCTION tg_available(p_project text, p_now bigint) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(remaining), 0)::bigint FROM grants
    WHERE project_id = p_project AND remaining > 0 AND (expires_at IS NULL OR expires_at > p_now)
  $$`,
  // Returns to the lots what a resolved hold does not consume (allocations in drawing order).
  `CREATE FUNCTION tg_release(p_allocations jsonb, p_consumed bigint) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE a record; left_ bigint := p_consumed; take bigint; released bigint := 0;
  BEGIN
    FOR a IN SELECT e->>'grantId' AS grant_id, (e->>'amount')::bigint AS amount
      FROM jsonb_array_elements(p_allocations) WITH ORDINALITY AS x(e, n) ORDER BY n
    LOOP
      take := least(left_, a.amount);
      left_ := left_ - take;
      IF a.amount - take > 0 THEN
        UPDATE grants SET remaining = remaining + (a.amount - take) WHERE id = a.grant_id;
        released := released + (a.amount - take);
      END IF;
    END LOOP;
    RETURN released;
  END $$`,
  `CREATE FUNCTION tg_grant(p_key text, p_fingerprint text, p_grant_id text, p_project text, p_amount bigint,
      p_source text, p_source_account text, p_expires_at bigint, p_reason text, p_now bigint) RETURNS jsonb
    LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; g grants; tx bigint;
  BEGIN
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    PERFORM tg_lock_wallet(p_project);
    INSERT INTO grants (id, project_id, source, amount, remaining, expires_at, created_at)
      VALUES (p_grant_id, p_project, p_source, p_amount, p_amount, p_expires_at, p_now) RETURNING * INTO g;
    tx := tg_post(p_key, 'grant', p_project, p_now, p_reason,
      ARRAY[p_source_account, 'wallet:' || p_project], ARRAY[-p_amount, p_amount]);
    RETURN tg_remember(p_key, p_fingerprint,
      jsonb_build_object('ok', jsonb_build_object('grant', tg_grant_json(g), 'transaction', tg_transaction_json(tx))), p_now);
  END $$`,
  // A hold writes no ledger entry (credit stays in the wallet until captured), so it may commit
  // without waiting for the disk: a hold lost in a crash only means its call is not charged.
  `CREATE FUNCTION tg_hold(p_key text, p_fingerprint text, p_hold_id text, p_project text, p_amount bigint,
      p_expires_at bigint, p_now bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; available bigint; h holds;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    PERFORM tg_lock_wallet(p_project);
    available := tg_available(p_project, p_now);
    IF available < p_amount THEN
      RETURN tg_remember(p_key, p_fingerprint, tg_insufficient(p_project, p_amount, available), p_now);
    END IF;
    INSERT INTO holds (id, project_id, amount, status, allocations, created_at, expires_at)
      VALUES (p_hold_id, p_project, p_amount, 'pending', tg_draw(p_project, p_amount, p_now), p_now, p_expires_at)
      RETURNING * INTO h;
    RETURN tg_remember(p_key, p_fingerprint, jsonb_build_object('ok', jsonb_build_object('hold', tg_hold_json(h))), p_now);
  END $$`,
  // Checks a hold can be resolved now, in the order the core's state machine does.
  `CREATE FUNCTION tg_hold_refusal(h holds, p_amount bigint, p_now bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
      WHEN h.status <> 'pending' THEN jsonb_build_object('err', jsonb_build_object('_tag', 'HoldAlreadyResolved',
        'code', CASE h.status WHEN 'captured' THEN 'hold_already_captured' WHEN 'voided' THEN 'hold_already_voided'
                ELSE 'hold_expired' END, 'holdId', h.id))
      WHEN p_now >= h.expires_at THEN jsonb_build_object('err', jsonb_build_object('_tag', 'HoldAlreadyResolved',
        'code', 'hold_expired', 'holdId', h.id))
      WHEN p_amount > h.amount THEN jsonb_build_object('err', jsonb_build_object('_tag', 'CaptureExceedsHold',
        'code', 'exceeds_hold', 'holdId', h.id, 'held', h.amount, 'requested', p_amount))
    END
  $$`,
  `CREATE FUNCTION tg_locked_hold(p_hold_id text) RETURNS holds LANGUAGE plpgsql AS $$
  DECLARE project text; h holds;
  BEGIN
    SELECT project_id INTO project FROM holds WHERE id = p_hold_id;
    IF NOT FOUND THEN RETURN NULL; END IF;
    PERFORM tg_lock_wallet(project);
    SELECT * INTO h FROM holds WHERE id = p_hold_id;
    RETURN h;
  END $$`,
  `CREATE FUNCTION tg_hold_not_found(p_hold_id text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('err', jsonb_build_object('_tag', 'HoldNotFound', 'code', 'hold_not_found', 'holdId', p_hold_id))
  $$`,
  `CREATE FUNCTION tg_capture(p_key text, p_fingerprint text, p_hold_id text, p_amount bigint,
      p_accounts text[], p_amounts bigint[], p_now bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; h holds; refusal jsonb; released bigint; tx bigint; accounts text[]; amounts bigint[];
  BEGIN
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    h := tg_locked_hold(p_hold_id);
    IF h.id IS NULL THEN RETURN tg_remember(p_key, p_fingerprint, tg_hold_not_found(p_hold_id), p_now); END IF;
    refusal := tg_hold_refusal(h, p_amount, p_now);
    IF refusal IS NOT NULL THEN RETURN tg_remember(p_key, p_fingerprint, refusal, p_now); END IF;
    released := tg_release(h.allocations, p_amount);
    accounts := array_prepend('wallet:' || h.project_id, p_accounts);
    amounts := array_prepend(-p_amount, p_amounts);
    IF p_amount > 0 THEN
      tx := tg_post(p_key, 'capture', h.project_id, p_now, NULL, accounts, amounts);
    END IF;
    UPDATE holds SET status = 'captured', captured = p_amount, resolved_at = p_now, transaction_id = tx
      WHERE id = p_hold_id RETURNING * INTO h;
    RETURN tg_remember(p_key, p_fingerprint, jsonb_build_object('ok', jsonb_build_object(
      'hold', tg_hold_json(h),
      'transaction', CASE WHEN tx IS NULL THEN NULL
        ELSE tg_posted_json(tx, p_key, 'capture', h.project_id, p_now, NULL, accounts, amounts) END,
      'released', released)), p_now);
  END $$`,
  `CREATE FUNCTION tg_void(p_key text, p_fingerprint text, p_hold_id text, p_now bigint) RETURNS jsonb
    LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; h holds; refusal jsonb;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    h := tg_locked_hold(p_hold_id);
    IF h.id IS NULL THEN RETURN tg_remember(p_key, p_fingerprint, tg_hold_not_found(p_hold_id), p_now); END IF;
    refusal := tg_hold_refusal(h, 0, p_now);
    IF refusal IS NOT NULL THEN RETURN tg_remember(p_key, p_fingerprint, refusal, p_now); END IF;
    PERFORM tg_release(h.allocations, 0);
    UPDATE holds SET status = 'voided', resolved_at = p_now WHERE id = p_hold_id RETURNING * INTO h;
    RETURN tg_remember(p_key, p_fingerprint, jsonb_build_object('ok', jsonb_build_object('hold', tg_hold_json(h))), p_now);
  END $$`,
  `CREATE FUNCTION tg_withdraw(p_key text, p_fingerprint text, p_project text, p_amount bigint, p_to text,
      p_reason text, p_partial boolean, p_now bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; available bigint; taken bigint; tx bigint;
  BEGIN
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    PERFORM tg_lock_wallet(p_project);
    available := tg_available(p_project, p_now);
    IF available < p_amount AND NOT p_partial THEN
      RETURN tg_remember(p_key, p_fingerprint, tg_insufficient(p_project, p_amount, available), p_now);
    END IF;
    taken := least(available, p_amount);
    IF taken > 0 THEN
      PERFORM tg_draw(p_project, taken, p_now);
      tx := tg_post(p_key, 'withdraw', p_project, p_now, p_reason, ARRAY['wallet:' || p_project, p_to], ARRAY[-taken, taken]);
    END IF;
    RETURN tg_remember(p_key, p_fingerprint, jsonb_build_object('ok', jsonb_build_object(
      'withdrawn', taken, 'transaction', CASE WHEN tx IS NULL THEN NULL ELSE tg_transaction_json(tx) END)), p_now);
  END $$`,
  // Batches: many writes in one statement, one transaction and one commit. Items run in wallet
  // order, so concurrent batches take wallet locks in one order and cannot deadlock on them; an
  // item's outcome is exactly what the single call would have returned.
  `CREATE FUNCTION tg_hold_many(p_items jsonb) RETURNS TABLE (i int, result jsonb) LANGUAGE plpgsql AS $$
  DECLARE x record;
  BEGIN
    FOR x IN SELECT (e->>'i')::int AS n, e FROM jsonb_array_elements(p_items) AS e
      ORDER BY e->>'projectId' COLLATE "C", (e->>'i')::int
    LOOP
      i := x.n;
      result := tg_hold(x.e->>'key', x.e->>'fingerprint', x.e->>'holdId', x.e->>'projectId',
        (x.e->>'amount')::bigint, (x.e->>'expiresAt')::bigint, (x.e->>'now')::bigint);
      RETURN NEXT;
    END LOOP;
  END $$`,
  `CREATE FUNCTION tg_capture_many(p_items jsonb) RETURNS TABLE (i int, result jsonb) LANGUAGE plpgsql AS $$
  DECLARE x record;
  BEGIN
    PERFORM tg_begin_batch();
    FOR x IN SELECT (e->>'i')::int AS n, e FROM jsonb_array_elements(p_items) AS e
      LEFT JOIN holds h ON h.id = e->>'holdId'
      ORDER BY h.project_id COLLATE "C" NULLS FIRST, (e->>'i')::int
    LOOP
      i := x.n;
      result := tg_capture(x.e->>'key', x.e->>'fingerprint', x.e->>'holdId', (x.e->>'amount')::bigint,
        ARRAY(SELECT jsonb_array_elements_text(x.e->'accounts')),
        ARRAY(SELECT jsonb_array_elements_text(x.e->'amounts')::bigint), (x.e->>'now')::bigint);
      RETURN NEXT;
    END LOOP;
    PERFORM tg_end_batch();
  END $$`,
  // Sweeps: the state itself makes them idempotent (only pending holds and unexpired remainders move).
  `CREATE FUNCTION tg_expire_hold(p_hold_id text, p_now bigint) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE h holds;
  BEGIN
    h := tg_locked_hold(p_hold_id);
    IF h.id IS NULL OR h.status <> 'pending' OR h.expires_at > p_now THEN RETURN 0; END IF;
    PERFORM tg_release(h.allocations, 0);
    UPDATE holds SET status = 'expired', resolved_at = p_now WHERE id = p_hold_id;
    RETURN h.amount;
  END $$`,
  `CREATE FUNCTION tg_expire_grant(p_grant_id text, p_now bigint) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE project text; g grants;
  BEGIN
    SELECT project_id INTO project FROM grants WHERE id = p_grant_id;
    IF NOT FOUND THEN RETURN 0; END IF;
    PERFORM tg_lock_wallet(project);
    SELECT * INTO g FROM grants WHERE id = p_grant_id;
    IF g.remaining = 0 OR g.expires_at IS NULL OR g.expires_at > p_now THEN RETURN 0; END IF;
    PERFORM tg_post('expire_grant:' || g.id || ':' || p_now, 'expire_grant', g.project_id, p_now,
      'lot ' || g.id || ' expired', ARRAY['wallet:' || g.project_id, 'expired'], ARRAY[-g.remaining, g.remaining]);
    UPDATE grants SET remaining = 0 WHERE id = p_grant_id;
    RETURN g.remaining;
  END $$`
]

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
