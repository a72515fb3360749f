/**
 * Databases for the PostgreSQL and PGlite test files: one migrated database and one pool per
 * test file, emptied before each test.
 *
 * Contract suites take a layer and build it for every test (`Effect.provide(body, layer)`), so
 * the pool cannot live in that layer. It lives in a `ManagedRuntime` instead: built on first
 * use, shared by every test of the file, disposed after its last test. `db.perTest` and
 * `db.fresh` return per-test layers that only read the client out of that runtime, truncate
 * every application table, and build the adapter over it:
 *
 *   import { describe } from "@effect/vitest"
 *   import { Ledger } from "@tollgate/core"
 *   import { makePgLedger } from "../../src/postgres/PgLedger.js"
 *   import { ledgerContract } from "../contracts/LedgerContract.js"
 *   import { pgliteTestClient, postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"
 *
 *   const pg = testDatabase(postgresTestClient)   // registers afterAll(dispose) where it is called
 *   const lite = testDatabase(pgliteTestClient)
 *   describe.skipIf(!postgresAvailable)("postgres", () => ledgerContract("postgres", pg.perTest(Ledger, makePgLedger)))
 *   ledgerContract("pglite", lite.perTest(Ledger, makePgLedger))
 *
 * A layer that needs the client (several ports at once) goes through `db.fresh(layer)`; a test
 * that only needs SQL uses `db.client` (e.g. `it.layer(db.client)`) or `db.fresh(Layer.empty)`.
 * Tests of one file run one after the other (Vitest's default), which the truncation assumes.
 *
 * PostgreSQL is `DATABASE_URL`, else postgres://127.0.0.1:5432/postgres; each file creates
 * `tollgate_test_<random>` there and drops it afterwards. If the server does not answer within
 * 2 s, `postgresAvailable` is false and the file warns (skip with
 * `describe.skipIf(!postgresAvailable)`); with `CI=true` the file fails instead.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import type { PgMigrator } from "@effect/sql-pg"
import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { afterAll } from "@effect/vitest"
import type { Context } from "effect"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { embeddedPostgresLayer } from "../../src/pglite/EmbeddedPostgres.js"
import { MigrationsLive, migrationsTable } from "../../src/postgres/PgDatabase.js"
import { withoutPassword } from "./Probes.js"

type Client = PgClient.PgClient | SqlClient.SqlClient

/**
 * With no user in the URL, node-postgres sends `$USER` (unset in containers, which the server
 * rejects) where psql and libpq send the name of the OS user: fill it in the way libpq does.
 */
const withUser = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.username === "") parsed.username = process.env.PGUSER ?? process.env.USER ?? userInfo().username
    return parsed.toString()
  } catch {
    return url
  }
}

/** The server the PostgreSQL suites run on (each in a database of its own). */
export const postgresUrl = withUser(process.env.DATABASE_URL ?? "postgres://127.0.0.1:5432/postgres")

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

const adminClient = (connectTimeout: `${number} seconds`) =>
  PgClient.make({ url: Redacted.make(postgresUrl), maxConnections: 1, connectTimeout }).pipe(
    Effect.provide(Reactivity.layer)
  )

/** Whether the PostgreSQL server answered `SELECT 1` within 2 s when this module loaded. */
export const postgresAvailable: boolean = await adminClient("2 seconds").pipe(
  Effect.scoped,
  Effect.timeout("3 seconds"),
  Effect.as(true),
  Effect.catchAllCause(() => Effect.succeed(false)),
  Effect.runPromise
)

if (!postgresAvailable) {
  const message = `PostgreSQL at ${withoutPassword(postgresUrl, "DATABASE_URL")} is unreachable`
  if (process.env.CI === "true") {
    throw new Error(`${message}, and CI=true: the PostgreSQL suites must run on CI.`)
  }
  console.warn(`${message}: skipping the PostgreSQL suites of this file (set DATABASE_URL to run them).`)
}

/**
 * A fresh database `tollgate_test_<random>` on {@link postgresUrl}, migrated, for the life of
 * the layer; its connections are terminated and it is dropped when the layer is released.
 */
