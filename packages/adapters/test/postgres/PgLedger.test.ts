import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import type { Credits, HoldId, IdempotencyKey, ProjectId } from "@tollgate/core"
import { Ledger, revenueAccount } from "@tollgate/core"
import { Effect, Exit, Layer } from "effect"
import { makePgLedger, makePgLedgerBatched } from "../../src/postgres/PgLedger.js"
import { key, projectId } from "../contracts/fixtures.js"
import { ledgerContract, sumOfAccounts } from "../contracts/LedgerContract.js"
import { ledgerProperties } from "../contracts/LedgerProperties.js"
import { pgliteTestClient, postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"

const pg = testDatabase(postgresTestClient)
const lite = testDatabase(pgliteTestClient)

describe.skipIf(!postgresAvailable)("PostgreSQL ledger", () => {
  const layer = pg.perTest(Ledger, makePgLedger)
  ledgerContract("postgres", layer)
  ledgerProperties("postgres", layer, { numRuns: 60 })
})

describe.skipIf(!postgresAvailable)("PostgreSQL ledger, batched", () => {
  // small batches and several workers, so batches of mixed wallets and keys really form
  const layer = pg.fresh(Layer.scoped(Ledger, makePgLedgerBatched({ maxSize: 8, workers: 3 })))
  ledgerContract("postgres batched", layer)
  ledgerProperties("postgres batched", layer, { numRuns: 60 })
})

describe("PGlite ledger", () => {
  const layer = lite.perTest(Ledger, makePgLedger)
  ledgerContract("pglite", layer)
  ledgerProperties("pglite", layer, { numRuns: 40 })
})

describe("PGlite ledger, batched", () => {
  // one connection: batches still form while a statement runs, and run one after the other
  const layer = lite.fresh(Layer.scoped(Ledger, makePgLedgerBatched({ maxSize: 8, workers: 3 })))
  ledgerContract("pglite batched", layer)
  ledgerProperties("pglite batched", layer, { numRuns: 40 })
})

const live = <A, E>(body: Effect.Effect<A, E, Ledger | SqlClient.SqlClient>) =>
  body.pipe(Effect.provide(pg.fresh(Layer.effect(Ledger, makePgLedger))))
const liveBatched = <A, E>(body: Effect.Effect<A, E, Ledger | SqlClient.SqlClient>) =>
  body.pipe(Effect.provide(pg.fresh(Layer.scoped(Ledger, makePgLedgerBatched({ maxSize: 32, workers: 4 })))))

describe.skipIf(!postgresAvailable)("PostgreSQL ledger under real concurrency", () => {
  for (const [mode, provide] of [["one call per write", live], ["batched", liveBatched]] as const) {
    it.live(`500 concurrent holds over the pool on a wallet with credit for 100: exactly 100 succeed (${mode})`, () =>
      provide(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: 100 as Credits, source: "purchase" })
        const results = yield* Effect.all(
          Array.from(
            { length: 500 },
            () =>
              Effect.exit(
                ledger.hold({
                  idempotencyKey: key(),
                  projectId: p,
                  amount: 1 as Credits,
                  expiresAt: Date.now() + 60_000
                })
              )
          ),
          { concurrency: "unbounded" }
        )
        const held = results.filter(Exit.isSuccess).map((e) => e.value.hold)
        assert.strictEqual(held.length, 100)
        assert.isTrue(
          results.filter(Exit.isFailure).every((e) =>
            e.cause._tag === "Fail" && e.cause.error._tag === "InsufficientCredit"
          )
        )
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [100, 0, 100])
        yield* Effect.forEach(held, (h) =>
          ledger.capture({
            idempotencyKey: key(),
            holdId: h.id,
            amount: 1 as Credits,
            payees: [{ account: revenueAccount, amount: 1 as Credits }]
          }), { concurrency: 20 })
        const after = yield* ledger.balance(p)
        assert.deepStrictEqual([after.balance, after.available, after.pending], [0, 0, 0])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))
  }

  it.live("a crash between hold and capture: the killed connection's hold expires and its credit returns exactly once", () =>
    live(Effect.gen(function*() {
      const ledger = yield* Ledger
      const sql = yield* SqlClient.SqlClient
      const p = projectId()
      yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: 50 as Credits, source: "purchase" })
      const deadline = Date.now() + 300
      const held = yield* Effect.forEach(
        Array.from({ length: 10 }),
        () => ledger.hold({ idempotencyKey: key(), projectId: p, amount: 5 as Credits, expiresAt: deadline }),
        { concurrency: 10 }
      )
      // the gateway dies: every other connection to this database is killed before any capture
      yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()`
      assert.strictEqual((yield* ledger.balance(p)).available, 0)
      yield* Effect.sleep("400 millis")
      // two workers sweep at once; each hold is released by one of them, once
      const [a, b] = yield* Effect.all([ledger.expireHolds(Date.now()), ledger.expireHolds(Date.now())], {
        concurrency: "unbounded"
      })
      assert.strictEqual(a.count + b.count, 10)
      assert.strictEqual(a.amount + b.amount, 50)
      assert.strictEqual((yield* ledger.expireHolds(Date.now())).count, 0)
      for (const { hold } of held) assert.strictEqual((yield* ledger.getHold(hold.id as HoldId)).status, "expired")
      const bal = yield* ledger.balance(p)
      assert.deepStrictEqual([bal.balance, bal.available, bal.pending], [50, 50, 0])
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
    })))

  it.live("the same write sent 50 times at once takes effect once", () =>
    live(Effect.gen(function*() {
      const ledger = yield* Ledger
      const p = projectId()
      const grantKey = key() as IdempotencyKey
      const grants = yield* Effect.all(
        Array.from({ length: 50 }, () =>
          ledger.grant({ idempotencyKey: grantKey, projectId: p, amount: 70 as Credits, source: "purchase" })),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(
        new Set(grants.map((g) =>
          g.transaction.id
        )).size,
        1
      )
      assert.strictEqual(grants.filter((g) => g.code === "created").length, 1)
      // one request sent 50 times (a deadline computed per call would make them different requests)
      const holdRequest = { idempotencyKey: key(), projectId: p, amount: 30 as Credits, expiresAt: Date.now() + 60_000 }
      const holds = yield* Effect.all(
        Array.from({ length: 50 }, () => ledger.hold(holdRequest)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(holds.map((h) => h.hold.id)).size, 1)
      const captureKey = key() as IdempotencyKey
      const captures = yield* Effect.all(
        Array.from({ length: 50 }, () =>
          ledger.capture({
            idempotencyKey: captureKey,
            holdId: holds[0]!.hold.id,
            amount: 30 as Credits,
            payees: [{ account: revenueAccount, amount: 30 as Credits }]
          })),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(captures.filter((c) => c.code === "created").length, 1)
      const b = yield* ledger.balance(p)
      assert.deepStrictEqual([b.balance, b.available, b.pending], [40, 40, 0])
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      const history = yield* ledger.history(p as ProjectId, { limit: 10 })
      assert.strictEqual(history.transactions.length, 2)
    })))

  it.live("the database itself refuses an unbalanced transaction and any edit of posted entries", () =>
    live(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const ledger = yield* Ledger
      yield* ledger.grant({ idempotencyKey: key(), projectId: projectId(), amount: 10 as Credits, source: "purchase" })
      const unbalanced = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
        const [t] = yield* sql<
          { id: string }
        >`INSERT INTO ledger_transactions (idempotency_key, kind, project_id, created_at)
          VALUES ('forged', 'grant', 'x', 0) RETURNING id`
        yield* sql`INSERT INTO ledger_entries VALUES (${t!.id}, 1, 'wallet:x', 5)`
      })))
      assert.isTrue(Exit.isFailure(unbalanced))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(sql`UPDATE ledger_entries SET amount = amount * 2`)))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(sql`DELETE FROM ledger_transactions`)))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(sql`UPDATE grants SET remaining = amount + 1`)))
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
    })))
})
