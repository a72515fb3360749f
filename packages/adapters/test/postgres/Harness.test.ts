import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { migrations } from "../../src/postgres/migrations/index.js"
import { migrate } from "../../src/postgres/PgDatabase.js"
import type { TestDatabase } from "../support/Databases.js"
import {
  pgliteTestClient,
  postgresAvailable,
  postgresTestClient,
  testDatabase,
  truncateAll
} from "../support/Databases.js"

const count = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => Effect.map(sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(table)}`, (rows) => rows[0]!.n)
  )

/** The harness itself, and the SQL features the adapters rely on, on one kind of database. */
const harness = (name: string, db: TestDatabase<unknown>) =>
  describe(`test database: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, SqlClient.SqlClient>) => Effect.provide(body, db.fresh(Layer.empty))

    it.effect("every migration is recorded, and running them again does nothing", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const recorded = yield* sql<{ readonly id: number }>`
          SELECT migration_id AS id FROM tollgate_migrations ORDER BY migration_id`
        assert.deepStrictEqual(recorded.map((r) => r.id), (yield* migrations).map(([id]) => id))
        assert.deepStrictEqual(yield* migrate, [])
        assert.deepStrictEqual(yield* migrate, [])
      })))

    it.effect("a transaction that fails rolls back", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS harness_items (id serial PRIMARY KEY, label text NOT NULL)`
        const exit = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO harness_items (label) VALUES ('kept?')`
          assert.strictEqual(yield* count("harness_items"), 1)
          return yield* Effect.fail("boom" as const)
        })).pipe(Effect.exit)
        assert.deepStrictEqual(exit, Exit.fail("boom" as const))
        assert.strictEqual(yield* count("harness_items"), 0)
      })))

    it.effect("truncateAll empties every table and restarts identities", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS harness_items (id serial PRIMARY KEY, label text NOT NULL)`
        yield* sql`INSERT INTO harness_items (label) VALUES ('a'), ('b')`
        assert.strictEqual(yield* count("harness_items"), 2)
        yield* truncateAll
        assert.strictEqual(yield* count("harness_items"), 0)
        const [row] = yield* sql<{ readonly id: number }>`INSERT INTO harness_items (label) VALUES ('c') RETURNING id`
        assert.strictEqual(row!.id, 1)
        assert.strictEqual(yield* count("tollgate_migrations"), (yield* migrations).length)
      })))

    it.effect("each test starts from an empty store", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS harness_items (id serial PRIMARY KEY, label text NOT NULL)`
        assert.strictEqual(yield* count("harness_items"), 0)
      })))

    it.effect("50 concurrent read-modify-write transactions all commit, none lost", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS harness_counter (id int PRIMARY KEY, n int NOT NULL)`
        yield* sql`INSERT INTO harness_counter VALUES (1, 0)`
        yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          () =>
            sql.withTransaction(Effect.gen(function*() {
              const [row] = yield* sql<{ readonly n: number }>`SELECT n FROM harness_counter WHERE id = 1 FOR UPDATE`
              yield* sql`UPDATE harness_counter SET n = ${row!.n + 1} WHERE id = 1`
            })),
          { concurrency: "unbounded", discard: true }
        )
        const [row] = yield* sql<{ readonly n: number }>`SELECT n FROM harness_counter WHERE id = 1`
        assert.strictEqual(row!.n, 50)
      })))

    // Runs on the TestClock, where a cancel that waits for its 5 s timeout would hang for ever.
    it.effect("interrupting a transaction mid-statement rolls it back without stalling the pool", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS harness_items (id serial PRIMARY KEY, label text NOT NULL)`
        const started = yield* Deferred.make<void>()
        const fiber = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO harness_items (label) VALUES ('interrupted')`
          yield* Deferred.succeed(started, undefined)
          yield* sql`SELECT pg_sleep(0.3)`
        })).pipe(Effect.fork)
        const queued = yield* Effect.fork(sql.withTransaction(sql`SELECT 1`))
        yield* Deferred.await(started)
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
        const before = Date.now()
        yield* Fiber.interrupt(fiber)
        yield* Fiber.interrupt(queued)
        assert.strictEqual(yield* count("harness_items"), 0)
        assert.isBelow(Date.now() - before, 3_000)
      })))

    it.effect("plpgsql, deferred constraint triggers, advisory locks, SKIP LOCKED and gen_random_uuid work", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS harness_entries (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), amount int NOT NULL)`
        yield* sql`
          CREATE OR REPLACE FUNCTION harness_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF (SELECT coalesce(sum(amount), 0) FROM harness_entries) <> 0 THEN
              RAISE EXCEPTION 'entries do not sum to zero';
            END IF;
            RETURN NULL;
          END $$`
        yield* sql`DROP TRIGGER IF EXISTS harness_balanced ON harness_entries`
        yield* sql`
          CREATE CONSTRAINT TRIGGER harness_balanced AFTER INSERT OR UPDATE ON harness_entries
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION harness_balanced()`
        // Unbalanced between the two statements, balanced at commit: the deferred check passes.
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext('harness'))`
          yield* sql`INSERT INTO harness_entries (amount) VALUES (5)`
          yield* sql`INSERT INTO harness_entries (amount) VALUES (-5)`
        }))
        const unbalanced = yield* sql.withTransaction(sql`INSERT INTO harness_entries (amount) VALUES (7)`).pipe(
          Effect.exit
        )
        assert.isTrue(Exit.isFailure(unbalanced))
        assert.strictEqual(yield* count("harness_entries"), 2)
        const claimed = yield* sql.withTransaction(
          sql<{ readonly id: string }>`SELECT id FROM harness_entries ORDER BY amount LIMIT 1 FOR UPDATE SKIP LOCKED`
        )
        assert.match(claimed[0]!.id, /^[0-9a-f-]{36}$/)
      })))
  })

const postgres = testDatabase(postgresTestClient)
const pglite = testDatabase(pgliteTestClient)

describe.skipIf(!postgresAvailable)("PostgreSQL", () => {
  harness("postgres", postgres)
})
harness("pglite", pglite)
