import { SqlClient } from "@effect/sql"
import { afterAll, assert, describe, it } from "@effect/vitest"
import type { ApiKeyId, ProjectId } from "@tollgate/core"
import { ApiKey, ApiKeyFormat, KeyStore } from "@tollgate/core"
import { Effect, Layer, Option, TestClock } from "effect"
import type { Redis } from "ioredis"
import { makeMemoryKeyStore } from "../../src/memory/MemoryKeyStore.js"
import { makePgKeyStore } from "../../src/postgres/PgKeyStore.js"
import type { KeyCacheOptions } from "../../src/redis/CachedKeyStore.js"
import { makeCachedKeyStore } from "../../src/redis/CachedKeyStore.js"
import { unique } from "../contracts/fixtures.js"
import { keyStoreContract } from "../contracts/KeyStoreContract.js"
import { postgresAvailable, postgresTestClient, postgresUrl, testDatabase } from "../support/Databases.js"
import { eventually } from "../support/Probes.js"
import type { RedisServer } from "./RedisHarness.js"
import {
  connect,
  redisAvailable,
  redisUrl,
  sparePort,
  spawnWorker,
  startRedisServer,
  testRedis
} from "./RedisHarness.js"

const redis = testRedis("keycache")
const channel = `${redis.prefix}keys:invalidate`

const randomHash = (): string => (crypto.randomUUID() + crypto.randomUUID()).replaceAll("-", "")

const apiKey = (fields: Partial<ConstructorParameters<typeof ApiKey>[0]> = {}): ApiKey =>
  new ApiKey({
    id: unique("key") as ApiKeyId,
    projectId: "prj_cache" as ProjectId,
    hash: randomHash(),
    prefix: "tg_test_ab12",
    environment: "test",
    status: "active",
    createdAt: 0,
    ...fields
  })

/** A memory KeyStore that counts the lookups that reach it. */
const countingMemoryStore = Effect.map(makeMemoryKeyStore, (inner) => {
  const lookups = { count: 0 }
  return {
    lookups,
    store: KeyStore.of({
      ...inner,
      findByHash: (hash) => Effect.suspend(() => (lookups.count++, inner.findByHash(hash)))
    })
  }
})

const cachedOver = (inner: KeyStore["Type"], options: Partial<KeyCacheOptions> = {}, client = redis.clientEffect) =>
  Effect.flatMap(client, (c) => makeCachedKeyStore(inner, { client: c, channel, ...options }))

const status = (store: KeyStore["Type"], hash: string) =>
  Effect.map(store.findByHash(hash), Option.match({ onNone: () => "none", onSome: (k) => k.status }))

