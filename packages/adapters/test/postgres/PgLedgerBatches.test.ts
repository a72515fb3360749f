/**
 * The batch functions (`tg_hold_many`, `tg_capture_many`) against the single-call functions they
 * must be equivalent to: the same scenario runs once as two batches and once as the same items
 * called one by one (in item order), each inside a transaction that is rolled back, and every
 * item's outcome and the whole ledger state afterwards must be the same.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import type { Layer } from "effect"
import { pgliteTestClient, postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"

interface Lot {
  readonly wallet: number
  readonly amount: number
  readonly expiresAt: number | null
}
interface HoldItem {
  readonly key: string
  readonly wallet: number
  readonly amount: number
  readonly expiresAt: number
  readonly now: number
}
interface CaptureItem {
  readonly key: string
  readonly hold: string
  readonly amount: number
  readonly contributor: number
  readonly now: number
}
interface Scenario {
  readonly lots: ReadonlyArray<Lot>
  /** held one by one before the batches; `capture` also captures it in full */
  readonly before: ReadonlyArray<HoldItem & { readonly capture: boolean }>
  readonly holds: ReadonlyArray<HoldItem>
  readonly captures: ReadonlyArray<CaptureItem>
}

const wallet = (w: number) => `w${w}`
// a fingerprint stands for the canonical request: same key and same request, same fingerprint
const holdFingerprint = (h: HoldItem) => `hold:${h.wallet}:${h.amount}:${h.expiresAt}`
const captureFingerprint = (c: CaptureItem) => `capture:${c.hold}:${c.amount}:${c.contributor}`
const holdParams = (h: HoldItem, holdId: string) => ({
  key: h.key,
  fingerprint: holdFingerprint(h),
  holdId,
  projectId: wallet(h.wallet),
  amount: h.amount,
  expiresAt: h.expiresAt,
  now: h.now
})
const captureParams = (c: CaptureItem) => {
  const share = Math.min(c.contributor, c.amount)
  const payees = [["earnings:c", share], ["revenue", c.amount - share]] as const
  return {
    key: c.key,
    fingerprint: captureFingerprint(c),
    holdId: c.hold,
    amount: c.amount,
    accounts: payees.map(([account]) => account),
    amounts: payees.map(([, amount]) => amount),
    now: c.now
  }
}

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }

/** Transaction ids come from a sequence that a rollback does not rewind: count them from the run's first. */
const normalize = (value: Json, base: bigint, parent?: string): Json => {
  if (Array.isArray(value)) return value.map((v) => normalize(v, base, parent))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, Json>).map(([k, v]) => [
        k,
        typeof v === "string" &&
          (k === "transactionId" || (k === "id" && (parent === "transaction" || parent === "transactions")))
          ? `t${BigInt(v) - base}`
          : normalize(v, base, k)
      ])
    )
  }
  return value
}

class Rollback {
  constructor(readonly value: unknown) {}
}

