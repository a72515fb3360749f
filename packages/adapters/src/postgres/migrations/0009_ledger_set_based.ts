import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Set-based batches of holds and captures. A batch used to run the single-call function once per
 * item (a dozen statements per item); now the statements run once per batch and only the
 * arithmetic runs per item, in memory:
 *
 * - every key's lock is taken up front, in lock-id order, and the keys' records read in one query;
 * - a batch of holds then locks every wallet it may draw from, in lock-id order, and reads their
 *   lots in one query; a batch of captures locks the wallets of its partial captures (the only
 *   ones that give credit back to lots), then its holds' rows, and reads the holds in one query;
 * - items are decided in item order, exactly as the single calls would decide them one after the
 *   other (a key seen earlier in the batch replays or conflicts like a stored one);
 * - lots, holds, transactions, entries, balances and idempotency records are written with one
 *   statement each.
 *
 * Lock order, for every writer: idempotency keys (by lock id), then wallets (by lock id), then
 * hold rows (by id), then lots (only ever changed under their wallet's lock, so never waited
 * for), then balance rows by account name. The single-call functions take one of each, in the
 * same order. A capture of a hold's whole amount takes no wallet lock: it changes no lot, and the
 * hold's row lock keeps it from racing a void, an expiry or another capture of the same hold.
 */
