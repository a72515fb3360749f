import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Refunds that take other purchases' credit carry the refunded purchase's spending to them (core
 * `Reclaim.refund`, the same arithmetic): a refund draws the refunded lot's own credit first; what
 * it takes from other lots stands in for the refunded lot's spending not accounted for yet, which
 * those lots then carry; a later refund of such a lot reclaims, after its own spending, the
 * spending it carries from the payees of the lot that spent it. Before this, two purchases of
 * which only one was spent, both refunded, reclaimed nothing when the spent one was refunded
 * first (its refund took the other's credit, and the other's refund found no spending of its own).
 */
const statements: ReadonlyArray<string> = [
  `ALTER TABLE grants
    ADD COLUMN refund_carried bigint NOT NULL DEFAULT 0 CHECK (refund_carried >= 0),
    ADD CONSTRAINT grants_refund_accounted CHECK (refund_covered + refund_carried <= amount)`,
  // Spending of lot spent_lot_id that lot_id's credit paid for (a refund of spent_lot_id, or of a
  // lot that carried it, took lot_id's credit), not reclaimed yet; per lot, oldest first.
  `CREATE TABLE refund_carries (
    id bigserial PRIMARY KEY,
    lot_id text NOT NULL REFERENCES grants (id),
    spent_lot_id text NOT NULL REFERENCES grants (id),
    amount bigint NOT NULL CHECK (amount > 0))`,
  `CREATE INDEX refund_carries_lot ON refund_carries (lot_id, id)`,
  // tg_draw, now with the lot p_first (when given) drawn before the others; calls without it are unchanged
  `DROP FUNCTION tg_draw(text, bigint, bigint)`,
  `CREATE FUNCTION tg_draw(p_project text, p_amount bigint, p_now bigint, p_first text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql AS $$
  DECLARE lot record; left_ bigint := p_amount; take bigint; allocations jsonb := '[]';
  BEGIN
    FOR lot IN SELECT id, remaining FROM grants
      WHERE project_id = p_project AND remaining > 0 AND (expires_at IS NULL OR expires_at > p_now)
      ORDER BY (id = p_first) IS NOT TRUE, coalesce(expires_at, 9223372036854775807), created_at, id COLLATE "C"
    LOOP
      EXIT WHEN left_ = 0;
      take := least(left_, lot.remaining);
      UPDATE grants SET remaining = remaining - take WHERE id = lot.id;
      allocations := allocations || jsonb_build_array(jsonb_build_object('grantId', lot.id, 'amount', take));
      left_ := left_ - take;
    END LOOP;
    RETURN allocations;
  END $$`,
  // A lot's spending that no refund has accounted for yet (reclaimed or carried by other lots).
  `CREATE FUNCTION tg_unaccounted(p_lot text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT greatest(0, (tg_lot_spending(id)->>'spent')::bigint - refund_covered - refund_carried)
    FROM grants WHERE id = p_lot
  $$`,
  // Reclaims up to p_limit of lot p_lot's spending from its payees, each in proportion to what it
  // has not given back yet (core Reclaim.reclaim); records it on the lot. Returns what it covered
  // and the legs, {covered, legs: {account: amount}}.
  `CREATE FUNCTION tg_reclaim_from(p_lot text, p_limit bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE lot grants; spending jsonb; spent_left numeric; cover bigint; legs jsonb;
  BEGIN
    SELECT * INTO lot FROM grants WHERE id = p_lot;
    spending := tg_lot_spending(p_lot);
    spent_left := (spending->>'spent')::numeric - lot.refund_covered;
    cover := greatest(0, least(p_limit, spent_left));
    IF cover = 0 THEN RETURN jsonb_build_object('covered', 0, 'legs', '{}'::jsonb); END IF;
    SELECT coalesce(jsonb_object_agg(account, share), '{}') INTO legs FROM (
      SELECT p.account,
        div(greatest(0, p.paid::numeric - coalesce((lot.refund_taken->>p.account)::numeric, 0)) * cover,
          spent_left)::bigint AS share
      FROM jsonb_each_text(spending->'paid') AS p(account, paid)) s
    WHERE share > 0;
    UPDATE grants SET refund_covered = refund_covered + cover,
      refund_taken = (SELECT coalesce(jsonb_object_agg(account, total), '{}') FROM (
        SELECT account, sum(amount) AS total FROM (
          SELECT t.key AS account, t.value::numeric AS amount FROM jsonb_each_text(refund_taken) AS t
          UNION ALL SELECT l.key, l.value::numeric FROM jsonb_each_text(legs) AS l) x
        GROUP BY account) y)
      WHERE id = p_lot;
    RETURN jsonb_build_object('covered', cover, 'legs', legs);
  END $$`,
  `CREATE OR REPLACE FUNCTION tg_withdraw(p_key text, p_fingerprint text, p_project text, p_amount bigint, p_to text,
      p_reason text, p_partial boolean, p_reclaim_of text, p_now bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE prior jsonb; available bigint; taken bigint; tx bigint; v_lot text; drawn jsonb := '[]'; a record;
    left_ bigint; part bigint; ob refund_carries; result jsonb; all_legs jsonb := '[]';
    accounts text[] := '{}'; amounts bigint[] := '{}'; reclaimed bigint := 0;
  BEGIN
    prior := tg_replay(p_key, p_fingerprint);
    IF prior IS NOT NULL THEN RETURN prior; END IF;
    PERFORM tg_lock_wallet(p_project);
    available := tg_available(p_project, p_now);
    IF available < p_amount AND NOT p_partial THEN
      RETURN tg_remember(p_key, p_fingerprint, tg_insufficient(p_project, p_amount, available), p_now);
    END IF;
    taken := least(available, p_amount);
    IF p_reclaim_of IS NOT NULL THEN
      -- the refunded grant, by its key; the wallet's lock (held) covers its lot and its carries
      SELECT g.id INTO v_lot FROM ledger_idempotency i JOIN grants g ON g.id = i.outcome->'ok'->'grant'->>'id'
        WHERE i.key = p_reclaim_of AND g.project_id = p_project;
    END IF;
    IF taken > 0 THEN drawn := tg_draw(p_project, taken, p_now, v_lot); END IF;
    IF v_lot IS NOT NULL THEN
      -- credit taken from other lots stands in for the refunded lot's spending, then for what it carries
      FOR a IN SELECT x.e->>'grantId' AS grant_id, (x.e->>'amount')::bigint AS amount
        FROM jsonb_array_elements(drawn) WITH ORDINALITY AS x(e, n) WHERE x.e->>'grantId' <> v_lot ORDER BY x.n
      LOOP
        left_ := a.amount;
        part := least(left_, tg_unaccounted(v_lot));
        IF part > 0 THEN
          UPDATE grants SET refund_carried = refund_carried + part WHERE id = v_lot;
          INSERT INTO refund_carries (lot_id, spent_lot_id, amount) VALUES (a.grant_id, v_lot, part);
          left_ := left_ - part;
        END IF;
        WHILE left_ > 0 LOOP
          SELECT * INTO ob FROM refund_carries c WHERE c.lot_id = v_lot ORDER BY c.id LIMIT 1;
          EXIT WHEN NOT FOUND;
          part := least(left_, ob.amount);
          IF part = ob.amount THEN DELETE FROM refund_carries WHERE id = ob.id;
          ELSE UPDATE refund_carries SET amount = amount - part WHERE id = ob.id; END IF;
          INSERT INTO refund_carries (lot_id, spent_lot_id, amount) VALUES (a.grant_id, ob.spent_lot_id, part);
          left_ := left_ - part;
        END LOOP;
      END LOOP;
      -- the shortfall: the lot's own spending, then what it carries, from the payees of the lot that spent it
      left_ := p_amount - taken;
      part := least(left_, tg_unaccounted(v_lot));
      IF part > 0 THEN
        result := tg_reclaim_from(v_lot, part);
        all_legs := all_legs || jsonb_build_array(result->'legs');
        left_ := left_ - (result->>'covered')::bigint;
      END IF;
      WHILE left_ > 0 LOOP
        SELECT * INTO ob FROM refund_carries c WHERE c.lot_id = v_lot ORDER BY c.id LIMIT 1;
        EXIT WHEN NOT FOUND;
        -- carried spending is never covered yet (covered + carried <= spent), so all of part is reclaimed
        part := least(left_, ob.amount);
        UPDATE grants SET refund_carried = refund_carried - part WHERE id = ob.spent_lot_id;
        result := tg_reclaim_from(ob.spent_lot_id, part);
        IF (result->>'covered')::bigint <> part THEN
          RAISE EXCEPTION 'carried spending of lot % is not reclaimable', ob.spent_lot_id;
        END IF;
        IF part = ob.amount THEN DELETE FROM refund_carries WHERE id = ob.id;
        ELSE UPDATE refund_carries SET amount = amount - part WHERE id = ob.id; END IF;
        all_legs := all_legs || jsonb_build_array(result->'legs');
        left_ := left_ - part;
      END LOOP;
      SELECT coalesce(array_agg(account ORDER BY account COLLATE "C"), '{}'),
             coalesce(array_agg(-total ORDER BY account COLLATE "C"), '{}')
        INTO accounts, amounts
        FROM (SELECT l.key AS account, sum(l.value::bigint)::bigint AS total
              FROM jsonb_array_elements(all_legs) AS m(e) CROSS JOIN LATERAL jsonb_each_text(m.e) AS l
              GROUP BY l.key) s
        WHERE total > 0;
      reclaimed := -coalesce((SELECT sum(x) FROM unnest(amounts) AS x), 0);
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

/** Refunds carry spending to the lots whose credit they take. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of statements) yield* sql.unsafe(statement)
})
