import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Refunds reclaim spent credit from the payees it paid (core `Reclaim`, the same arithmetic):
 * a withdrawal naming the grant it refunds takes what the wallet cannot cover back from the
 * accounts the grant's spent credit paid, each in proportion, in the same transaction.
 */
const statements: ReadonlyArray<string> = [
  // What refunds of a lot already reclaimed from its spending: the refunded credit covered (never
  // more than was spent) and, per payee account, what it gave back.
  `ALTER TABLE grants
    ADD COLUMN refund_covered bigint NOT NULL DEFAULT 0 CHECK (refund_covered >= 0 AND refund_covered <= amount),
    ADD COLUMN refund_taken jsonb NOT NULL DEFAULT '{}'`,
  // A refund reads the captured holds of one project created since its lot (rare; not on the hot path).
  `CREATE INDEX holds_project_captured ON holds (project_id, created_at) WHERE status = 'captured'`,
  // What a lot's credit paid for: `spent`, the credit of the lot captured calls consumed (a capture
  // consumes its hold's allocations in drawing order), and `paid`, per payee account, the sum over
  // those calls of floor(payee amount × consumed from the lot / captured).
  `CREATE FUNCTION tg_lot_spending(p_grant_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH drawn AS (
      SELECT h.captured, h.transaction_id, x.e->>'grantId' AS grant_id, (x.e->>'amount')::bigint AS amount,
        sum((x.e->>'amount')::bigint) OVER (PARTITION BY h.id ORDER BY x.n) AS upto
      FROM grants g
      JOIN holds h ON h.project_id = g.project_id AND h.status = 'captured' AND h.created_at >= g.created_at
        AND h.captured > 0
      CROSS JOIN LATERAL jsonb_array_elements(h.allocations) WITH ORDINALITY AS x(e, n)
      WHERE g.id = p_grant_id
    ), calls AS (
      SELECT captured, transaction_id, greatest(0, least(amount, captured - (upto - amount))) AS from_lot
      FROM drawn WHERE grant_id = p_grant_id
    ), paid AS (
      SELECT e.account, sum(div(e.amount::numeric * c.from_lot, c.captured)) AS paid
      FROM calls c JOIN ledger_entries e ON e.transaction_id = c.transaction_id AND e.amount > 0
      WHERE c.from_lot > 0 GROUP BY e.account
    )
    SELECT jsonb_build_object(
      'spent', (SELECT coalesce(sum(from_lot), 0) FROM calls),
      'paid', (SELECT coalesce(jsonb_object_agg(account, paid) FILTER (WHERE paid > 0), '{}') FROM paid))
  $$`,
  `DROP FUNCTION tg_withdraw(text, text, text, bigint, text, text, boolean, bigint)`,
  `CREATE FUNCTION tg_withdraw(p_key text, p_fingerprint text, p_project text, p_amount bigint, p_to text,
      p_reason text, p_partial boolean, p_reclaim_of text, p_now bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; available bigint; taken bigint; tx bigint; lot grants; spending jsonb; spent_left numeric;
    cover bigint; accounts text[] := '{}'; amounts bigint[] := '{}'; reclaimed bigint := 0;
  BEGIN
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    PERFORM tg_lock_wallet(p_project);
    available := tg_available(p_project, p_now);
    IF available < p_amount AND NOT p_partial THEN
      RETURN tg_remember(p_key, p_fingerprint, tg_insufficient(p_project, p_amount, available), p_now);
    END IF;
    taken := least(available, p_amount);
    IF taken > 0 THEN PERFORM tg_draw(p_project, taken, p_now); END IF;
    IF p_reclaim_of IS NOT NULL AND taken < p_amount THEN
      -- the refunded grant, by its key; the wallet's lock (held) covers its lot
      SELECT g.* INTO lot FROM ledger_idempotency i JOIN grants g ON g.id = i.outcome->'ok'->'grant'->>'id'
        WHERE i.key = p_reclaim_of AND g.project_id = p_project;
      IF FOUND THEN
        spending := tg_lot_spending(lot.id);
        -- what earlier refunds did not cover yet, and what each payee has not given back yet
        spent_left := (spending->>'spent')::numeric - lot.refund_covered;
        cover := greatest(0, least(p_amount - taken, spent_left));
        IF cover > 0 THEN
          SELECT coalesce(array_agg(account ORDER BY account COLLATE "C"), '{}'),
                 coalesce(array_agg(-share ORDER BY account COLLATE "C"), '{}')
            INTO accounts, amounts
            FROM (SELECT p.account,
                    div(greatest(0, p.paid::numeric - coalesce((lot.refund_taken->>p.account)::numeric, 0)) * cover,
                      spent_left)::bigint AS share
                  FROM jsonb_each_text(spending->'paid') AS p(account, paid)) s
            WHERE share > 0;
          reclaimed := -coalesce((SELECT sum(a) FROM unnest(amounts) AS a), 0);
          UPDATE grants SET refund_covered = refund_covered + cover,
            refund_taken = (SELECT coalesce(jsonb_object_agg(account, total), '{}') FROM (
              SELECT account, sum(amount) AS total FROM (
                SELECT t.key AS account, t.value::numeric AS amount FROM jsonb_each_text(refund_taken) AS t
                UNION ALL SELECT u.account, -u.amount FROM unnest(accounts, amounts) AS u(account, amount)) x
              GROUP BY account) y)
            WHERE id = lot.id;
        END IF;
      END IF;
    END IF;
    IF taken + reclaimed > 0 THEN
      tx := tg_post(p_key, 'withdraw', p_project, p_now, p_reason,
        ARRAY['wallet:' || p_project] || accounts || ARRAY[p_to], ARRAY[-taken] || amounts || ARRAY[taken + reclaimed]);
    END IF;
    RETURN tg_remember(p_key, p_fingerprint, jsonb_build_object('ok', jsonb_build_object(
      'withdrawn', taken, 'reclaimed', reclaimed,
      'transaction', CASE WHEN tx IS NULL THEN NULL ELSE tg_transaction_json(tx) END)), p_now);
  END $$`
]

/** Refunds reclaim spent credit from its payees. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
