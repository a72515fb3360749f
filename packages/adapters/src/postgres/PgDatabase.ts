import { NodeContext } from "@effect/platform-node"
import type { SqlClient } from "@effect/sql"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { UrlProtocol } from "@tollgate/core"
import type { ConfigError } from "effect"
import { Config, Effect, Layer, Redacted } from "effect"
import { migrations } from "./migrations/index.js"

/** The table where the migrator records which migrations have run. */
export const migrationsTable = "tollgate_migrations"

const isPostgresUrl = UrlProtocol.hasProtocol("postgres:", "postgresql:")

/**
 * `DATABASE_URL` (secret: it may carry a password) and `DATABASE_MAX_CONNECTIONS` (default 10).
 * The URL is validated here so that a bad one fails at start naming the variable. It is read as
 * a string and then redacted, not with `Config.redacted`, because that also replaces the error
 * messages with "<redacted>"; these messages never contain the value.
 */
export const DatabaseConfig = Config.all({
  url: Config.string("URL").pipe(
    Config.validate({ message: "Expected a postgres:// or postgresql:// URL", validation: isPostgresUrl }),
    Config.map(Redacted.make)
  ),
  maxConnections: Config.integer("MAX_CONNECTIONS").pipe(
    Config.validate({ message: "Expected an integer of at least 1", validation: (n) => n >= 1 }),
    Config.withDefault(10)
  )
}).pipe(Config.nested("DATABASE"))

/** The PostgreSQL pool (node-postgres underneath), configured from the environment. */
export const PgClientLive: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, ConfigError.ConfigError | SqlError> =
  Layer.unwrapEffect(
    Effect.map(
      DatabaseConfig,
      ({ maxConnections, url }) => PgClient.layer({ url, maxConnections, applicationName: "tollgate" })
    )
  )

/**
 * Runs every migration not yet recorded in {@link migrationsTable}, inside one transaction
 * under an exclusive lock on that table, so it is safe to run at every start and from several
 * processes at once. Returns the migrations it ran.
 *
 * `PgMigrator.run` asks for FileSystem, Path and CommandExecutor (used only to dump the schema,
 * which we do not ask for), hence `NodeContext.layer`.
 */
export const migrate = PgMigrator.run({ loader: migrations, table: migrationsTable }).pipe(
  Effect.provide(NodeContext.layer),
  Effect.withSpan("PgDatabase.migrate")
)

/** {@link migrate} as a layer: build it over a client before the adapters that need the schema. */
export const MigrationsLive: Layer.Layer<
  never,
  PgMigrator.MigrationError | SqlError,
  PgClient.PgClient | SqlClient.SqlClient
> = Layer.effectDiscard(migrate)