describe.skipIf(!redisAvailable)("CachedKeyStore", () => {
  keyStoreContract(
    "cached over memory",
    Layer.scoped(KeyStore, Effect.flatMap(makeMemoryKeyStore, (inner) => cachedOver(inner)))
  )

  it.scoped("serves repeated lookups from the cache; unknown hashes only for the short negative TTL", () =>
    Effect.gen(function*() {
      const { lookups, store } = yield* countingMemoryStore
      const keys = yield* cachedOver(store, { ttlMs: 5_000, negativeTtlMs: 1_000 })
      const key = apiKey()
      yield* keys.insert(key)
      for (let i = 0; i < 3; i++) assert.deepStrictEqual(yield* keys.findByHash(key.hash), Option.some(key))
      assert.strictEqual(lookups.count, 1)
      const unknown = randomHash()
      for (let i = 0; i < 3; i++) assert.isTrue(Option.isNone(yield* keys.findByHash(unknown)))
      assert.strictEqual(lookups.count, 2)
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* keys.findByHash(unknown)))
      yield* keys.findByHash(key.hash)
      assert.strictEqual(lookups.count, 3)
      yield* TestClock.adjust("4 seconds")
      yield* keys.findByHash(key.hash)
      assert.strictEqual(lookups.count, 4)
      const stats = yield* keys.stats
      assert.deepStrictEqual([stats.hits, stats.misses, stats.subscribed], [5, 4, true])
    }))

  it.scoped("is bounded: the least recently used entry goes first", () =>
    Effect.gen(function*() {
      const { lookups, store } = yield* countingMemoryStore
      const keys = yield* cachedOver(store, { maxEntries: 3 })
      const all = [apiKey(), apiKey(), apiKey(), apiKey()]
      for (const k of all) yield* keys.insert(k)
      for (const k of all.slice(0, 3)) yield* keys.findByHash(k.hash)
      yield* keys.findByHash(all[0]!.hash) // a use: all[1] is now the least recent
      yield* keys.findByHash(all[3]!.hash)
      assert.strictEqual((yield* keys.stats).entries, 3)
      const before = lookups.count
      yield* keys.findByHash(all[0]!.hash)
      assert.strictEqual(lookups.count, before)
      yield* keys.findByHash(all[1]!.hash)
      assert.strictEqual(lookups.count, before + 1)
    }))

  it.scopedLive("a revoke or rotation through one gateway drops the key from another's cache at once, by hash only", () =>
    Effect.gen(function*() {
      const { store } = yield* countingMemoryStore
      const a = yield* cachedOver(store, { ttlMs: 60_000 })
      const b = yield* cachedOver(store, { ttlMs: 60_000 })
      const listener = yield* Effect.acquireRelease(
        Effect.promise(() => connect(redisUrl)),
        (c) => Effect.promise(() => c.quit())
      )
      const messages: Array<string> = []
      listener.on("message", (_: string, message: string) => messages.push(message))
      yield* Effect.promise(() => listener.subscribe(channel))

      const revoked = apiKey()
      const rotated = apiKey()
      yield* a.insert(revoked)
      yield* a.insert(rotated)
      assert.strictEqual(yield* status(b, revoked.hash), "active")
      assert.strictEqual(yield* status(b, rotated.hash), "active")
      assert.strictEqual(yield* status(b, revoked.hash), "active") // from b's cache now

      const started = Date.now()
      yield* a.revoke(revoked.id, 1)
      assert.strictEqual(yield* eventually(status(b, revoked.hash), (s) => s === "revoked", 1_000), "revoked")
      assert.isBelow(Date.now() - started, 1_000)

      const successor = apiKey()
      const { previous } = yield* a.rotate(rotated.id, successor, 1_000)
      const seen = yield* eventually(
        Effect.map(b.findByHash(rotated.hash), Option.map((k) => k.expiresAt)),
        (e) => Option.getOrUndefined(e) === 1_000,
        1_000
      )
      assert.deepStrictEqual(seen, Option.some(previous.expiresAt))
      yield* eventually(Effect.sync(() => messages.length), (n) => n >= 5, 1_000)
      const hashes = messages.map((m) => m.split(" ")[0])
      assert.isTrue(messages.every((m) => /^[0-9a-f]{64} [0-9a-f-]{36}$/.test(m)), messages.join("\n"))
      assert.includeMembers(hashes, [revoked.hash, rotated.hash, successor.hash])
    }))

  describe("reconnect", () => {
    let server: RedisServer | undefined
    afterAll(async () => {
      await server?.kill()
    })

    it.scopedLive("while the subscription is down the cache is bypassed, and a reconnect flushes it", () =>
      Effect.gen(function*() {
        server = yield* Effect.promise(async () => startRedisServer(await sparePort()))
        const own: Effect.Effect<Redis> = Effect.promise(() => connect(server!.url))
        const { store } = yield* countingMemoryStore
        const keys = yield* cachedOver(store, { ttlMs: 60_000 }, own)
        const key = apiKey()
        yield* store.insert(key)
        assert.strictEqual(yield* status(keys, key.hash), "active")
        // revoked behind the cache's back (no invalidation): the cache still says active
        yield* store.revoke(key.id, 1)
        assert.strictEqual(yield* status(keys, key.hash), "active")
        const flushes = (yield* keys.stats).flushes

        yield* Effect.promise(() => server!.kill())
        const down = yield* eventually(keys.stats, (s) => !s.subscribed, 2_000)
        assert.isFalse(down.subscribed)
        assert.strictEqual(yield* status(keys, key.hash), "revoked") // bypassed: straight to the store

        const other = apiKey()
        yield* store.insert(other)
        assert.strictEqual(yield* status(keys, other.hash), "active") // not cached while down
        yield* store.revoke(other.id, 1)

        server = yield* Effect.promise(() => startRedisServer(server!.port))
        const up = yield* eventually(keys.stats, (s) => s.subscribed, 5_000)
        assert.isTrue(up.subscribed)
        assert.isAtLeast(up.flushes, flushes + 2)
        assert.strictEqual(yield* status(keys, other.hash), "revoked")
      }))

    it.scopedLive("a subscription that goes silent (server stopped, no RST) is noticed within ~2 s by its heartbeat", () =>
      Effect.gen(function*() {
        server ??= yield* Effect.promise(async () => startRedisServer(await sparePort()))
        const own: Effect.Effect<Redis> = Effect.promise(() => connect(server!.url))
        const { store } = yield* countingMemoryStore
        const keys = yield* cachedOver(store, { ttlMs: 60_000 }, own)
        const key = apiKey()
        yield* store.insert(key)
        assert.strictEqual(yield* status(keys, key.hash), "active")
        yield* store.revoke(key.id, 1) // behind the cache's back
        server!.process.kill("SIGSTOP")
        try {
          const started = Date.now()
          const silent = yield* eventually(keys.stats, (s) => !s.subscribed, 5_000)
          assert.isFalse(silent.subscribed)
          assert.isBelow(Date.now() - started, 3_000)
          assert.strictEqual(yield* status(keys, key.hash), "revoked")
        } finally {
          server!.process.kill("SIGCONT")
        }
        assert.isTrue((yield* eventually(keys.stats, (s) => s.subscribed, 10_000)).subscribed)
      }))
  })
})