export const postgresTestClient: Layer.Layer<Client, SqlError | PgMigrator.MigrationError> = Layer.unwrapScoped(
  Effect.gen(function*() {
    const admin = yield* adminClient("5 seconds")
    const name = `tollgate_test_${randomUUID().replaceAll("-", "").slice(0, 16)}`
    yield* admin`CREATE DATABASE ${admin(name)}`
    yield* Effect.addFinalizer(() =>
      admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`
        .pipe(
          Effect.zipRight(admin`DROP DATABASE IF EXISTS ${admin(name)}`),
          Effect.catchAllCause((cause) => Effect.logWarning(`Could not drop the test database ${name}`, cause))
        )
    )
    return MigrationsLive.pipe(
      Layer.provideMerge(PgClient.layer({
        url: Redacted.make(withDatabase(postgresUrl, name)),
        maxConnections: 10,
        applicationName: "tollgate-test"
      }))
    )
  })
)

/** A fresh PGlite in a temporary folder, migrated, for the life of the layer; the folder is removed after. */
export const pgliteTestClient: Layer.Layer<Client, SqlError | PgMigrator.MigrationError> = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "tollgate-pglite-"))),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    ),
    embeddedPostgresLayer
  )
)

/**
 * Empties every table of the current schema but the migrations' record and `keep`, restarting
 * sequences. `CASCADE` so that foreign keys never decide the order.
 */
export const truncateTables = (keep: ReadonlyArray<string> = []): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = yield* sql<{ readonly name: string }>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
        AND table_name <> ${migrationsTable}`
    const names = tables.map((t) => t.name).filter((name) => !keep.includes(name))
    if (names.length > 0) {
      yield* sql`TRUNCATE ${sql.csv(names.map((name) => sql`${sql(name)}`))} RESTART IDENTITY CASCADE`
    }
  })

/** {@link truncateTables} with nothing kept. */
export const truncateAll = truncateTables()

/**
 * A layer for `tag` built fresh over the shared `client` after emptying the store: what a
 * contract suite's per-test layer should be.
 */
export const perTest = <EC>(client: Layer.Layer<Client, EC>) =>
<I, S, E, R>(
  tag: Context.Tag<I, S>,
  make: Effect.Effect<S, E, R>
): Layer.Layer<I, EC | E | SqlError, Exclude<R, Client>> =>
  Layer.effect(tag, Effect.zipRight(truncateAll, make)).pipe(Layer.provide(client))

export interface TestDatabase<EC> {
  /** The file's client, read out of {@link runtime}: building it per test costs nothing. */
  readonly client: Layer.Layer<Client, EC>
  /** Builds the pool (and migrates) on first use; disposed after the last test of the file. */
  readonly runtime: ManagedRuntime.ManagedRuntime<Client, EC>
  /** See {@link perTest}. */
  readonly perTest: <I, S, E, R>(
    tag: Context.Tag<I, S>,
    make: Effect.Effect<S, E, R>
  ) => Layer.Layer<I, EC | E | SqlError, Exclude<R, Client>>
  /** `layer` over the shared client, built after emptying the store; the client stays in the output. */
  readonly fresh: <A, E, R>(
    layer: Layer.Layer<A, E, R>
  ) => Layer.Layer<A | Client, EC | E | SqlError, Exclude<R, Client>>
}

/**
 * One database and one pool for the test file, from `clientLayer` (e.g.
 * {@link postgresTestClient} or {@link pgliteTestClient}). Registers `afterAll` in the
 * enclosing suite (or the file) to dispose of it: call it at collection time, not in a test.
 */
export const testDatabase = <EC>(clientLayer: Layer.Layer<Client, EC>): TestDatabase<EC> => {
  const runtime = ManagedRuntime.make(clientLayer)
  afterAll(() => runtime.dispose())
  const client = Layer.effectContext(Effect.map(runtime.runtimeEffect, (rt) => rt.context))
  const emptied = Layer.effectDiscard(truncateAll).pipe(Layer.provideMerge(client))
  return {
    client,
    runtime,
    perTest: perTest(client),
    fresh: (layer) => layer.pipe(Layer.provideMerge(emptied))
  }
}