const statements: ReadonlyArray<string> = [
  // Transaction-scoped advisory locks on names, in lock-id order (the one order every batch uses).
  `CREATE FUNCTION tg_lock_all(p_namespace text, p_names text[]) RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_advisory_xact_lock(l) FROM (
      SELECT DISTINCT hashtextextended(p_namespace || n, 0) AS l FROM unnest(p_names) AS n ORDER BY 1) AS s;
  END $$`,
  // The keys' first outcomes: key -> {"f": fingerprint, "o": outcome}. (PL/pgSQL keeps its plans
  // for the session; a SQL function that cannot be inlined is planned again in every transaction.)
  `CREATE FUNCTION tg_priors(p_keys text[]) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
  BEGIN
    RETURN (SELECT coalesce(jsonb_object_agg(key, jsonb_build_object('f', fingerprint, 'o', outcome)), '{}')
      FROM ledger_idempotency WHERE key = ANY (p_keys));
  END $$`,
  // The JSON builders are STABLE, as jsonb_build_object is: declared IMMUTABLE they could not be
  // inlined, and each call site would plan them again in every transaction.
  ...[
    "tg_hold_json(holds)",
    "tg_grant_json(grants)",
    "tg_insufficient(text, bigint, bigint)",
    "tg_hold_refusal(holds, bigint, bigint)",
    "tg_hold_not_found(text)"
  ].map((f) => `ALTER FUNCTION ${f} STABLE`),
  // What a write under an already used key returns (tg_replay's answer, from a prior record).
  `CREATE FUNCTION tg_replayed(p_prior jsonb, p_key text, p_fingerprint text) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_prior->>'f' = p_fingerprint THEN (p_prior->'o') || '{"replay": true}'::jsonb
      ELSE jsonb_build_object('err', jsonb_build_object(
        '_tag', 'IdempotencyConflict', 'code', 'exists_with_different_request', 'idempotencyKey', p_key)) END
  $$`,
  `CREATE OR REPLACE FUNCTION tg_replay(p_key text, p_fingerprint text) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior jsonb;
  BEGIN
    PERFORM tg_lock_all('tollgate.key:', ARRAY[p_key]);
    prior := tg_priors(ARRAY[p_key]) -> p_key;
    RETURN CASE WHEN prior IS NULL THEN NULL ELSE tg_replayed(prior, p_key, p_fingerprint) END;
  END $$`,
  `CREATE OR REPLACE FUNCTION tg_lock_wallet(p_project text) RETURNS void LANGUAGE sql AS $$
    SELECT tg_lock_all('tollgate.wallet:', ARRAY[p_project])
  $$`,
  // An account's balance is spread over up to 16 rows, wallets' too (captures of one wallet no
  // longer hold its lock). A writer takes a row no other transaction holds if there is one, and
  // waits (for a random row) only when all are taken, so concurrent captures do not queue on a
  // balance row through each other's commits. Accounts in name order, so waits form no cycle.
  `CREATE OR REPLACE FUNCTION tg_apply_balances(p_accounts text[], p_amounts bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
  DECLARE d record;
  BEGIN
    FOR d IN SELECT acc, sum(amt)::bigint AS amt FROM unnest(p_accounts, p_amounts) AS e(acc, amt)
      GROUP BY acc ORDER BY acc COLLATE "C"
    LOOP
      UPDATE account_balances SET balance = balance + d.amt WHERE (account, shard) = (
        SELECT account, shard FROM account_balances WHERE account = d.acc ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED);
      IF NOT FOUND THEN
        INSERT INTO account_balances AS b (account, shard, balance) VALUES (d.acc, floor(random() * 16)::smallint, d.amt)
          ON CONFLICT (account, shard) DO UPDATE SET balance = b.balance + EXCLUDED.balance;
      END IF;
    END LOOP;
  END $$`,
  // A hold's row is locked (after its wallet) by whatever resolves it, so a capture that does not
  // need the wallet's lock still resolves a hold at most once.
  `CREATE OR REPLACE FUNCTION tg_locked_hold(p_hold_id text) RETURNS holds LANGUAGE plpgsql AS $$
  DECLARE project text; h holds;
  BEGIN
    SELECT project_id INTO project FROM holds WHERE id = p_hold_id;
    IF NOT FOUND THEN RETURN NULL; END IF;
    PERFORM tg_lock_wallet(project);
    SELECT * INTO h FROM holds WHERE id = p_hold_id FOR UPDATE;
    RETURN h;
  END $$`,
  // Batches apply their balance deltas themselves now; tg_post's batch branch is never taken again.
  `DROP FUNCTION tg_begin_batch()`,
  `DROP FUNCTION tg_end_batch()`,
  `DROP FUNCTION tg_hold_many(jsonb)`,
  `DROP FUNCTION tg_capture_many(jsonb)`,
  // The batch functions' statements take arrays whose lengths change with every batch; left to
  // itself the plan cache keeps planning them anew (a custom plan for a one-element array looks
  // cheaper than the generic one), which cost about a third of a batch's CPU.
  // Holds. A wallet's lots are read once (spending order) and drawn in memory item after item:
  // each item sees only lots live at its own time and what earlier items left, as tg_hold would.
  `CREATE FUNCTION tg_hold_many(p_items jsonb) RETURNS TABLE (i int, result jsonb) LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan AS $$
  DECLARE
    size int := jsonb_array_length(p_items);
    idx int[]; keys text[]; fps text[]; hold_ids text[]; projects text[]; amounts bigint[]; expiries bigint[];
    nows bigint[];
    known jsonb; results jsonb[] := '{}'; remembered ledger_idempotency[] := '{}'; created holds[] := '{}';
    lot_ids text[]; lot_projects text[]; lot_left bigint[]; lot_drawn bigint[]; lot_expiries bigint[];
    wallets text[]; first_lot jsonb; k int; j int; available bigint; left_ bigint; take bigint; allocations jsonb; h holds;
    outcome jsonb;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- aggregates read a sorted subquery in its order: one sort instead of one per aggregate
    SELECT array_agg((e->>'i')::int), array_agg(e->>'key'), array_agg(e->>'fingerprint'), array_agg(e->>'holdId'),
        array_agg(e->>'projectId'), array_agg((e->>'amount')::bigint), array_agg((e->>'expiresAt')::bigint),
        array_agg((e->>'now')::bigint)
      INTO idx, keys, fps, hold_ids, projects, amounts, expiries, nows
      FROM (SELECT e FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, o) ORDER BY x.o) AS x;
    PERFORM tg_lock_all('tollgate.key:', keys);
    known := tg_priors(keys);
    wallets := ARRAY(SELECT DISTINCT projects[o] FROM generate_series(1, size) AS o WHERE NOT known ? keys[o]);
    PERFORM tg_lock_all('tollgate.wallet:', wallets);
    SELECT array_agg(g.id), array_agg(g.project_id), array_agg(g.remaining), array_agg(g.expires_at)
      INTO lot_ids, lot_projects, lot_left, lot_expiries
      -- per wallet through its index (OFFSET 0 keeps the generic plan from scanning every lot)
      FROM (SELECT l.* FROM unnest(wallets) AS w(project),
              LATERAL (SELECT id, project_id, remaining, expires_at, created_at FROM grants
                       WHERE project_id = w.project AND remaining > 0 OFFSET 0) AS l
            ORDER BY l.project_id, coalesce(l.expires_at, 9223372036854775807), l.created_at, l.id COLLATE "C") AS g;
    lot_drawn := array_fill(0::bigint, ARRAY[coalesce(cardinality(lot_ids), 0)]);
    first_lot := '{}';
    FOR j IN 1 .. coalesce(cardinality(lot_ids), 0) LOOP
      IF NOT first_lot ? lot_projects[j] THEN first_lot := first_lot || jsonb_build_object(lot_projects[j], j); END IF;
    END LOOP;
    FOR k IN 1 .. size LOOP
      IF known ? keys[k] THEN
        results[k] := tg_replayed(known -> keys[k], keys[k], fps[k]);
        CONTINUE;
      END IF;
      available := 0;
      j := (first_lot ->> projects[k])::int;
      WHILE j IS NOT NULL AND j <= cardinality(lot_ids) AND lot_projects[j] = projects[k] LOOP
        IF lot_expiries[j] IS NULL OR lot_expiries[j] > nows[k] THEN available := available + lot_left[j]; END IF;
        j := j + 1;
      END LOOP;
      IF available < amounts[k] THEN
        outcome := tg_insufficient(projects[k], amounts[k], available);
      ELSE
        left_ := amounts[k];
        allocations := '[]';
        j := (first_lot ->> projects[k])::int;
        WHILE left_ > 0 LOOP
          IF lot_left[j] > 0 AND (lot_expiries[j] IS NULL OR lot_expiries[j] > nows[k]) THEN
            take := least(left_, lot_left[j]);
            lot_left[j] := lot_left[j] - take;
            lot_drawn[j] := lot_drawn[j] + take;
            left_ := left_ - take;
            allocations := allocations || jsonb_build_array(jsonb_build_object('grantId', lot_ids[j], 'amount', take));
          END IF;
          j := j + 1;
        END LOOP;
        h := ROW(hold_ids[k], projects[k], amounts[k], 'pending', allocations, nows[k], expiries[k], NULL, NULL, NULL);
        created := created || h;
        outcome := jsonb_build_object('ok', jsonb_build_object('hold', tg_hold_json(h)));
      END IF;
      results[k] := outcome;
      remembered := remembered || ROW(keys[k], fps[k], outcome, nows[k])::ledger_idempotency;
      known := known || jsonb_build_object(keys[k], jsonb_build_object('f', fps[k], 'o', outcome));
    END LOOP;
    UPDATE grants AS g SET remaining = g.remaining - d.drawn
      FROM unnest(lot_ids, lot_drawn) AS d(id, drawn) WHERE g.id = d.id AND d.drawn > 0;
    INSERT INTO holds SELECT * FROM unnest(created);
    INSERT INTO ledger_idempotency SELECT * FROM unnest(remembered);
    FOR k IN 1 .. size LOOP
      i := idx[k];
      result := results[k];
      RETURN NEXT;
    END LOOP;
  END $$`,
  // Captures. Holds are read once under their wallets' locks; each item is checked against its
  // hold as earlier items of the batch left it (a second capture of one hold is refused).
  `CREATE FUNCTION tg_capture_many(p_items jsonb) RETURNS TABLE (i int, result jsonb) LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan AS $$
  DECLARE
    size int := jsonb_array_length(p_items);
    idx int[]; keys text[]; fps text[]; hold_ids text[]; amounts bigint[]; nows bigint[];
    leg_counts int[]; leg_accounts text[]; leg_amounts bigint[]; first_leg int; next_leg int := 1;
    known jsonb; results jsonb[] := '{}'; remembered ledger_idempotency[] := '{}';
    fresh int[]; held holds[]; position jsonb; changed holds[] := '{}';
    posted ledger_transactions[] := '{}'; entry_tx bigint[] := '{}'; entry_ordinals smallint[] := '{}';
    entry_accounts text[] := '{}'; entry_amounts bigint[] := '{}';
    k int; h holds; refusal jsonb; tx bigint; accounts text[]; legs bigint[]; outcome jsonb; o int;
    transactions regclass := pg_get_serial_sequence('ledger_transactions', 'id'); j int; ordinal int;
    entries jsonb; posting jsonb;
  BEGIN
    SELECT array_agg((e->>'i')::int), array_agg(e->>'key'), array_agg(e->>'fingerprint'), array_agg(e->>'holdId'),
        array_agg((e->>'amount')::bigint), array_agg(jsonb_array_length(e->'accounts')), array_agg((e->>'now')::bigint)
      INTO idx, keys, fps, hold_ids, amounts, leg_counts, nows
      FROM (SELECT e FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, o) ORDER BY x.o) AS x;
    -- every item's payees, one after the other (item k's are the next leg_counts[k])
    SELECT coalesce(array_agg(acc), '{}'), coalesce(array_agg(amt), '{}') INTO leg_accounts, leg_amounts
      FROM (SELECT l.acc, (x.e->'amounts'->>(l.n - 1)::int)::bigint AS amt
            FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, o),
              jsonb_array_elements_text(x.e->'accounts') WITH ORDINALITY AS l(acc, n)
            ORDER BY x.o, l.n) AS p;
    PERFORM tg_lock_all('tollgate.key:', keys);
    known := tg_priors(keys);
    fresh := ARRAY(SELECT s FROM generate_series(1, size) AS s WHERE NOT known ? keys[s]);
    -- only a partial capture gives credit back to lots and needs its wallet's lock; a full one
    -- changes just its hold (row-locked below) and balance rows
    SELECT coalesce(array_agg(t), '{}') INTO held FROM holds AS t WHERE t.id = ANY (ARRAY(SELECT hold_ids[s] FROM unnest(fresh) AS s));
    PERFORM tg_lock_all('tollgate.wallet:', ARRAY(
      SELECT t.project_id FROM unnest(held) AS t JOIN unnest(fresh) AS s ON t.id = hold_ids[s]
      WHERE t.status = 'pending' AND amounts[s] < t.amount));
    SELECT coalesce(array_agg(t), '{}') INTO held FROM (SELECT * FROM holds WHERE id = ANY (ARRAY(SELECT id FROM unnest(held)))
      ORDER BY id FOR UPDATE) AS t;
    SELECT coalesce(jsonb_object_agg(held[s].id, s), '{}') INTO position FROM generate_series(1, cardinality(held)) AS s;
    FOR k IN 1 .. size LOOP
      first_leg := next_leg;
      next_leg := next_leg + leg_counts[k];
      IF known ? keys[k] THEN
        results[k] := tg_replayed(known -> keys[k], keys[k], fps[k]);
        CONTINUE;
      END IF;
      o := (position ->> hold_ids[k])::int;
      IF o IS NULL THEN
        outcome := tg_hold_not_found(hold_ids[k]);
      ELSE
        h := held[o];
        refusal := tg_hold_refusal(h, amounts[k], nows[k]);
        IF refusal IS NOT NULL THEN
          outcome := refusal;
        ELSE
          -- the transaction tg_capture would post (an unbalanced one fails the commit, and then
          -- the batch, whose items are retried one by one and refused as tg_capture refuses them)
          accounts := array_prepend('wallet:' || h.project_id, leg_accounts[first_leg : next_leg - 1]);
          legs := array_prepend(-amounts[k], leg_amounts[first_leg : next_leg - 1]);
          tx := NULL;
          posting := NULL;
          IF amounts[k] > 0 THEN
            tx := nextval(transactions);
            posted := posted || ROW(tx, keys[k], 'capture', h.project_id, nows[k], NULL)::ledger_transactions;
            entries := '[]';
            ordinal := 0;
            FOR j IN 1 .. cardinality(legs) LOOP
              CONTINUE WHEN legs[j] = 0;
              ordinal := ordinal + 1;
              entry_tx := entry_tx || tx;
              entry_ordinals := entry_ordinals || ordinal::smallint;
              entry_accounts := entry_accounts || accounts[j];
              entry_amounts := entry_amounts || legs[j];
              entries := entries || jsonb_build_object('account', accounts[j], 'amount', legs[j]);
            END LOOP;
            -- tg_posted_json's shape, built here without a query per item
            posting := jsonb_build_object('id', tx::text, 'idempotencyKey', keys[k], 'kind', 'capture',
              'projectId', h.project_id, 'createdAt', nows[k], 'entries', entries);
          END IF;
          h.status := 'captured'; h.captured := amounts[k]; h.resolved_at := nows[k]; h.transaction_id := tx;
          held[o] := h;
          changed := changed || h;
          outcome := jsonb_build_object('ok', jsonb_build_object(
            'hold', tg_hold_json(h),
            'transaction', posting,
            'released', h.amount - amounts[k]));
        END IF;
      END IF;
      results[k] := outcome;
      remembered := remembered || ROW(keys[k], fps[k], outcome, nows[k])::ledger_idempotency;
      known := known || jsonb_build_object(keys[k], jsonb_build_object('f', fps[k], 'o', outcome));
    END LOOP;
    -- what a capture does not consume goes back to the lots, allocations in drawing order
    IF EXISTS (SELECT FROM unnest(changed) AS c WHERE c.captured < c.amount) THEN
    UPDATE grants AS g SET remaining = g.remaining + r.released
      FROM (SELECT a.grant_id, sum(a.amount - least(a.amount, greatest(0, c.captured - a.before))) AS released
            FROM unnest(changed) AS c,
              LATERAL (SELECT e->>'grantId' AS grant_id, (e->>'amount')::bigint AS amount,
                         coalesce(sum((e->>'amount')::bigint) OVER (ORDER BY x.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                       FROM jsonb_array_elements(c.allocations) WITH ORDINALITY AS x(e, n)) AS a
            WHERE c.captured < c.amount GROUP BY a.grant_id) AS r
      WHERE g.id = r.grant_id AND r.released > 0;
    END IF;
    INSERT INTO ledger_transactions SELECT * FROM unnest(posted);
    INSERT INTO ledger_entries (transaction_id, ordinal, account, amount)
      SELECT * FROM unnest(entry_tx, entry_ordinals, entry_accounts, entry_amounts);
    UPDATE holds AS t SET status = c.status, captured = c.captured, resolved_at = c.resolved_at,
        transaction_id = c.transaction_id
      FROM unnest(changed) AS c WHERE t.id = c.id;
    INSERT INTO ledger_idempotency SELECT * FROM unnest(remembered);
    -- last: other captures may want the same balance rows
    PERFORM tg_apply_balances(entry_accounts, entry_amounts);
    FOR k IN 1 .. size LOOP
      i := idx[k];
      result := results[k];
      RETURN NEXT;
    END LOOP;
  END $$`
]

/** Holds and captures in batches: one statement per batch for each kind of row, not per item. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