/** Runs the scenario, batched or one call at a time, in a transaction that is then rolled back. */
const run = (scenario: Scenario, batched: boolean) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const body = Effect.gen(function*() {
      const [{ base }] = (yield* sql.unsafe<{ base: string }>(
        "SELECT nextval(pg_get_serial_sequence('ledger_transactions', 'id'))::text AS base"
      )) as unknown as [{ base: string }]
      for (const [n, lot] of scenario.lots.entries()) {
        yield* sql.unsafe("SELECT tg_grant($1, $1, $2, $3, $4, 'purchase', 'funding', $5, NULL, $6)", [
          `grant-${n}`,
          `lot-${n}`,
          wallet(lot.wallet),
          lot.amount,
          lot.expiresAt,
          n
        ])
      }
      for (const [n, h] of scenario.before.entries()) {
        yield* sql.unsafe("SELECT tg_hold($1, $2, $3, $4, $5, $6, $7)", Object.values(holdParams(h, `before-${n}`)))
        if (h.capture) {
          yield* sql.unsafe(
            "SELECT tg_capture($1, $2, $3, $4, $5::text[], $6::bigint[], $7)",
            Object.values(
              captureParams({ key: `c-${h.key}`, hold: `before-${n}`, amount: h.amount, contributor: 0, now: h.now })
            )
          )
        }
      }
      const holds = scenario.holds.map((h, n) => ({ ...holdParams(h, `hold-${n}`), i: n }))
      const captures = scenario.captures.map((c, n) => ({ ...captureParams(c), i: n }))
      const outcomes: Array<unknown> = []
      if (batched) {
        for (const [fn, items] of [["tg_hold_many", holds], ["tg_capture_many", captures]] as const) {
          if (items.length === 0) continue
          const rows = yield* sql.unsafe<{ i: number; result: unknown }>(
            `SELECT i, result FROM ${fn}($1::jsonb)`,
            [JSON.stringify(items)]
          )
          assert.deepStrictEqual(rows.map((r) => r.i), items.map((_, n) => n))
          for (const row of rows) outcomes.push(row.result)
        }
      } else {
        for (const { i: _, ...h } of holds) {
          const [row] = yield* sql.unsafe<{ r: unknown }>(
            "SELECT tg_hold($1, $2, $3, $4, $5, $6, $7) AS r",
            Object.values(h) as Array<any>
          )
          outcomes.push(row!.r)
        }
        for (const { i: _, ...c } of captures) {
          const [row] = yield* sql.unsafe<{ r: unknown }>(
            "SELECT tg_capture($1, $2, $3, $4, $5::text[], $6::bigint[], $7) AS r",
            Object.values(c) as Array<any>
          )
          outcomes.push(row!.r)
        }
      }
      const state = yield* sql.unsafe<{ s: unknown }>(`SELECT jsonb_build_object(
        'lots', (SELECT jsonb_agg(jsonb_build_array(id, remaining) ORDER BY id) FROM grants),
        'holds', (SELECT jsonb_agg(tg_hold_json(h) ORDER BY id) FROM holds h),
        'keys', (SELECT jsonb_agg(jsonb_build_array(key, fingerprint, outcome, created_at) ORDER BY key) FROM ledger_idempotency),
        'transactions', (SELECT jsonb_agg(tg_transaction_json(id) ORDER BY id) FROM ledger_transactions),
        'balances', (SELECT jsonb_object_agg(account, total) FROM
          (SELECT account, sum(balance) AS total FROM account_balances GROUP BY account) AS b)) AS s`)
      return yield* Effect.fail(
        new Rollback(normalize({ outcomes, state: state[0]!.s } as Json, BigInt(base)))
      )
    })
    return yield* sql.withTransaction(body).pipe(
      Effect.catchIf((e): e is Rollback => e instanceof Rollback, (e) => Effect.succeed(e.value))
    )
  })

const equivalent = (scenario: Scenario) =>
  Effect.gen(function*() {
    const single = yield* run(scenario, false)
    const batched = yield* run(scenario, true)
    assert.deepStrictEqual(batched, single)
  })

// Lots expire at 150 and 250, items run at 100 or 200, holds end at 180 or later: whether a lot
// or a hold is live depends on the item's own time.
const keyArb = fc.oneof(fc.constantFrom("k0", "k1", "k2", "k3"), fc.uuid())
const holdArb = fc.record({
  key: keyArb,
  wallet: fc.integer({ min: 0, max: 3 }),
  amount: fc.integer({ min: 1, max: 12 }),
  expiresAt: fc.constantFrom(180, 10_000),
  now: fc.constantFrom(100, 200)
})
const scenarioArb = fc.record({
  lots: fc.array(
    fc.record({
      wallet: fc.integer({ min: 0, max: 2 }),
      amount: fc.integer({ min: 1, max: 15 }),
      expiresAt: fc.constantFrom(null, 150, 250)
    }),
    { maxLength: 7 }
  ),
  before: fc.array(
    fc.record({
      key: fc.uuid(),
      wallet: fc.integer({ min: 0, max: 2 }),
      amount: fc.integer({ min: 1, max: 6 }),
      expiresAt: fc.constantFrom(180, 10_000),
      now: fc.constant(10),
      capture: fc.boolean()
    }),
    { maxLength: 3 }
  ),
  holds: fc.array(holdArb, { maxLength: 14 }),
  captures: fc.array(
    fc.record({
      key: keyArb,
      hold: fc.constantFrom("before-0", "before-1", "before-2", "hold-0", "hold-1", "hold-2", "hold-3", "missing"),
      amount: fc.integer({ min: 0, max: 8 }),
      contributor: fc.integer({ min: 0, max: 3 }),
      now: fc.constantFrom(100, 200)
    }),
    { maxLength: 10 }
  )
})

