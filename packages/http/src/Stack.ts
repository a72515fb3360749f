/**
 * The adapters behind the ports, chosen once per process:
 *
 * - `embeddedStack(dataDir)`: PGlite in a folder on disk (the same SQL and migrations as
 *   PostgreSQL), the in-process rate limiter, and read caches for keys, projects and the catalog.
 *   One process; nothing to install.
 * - `productionStack`: PostgreSQL from `DATABASE_URL`, Redis from `REDIS_URL` for the rate
 *   limiter and the key cache (revocations pushed to every gateway), read caches for projects and
 *   the catalog. Gateways keep no state of their own beyond caches, so any number can run.
 * - `memoryStack`: every port in memory (tests, benchmarks' baselines).
 *
 * Both database stacks reserve busy wallets' credit in leases (`LeasedLedger`, `LEDGER_LEASE_*`)
 * and write concurrent calls' usage rows together (group commit).
 */
import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import {
  LocalKeyCacheLive,
  makeCachedCatalog,
  makeCachedProjectStore,
  makeLocalKeyCache
} from "@tollgate/adapters/cache/index"
import { leasedFromConfig, leaseReturnChannel } from "@tollgate/adapters/lease/index"
import { MemoryRateLimiterLive, MemoryStackLive } from "@tollgate/adapters/memory/index"
import { NodeKeyHasherLive } from "@tollgate/adapters/node/NodeKeyHasher"
import { embeddedPostgresLayer } from "@tollgate/adapters/pglite/EmbeddedPostgres"
import {
  listenWithHeartbeat,
  makePgCatalog,
  makePgKeyStore,
  makePgProjectStore,
  makePgUsageLogBatched,
  MigrationsLive,
  PgAutoTopUpStoreLive,
  PgBillingInboxLive,
  PgClientLive,
  PgLedgerBatchedLive,
  PgLedgerWaitingLive,
  PgOutboxLive,
  PgPlanChangeStoreLive,
  PgReconciliationStoreLive,
  PgUsageLogBatchedLive
} from "@tollgate/adapters/postgres/index"
import type { RedisConnection } from "@tollgate/adapters/redis/index"
import { KeyCacheLive, RedisConnectionLive, RedisRateLimiterLive } from "@tollgate/adapters/redis/index"
import type {
  AutoTopUpStore,
  BillingInbox,
  KeyHasher,
  Ledger,
  Outbox,
  PlanChangeStore,
  ProjectId,
  RateLimiter,
  ReconciliationStore
} from "@tollgate/core"
import { Catalog, Ids, KeyStore, ProjectStore, UsageLog } from "@tollgate/core"
import { Effect, Layer, Stream } from "effect"

export type Ports =
  | AutoTopUpStore
  | BillingInbox
  | Catalog
  | Ids
  | KeyHasher
  | KeyStore
  | Ledger
  | Outbox
  | PlanChangeStore
  | ProjectStore
  | RateLimiter
  | ReconciliationStore
  | UsageLog

const cachedCatalog = Layer.effect(Catalog, Effect.flatMap(makePgCatalog, (inner) => makeCachedCatalog(inner)))
const cachedProjects = Layer.effect(
  ProjectStore,
  Effect.flatMap(makePgProjectStore, (inner) => makeCachedProjectStore(inner))
)

/** The embedded default: PGlite in `dataDir`, limits in process. */
export const embeddedStack = (dataDir: string) =>
  Layer.mergeAll(
    PgAutoTopUpStoreLive,
    PgBillingInboxLive,
    cachedCatalog,
    Layer.effect(KeyStore, Effect.flatMap(makePgKeyStore, (inner) => makeLocalKeyCache(inner))),
    // PGlite has one session: batching would only queue behind it; leases take the calls' holds
    // and captures off it
    leasedFromConfig(PgLedgerWaitingLive),
    PgOutboxLive,
    PgPlanChangeStoreLive,
    cachedProjects,
    // one group in flight: PGlite runs one statement at a time, so a second group would only wait
    // for the connection and halve the groups; a statement costs it about 1 ms and a row 30–120 µs
    Layer.scoped(UsageLog, makePgUsageLogBatched({ maxSize: 1024, workers: 1 })),
    PgReconciliationStoreLive,
    MemoryRateLimiterLive,
    Ids.Live,
    NodeKeyHasherLive
  ).pipe(Layer.provide(embeddedPostgresLayer(dataDir)), Layer.orDie)

/** PostgreSQL and Redis over the given client and connection. */
export const postgresRedisStack = <E1, E2>(
  database: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, E1>,
  redis: Layer.Layer<RedisConnection, E2>
) =>
  Layer.mergeAll(
    PgAutoTopUpStoreLive,
    PgBillingInboxLive,
    cachedCatalog,
    KeyCacheLive.pipe(Layer.provide(Layer.effect(KeyStore, makePgKeyStore))),
    // several gateway processes: a withdrawal asks the others for the wallet's leases back
    // (a listener that stops hearing, e.g. after a database failover, fails and listens again)
    leasedFromConfig(
      PgLedgerBatchedLive,
      Effect.map(listenWithHeartbeat(leaseReturnChannel), Stream.map((projectId) => projectId as ProjectId))
    ),
    PgOutboxLive,
    PgPlanChangeStoreLive,
    cachedProjects,
    PgUsageLogBatchedLive,
    PgReconciliationStoreLive,
    RedisRateLimiterLive,
    Ids.Live,
    NodeKeyHasherLive
  ).pipe(Layer.provide(Layer.merge(database, redis)), Layer.orDie)

/** PostgreSQL and Redis from the environment (`DATABASE_*`, `REDIS_*`), migrated at start. */
export const productionStack = postgresRedisStack(
  MigrationsLive.pipe(Layer.provideMerge(PgClientLive)),
  RedisConnectionLive
)

/** Every port in memory, with the same key cache as the embedded default. */
export const memoryStack = LocalKeyCacheLive().pipe(Layer.provideMerge(Layer.merge(MemoryStackLive, NodeKeyHasherLive)))
