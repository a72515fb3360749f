/**
 * A second gateway for CachedKeyStore.test.ts: its own process, its own Redis connections and its
 * own database pool. Its `Gateway` authenticates through the key cache over the PostgreSQL
 * KeyStore both processes share; projects, plans and the rest are its own, in memory (the demo
 * catalog, seeded here).
 *
 * Authenticates the key once (`{"warmed":…}`), then every 5 ms, now from its cache, and prints
 * `{"refused":"<code>",…}` the first time authentication fails, or `{"refused":false}` after
 * 10 s. The cache's entries live 60 s here, so only a pushed invalidation can make it see a
 * revoke.
 *
 * Environment: DATABASE_URL (the test's database), REDIS_URL, CHANNEL, SECRET (the key).
 */
import { PgClient } from "@effect/sql-pg"
import { Gateway, KeyStore, seedDemoCatalog } from "@tollgate/core"
import { Effect, Layer, Redacted } from "effect"
import { MemoryStackLive } from "../../src/memory/MemoryStack.js"
import { makePgKeyStore } from "../../src/postgres/PgKeyStore.js"
import { makeCachedKeyStore } from "../../src/redis/CachedKeyStore.js"
import { makeRedisClient } from "../../src/redis/RedisConnection.js"

const print = (line: unknown) => Effect.sync(() => process.stdout.write(`${JSON.stringify(line)}\n`))

let cacheStats: Effect.Effect<unknown> = Effect.void

const CachedPgKeys = Layer.scoped(
  KeyStore,
  Effect.gen(function*() {
    const client = yield* makeRedisClient(Redacted.make(process.env.REDIS_URL!), { name: "key-cache-worker" })
    const keys = yield* makeCachedKeyStore(yield* makePgKeyStore, {
      client,
      channel: process.env.CHANNEL!,
      ttlMs: 60_000
    })
    cacheStats = keys.stats
    return keys
  })
).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!), maxConnections: 2 })))

const main = Effect.gen(function*() {
  yield* seedDemoCatalog("http://127.0.0.1:9", Date.now())
  const gateway = yield* Gateway
  const refusal = gateway.authenticate(process.env.SECRET!).pipe(
    Effect.match({ onFailure: (e): string => e.code, onSuccess: () => undefined })
  )
  const first = yield* refusal
  yield* print({ warmed: first === undefined, refusal: first })
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const refused = yield* refusal
    if (refused !== undefined) return yield* print({ refused, stats: yield* cacheStats })
    yield* Effect.sleep("5 millis")
  }
  yield* print({ refused: false, stats: yield* cacheStats })
}).pipe(
  Effect.provide(Gateway.Default.pipe(Layer.provideMerge(Layer.merge(MemoryStackLive, CachedPgKeys))))
)

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