/** One batch of each kind with every case the set-based paths treat apart. */
const example: Scenario = {
  lots: [
    { wallet: 0, amount: 10, expiresAt: 150 },
    { wallet: 0, amount: 10, expiresAt: null },
    { wallet: 0, amount: 4, expiresAt: 250 },
    { wallet: 1, amount: 3, expiresAt: null }
  ],
  before: [
    { key: "b0", wallet: 0, amount: 2, expiresAt: 10_000, now: 10, capture: true },
    { key: "b1", wallet: 1, amount: 1, expiresAt: 180, now: 10, capture: false }
  ],
  holds: [
    // draws across lots (earliest expiry first), then a replay and a conflict of the same key
    { key: "k0", wallet: 0, amount: 9, expiresAt: 10_000, now: 100 },
    { key: "k1", wallet: 0, amount: 6, expiresAt: 10_000, now: 100 },
    { key: "k0", wallet: 0, amount: 9, expiresAt: 10_000, now: 100 },
    { key: "k0", wallet: 1, amount: 9, expiresAt: 10_000, now: 100 },
    // insufficient mid-batch on another wallet, then a smaller hold there that fits
    { key: "k2", wallet: 1, amount: 5, expiresAt: 180, now: 100 },
    { key: "k3", wallet: 1, amount: 2, expiresAt: 180, now: 100 },
    // at 200 the lot expiring at 150 no longer counts
    { key: "k4", wallet: 0, amount: 20, expiresAt: 10_000, now: 200 },
    { key: "k5", wallet: 0, amount: 10, expiresAt: 10_000, now: 200 },
    // a wallet without lots, and a key already used by an earlier write of another kind
    { key: "k6", wallet: 3, amount: 1, expiresAt: 10_000, now: 100 },
    { key: "c-b0", wallet: 0, amount: 1, expiresAt: 10_000, now: 100 }
  ],
  captures: [
    { key: "k7", hold: "hold-0", amount: 5, contributor: 1, now: 100 },
    { key: "k8", hold: "hold-0", amount: 5, contributor: 1, now: 100 },
    { key: "k7", hold: "hold-0", amount: 5, contributor: 1, now: 100 },
    { key: "k7", hold: "hold-1", amount: 5, contributor: 1, now: 100 },
    { key: "k9", hold: "before-0", amount: 1, contributor: 0, now: 100 },
    { key: "k10", hold: "missing", amount: 1, contributor: 0, now: 100 },
    { key: "k11", hold: "hold-1", amount: 7, contributor: 0, now: 100 },
    { key: "k12", hold: "hold-1", amount: 0, contributor: 0, now: 100 },
    { key: "k13", hold: "hold-5", amount: 2, contributor: 2, now: 200 },
    { key: "k14", hold: "before-1", amount: 1, contributor: 0, now: 200 },
    { key: "k1", hold: "hold-7", amount: 3, contributor: 0, now: 200 }
  ]
}

const suite = (name: string, client: Layer.Layer<SqlClient.SqlClient, unknown>, numRuns: number) =>
  describe(`${name}: batches decide like single calls`, () => {
    it.effect("duplicate and conflicting keys, insufficient credit mid-batch, several wallets, multi-lot draws with expiry, missing and resolved holds", () =>
      equivalent(example).pipe(Effect.provide(client)))

    it.effect.prop(
      "any batch of holds, then of captures: each outcome and the final state equal the single calls in item order",
      { scenario: scenarioArb },
      ({ scenario }) => equivalent(scenario).pipe(Effect.provide(client)),
      { fastCheck: { numRuns } }
    )
  })

const pg = testDatabase(postgresTestClient)
const lite = testDatabase(pgliteTestClient)

describe.skipIf(!postgresAvailable)("PostgreSQL", () => {
  suite("postgres", pg.client, 80)
})
describe("PGlite", () => {
  suite("pglite", lite.client, 40)
})
