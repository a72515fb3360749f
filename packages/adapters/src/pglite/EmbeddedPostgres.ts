/**
 * The embedded default store: PGlite (PostgreSQL compiled to WASM, in this process) persisted
 * in a folder on disk, served over the PostgreSQL wire protocol by `@electric-sql/pglite-socket`
 * on 127.0.0.1 (an ephemeral port), so the same `@effect/sql-pg` client and the same SQL and
 * migrations run on it as on a PostgreSQL server.
 *
 * PGlite is one backend, one session. The socket server accepts one connection and the pool
 * holds one, so callers queue for it in the pool (first come, first served) and a transaction
 * has the database to itself until it ends: transactions are serialized, never interleaved.
 * Consequences:
 *
 * - Locks (`FOR UPDATE`, advisory locks) never wait: there is no other session to wait for.
 * - Inside `sql.withTransaction` every statement must run on the transaction's connection (the
 *   default: the connection travels in the fiber's context, to forked fibers too). Whatever asks
 *   the pool for a second connection while the first is held waits for ever: `sql.reserve`, a
 *   second client, `PgClient.listen` (LISTEN opens its own connection, which the server refuses).
 * - Statements are uninterruptible here, see {@link uninterruptibleStatements}.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import type { PgMigrator } from "@effect/sql-pg"
import { PgClient } from "@effect/sql-pg"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { Context, Duration, Effect, Layer } from "effect"
import { mkdir } from "node:fs/promises"
import { MigrationsLive } from "../postgres/PgDatabase.js"

const startFailure = (what: string, dataDir: string) => (cause: unknown) =>
  new SqlError({ cause, message: `Embedded PostgreSQL: could not ${what} (data directory ${dataDir})` })

const uninterruptibleConnection = (conn: Connection): Connection => ({
  execute: (sql, params, transformRows) => Effect.uninterruptible(conn.execute(sql, params, transformRows)),
  executeRaw: (sql, params) => Effect.uninterruptible(conn.executeRaw(sql, params)),
  executeStream: (sql, params, transformRows) => conn.executeStream(sql, params, transformRows),
  executeValues: (sql, params) => Effect.uninterruptible(conn.executeValues(sql, params)),
  executeUnprepared: (sql, params, transformRows) =>
    Effect.uninterruptible(conn.executeUnprepared(sql, params, transformRows))
})

/**
 * The same client with statements that finish once started, and a connection that, once asked
 * for, is taken and then given back.
 *
 * Why: when a fiber is interrupted during a statement, `@effect/sql-pg` cancels it with
 * `SELECT pg_cancel_backend(pid)` sent through the pool. With one connection that query waits
 * for the connection the interrupted statement holds, which is released only after the cancel
 * returns: the whole database stalls for the 5 s cancel timeout, and for ever under the
 * TestClock, where that timeout never fires. PGlite cannot cancel a statement anyway, so
 * waiting for it is what happens regardless. Every statement here runs on a connection taken
 * from the pool just for it (or the transaction's), exactly as `withTransaction` takes one.
 */
const uninterruptibleStatements = (pg: PgClient.PgClient) =>
  Effect.gen(function*() {
    const acquirer = Effect.map(Effect.uninterruptible(pg.reserve), uninterruptibleConnection)
    const client = yield* SqlClient.make({
      acquirer,
      transactionAcquirer: acquirer,
      compiler: PgClient.makeCompiler(),
      spanAttributes: [["db.system.name", "postgresql"], ["db.namespace", "pglite"]]
    })
    return Object.assign(client, {
      [PgClient.TypeId]: PgClient.TypeId,
      config: pg.config,
      json: pg.json,
      listen: pg.listen,
      notify: pg.notify
    }) satisfies PgClient.PgClient
  })

/**
 * Starts PGlite in `dataDir` (a folder, created if missing; `memory://` for a throwaway
 * database) and its socket server, and closes the pool, the server and the database, in that
 * order, when the scope closes. The schema is not touched: see {@link embeddedPostgresLayer}.
 */
export const embeddedPostgresClient = (
  dataDir: string
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  Layer.scopedContext(Effect.gen(function*() {
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          // PGlite makes the last folder of the path only.
          if (!dataDir.includes("://")) await mkdir(dataDir, { recursive: true })
          return PGlite.create(dataDir)
        },
        catch: startFailure("start PGlite", dataDir)
      }),
      (db) => Effect.promise(() => db.close())
    )
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
          await server.start()
          return server
        },
        catch: startFailure("start the PGlite socket server", dataDir)
      }),
      (server) => Effect.promise(() => server.stop())
    )
    const address = server.getServerConn()
    const pool = yield* PgClient.make({
      host: "127.0.0.1",
      port: Number(address.slice(address.lastIndexOf(":") + 1)),
      username: "postgres",
      database: "postgres",
      maxConnections: 1,
      // Keep the one connection for the life of the pool: an idle close and reconnect could
      // race the server's release of the old connection's slot and be refused.
      idleTimeout: Duration.zero,
      applicationName: "tollgate"
    })
    const client = yield* uninterruptibleStatements(pool)
    return Context.make(PgClient.PgClient, client).pipe(Context.add(SqlClient.SqlClient, client))
  })).pipe(Layer.provide(Reactivity.layer))

/** {@link embeddedPostgresClient} with every migration applied. */
export const embeddedPostgresLayer = (
  dataDir: string
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError | PgMigrator.MigrationError> =>
  MigrationsLive.pipe(Layer.provideMerge(embeddedPostgresClient(dataDir)))