const pg = testDatabase(postgresTestClient)

describe.skipIf(!redisAvailable || !postgresAvailable)("CachedKeyStore across processes (PostgreSQL below)", () => {
  it.live("a key revoked through one gateway is refused by a second gateway process within one second", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [{ name }] = (yield* sql<{ readonly name: string }>`SELECT current_database() AS name`) as unknown as [
        { readonly name: string }
      ]
      const databaseUrl = new URL(postgresUrl)
      databaseUrl.pathname = `/${name}`
      const keys = yield* cachedOver(yield* makePgKeyStore)
      // a real key of the demo project the worker seeds, so its Gateway can authenticate it
      const generated = yield* ApiKeyFormat.generateApiKey("test")
      const key = apiKey({
        projectId: "demo-pro" as ProjectId,
        hash: generated.hash,
        prefix: generated.prefix,
        createdAt: Date.now()
      })
      yield* keys.insert(key)

      const worker = spawnWorker("KeyCacheWorker.ts", {
        DATABASE_URL: databaseUrl.toString(),
        REDIS_URL: redisUrl,
        CHANNEL: channel,
        SECRET: generated.secret
      }, 30_000)
      yield* Effect.addFinalizer(() => Effect.promise(() => worker.kill()))
      assert.deepStrictEqual(yield* Effect.promise(() => worker.next()), { warmed: true })
      yield* Effect.sleep("100 millis") // the worker now answers from its cache

      const started = Date.now()
      yield* keys.revoke(key.id, Date.now())
      const report = (yield* Effect.promise(() => worker.next())) as {
        refused: string | false
        stats: { hits: number; misses: number; invalidations: number }
      }
      const latency = Date.now() - started
      assert.strictEqual(report.refused, "revoked_key")
      assert.isBelow(latency, 1_000)
      assert.isAbove(report.stats.hits, 5) // it really was answering from its cache
      assert.isAtLeast(report.stats.invalidations, 1)
    }).pipe(Effect.provide(pg.client), Effect.scoped))
})
