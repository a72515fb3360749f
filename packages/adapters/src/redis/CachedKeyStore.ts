import type { ApiKey, ApiKeyId } from "@tollgate/core"
import { KeyStore } from "@tollgate/core"
import type { Scope } from "effect"
import { Clock, Effect, Layer, Option, Runtime } from "effect"
import type { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import { makeLru } from "./Lru.js"
import { closeClient, RedisConnection, watchConnection } from "./RedisConnection.js"

export interface KeyCacheOptions {
  /** Publishes invalidations; a second connection for the subscription is made from it (`duplicate`). */
  readonly client: Redis
  /** The pub/sub channel every gateway of one deployment shares (scope it with the key prefix). */
  readonly channel: string
  /** Entries kept at most (default 10,000); the least recently used goes first. */
  readonly maxEntries?: number
  /** A found key is kept this long at most (default 5,000 ms), a backstop should an invalidation be lost. */
  readonly ttlMs?: number
  /** "No such key" is kept this long (default 1,000 ms), so a flood of forged keys cannot reach the store. */
  readonly negativeTtlMs?: number
  /** The longest a PUBLISH may take before it is logged as failed (default 1,000 ms). */
  readonly publishTimeoutMs?: number
  /** How often the subscription is PINGed, so a silently dead connection is noticed (default 1,000 ms). */
  readonly heartbeatMs?: number
  /** How long building the store waits for the subscription at first (default 2,000 ms). */
  readonly startupWaitMs?: number
}

export interface KeyCacheStats {
  readonly entries: number
  readonly hits: number
  readonly misses: number
  /** Entries dropped by an invalidation, from this gateway or another. */
  readonly invalidations: number
  /** Whole-cache flushes: the subscription was lost or came back. */
  readonly flushes: number
  /** Whether invalidations are being received; the cache is bypassed while they are not. */
  readonly subscribed: boolean
}

export type CachedKeyStore = KeyStore["Type"] & { readonly stats: Effect.Effect<KeyCacheStats> }

const HASH = /^[0-9a-f]{64}$/

/**
 * A KeyStore that remembers `findByHash` answers (found keys and, briefly, unknown hashes) in a
 * bounded in-process LRU, and forgets them when told to over Redis pub/sub.
 *
 * Every write (`insert`, `revoke`, `rotate`) goes to `inner` first, then drops the affected
 * hashes here and PUBLISHes them on `channel` (`<hash> <origin>`: the hash, never the secret, and
 * the publishing store's random id); every other gateway's subscription drops them on receipt, so a revoked key is refused everywhere within the pub/sub
 * delivery time (milliseconds), and within `ttlMs` even if a message were lost.
 *
 * Pub/sub does not replay what a disconnected subscriber missed. So while the subscription is
 * down the cache is flushed and bypassed (every lookup goes to `inner`), and when it is back
 * (subscribed again) the cache is flushed once more before it is used. A PING every
 * `heartbeatMs` makes a connection that died silently count as down within about two seconds
 * (the client drops a connection that owes a reply for its socket timeout, 1 s). A lookup that was in
 * flight when an invalidation arrived is not stored (a generation count), so a stale answer can
 * never be cached after its invalidation.
 *
 * A PUBLISH that fails is logged and does not fail the write: the write has happened, and the
 * other gateways catch up within `ttlMs`.
 */
export const makeCachedKeyStore = (
  inner: KeyStore["Type"],
  options: KeyCacheOptions
): Effect.Effect<CachedKeyStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { channel, client } = options
    const ttlMs = options.ttlMs ?? 5_000
    const negativeTtlMs = options.negativeTtlMs ?? 1_000
    const publishTimeoutMs = options.publishTimeoutMs ?? 1_000
    const cache = makeLru<string, Option.Option<ApiKey>>(options.maxEntries ?? 10_000)
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)

    let subscribed = false
    let generation = 0
    let hits = 0
    let misses = 0
    let invalidations = 0
    let flushes = 0

    const drop = (hash: string) => {
      generation++
      cache.delete(hash)
      invalidations++
    }
    const flush = () => {
      generation++
      cache.clear()
      flushes++
    }

    const subscriber = yield* Effect.acquireRelease(
      Effect.sync(() => client.duplicate({ lazyConnect: true, autoResubscribe: false, connectionName: "key-cache" })),
      closeClient
    )
    yield* watchConnection(subscriber, "key cache subscription")
    // `<hash> <origin>`: a gateway has already dropped what it publishes, so it skips its own echo
    const origin = randomUUID()
    subscriber.on("message", (from: string, message: string) => {
      if (from !== channel) return
      const [hash, sender] = message.split(" ")
      if (hash !== undefined && HASH.test(hash) && sender !== origin) drop(hash)
    })
    let firstSubscription: () => void = () => undefined
    const subscribedOnce = new Promise<void>((resolve) => (firstSubscription = resolve))
    subscriber.on("ready", () => {
      subscriber.subscribe(channel).then(
        () => {
          flush()
          subscribed = true
          firstSubscription()
        },
        (error: Error) => log(Effect.logWarning("key cache: could not subscribe; retrying on reconnect", error.message))
      )
    })
    subscriber.on("close", () => {
      if (!subscribed) return
      subscribed = false
      flush()
    })
    subscriber.connect().catch(() => {
      // reported through the `error` event; the retry strategy keeps trying
    })
    // A connection can die without a word (no RST): a PING every second gives the client's socket
    // timeout something to wait for, so silence is noticed (and the cache flushed) within ~2 s.
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        setInterval(() => {
          if (subscriber.status === "ready") subscriber.ping().catch(() => undefined)
        }, options.heartbeatMs ?? 1_000).unref()
      ),
      (timer) => Effect.sync(() => clearInterval(timer))
    )
    const startupWaitMs = options.startupWaitMs ?? 2_000
    const ready = yield* Effect.promise(() =>
      Promise.race([
        subscribedOnce.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), startupWaitMs).unref())
      ])
    )
    if (!ready) yield* Effect.logWarning("key cache: not subscribed yet; lookups bypass the cache until it is")

    const publish = (hashes: ReadonlyArray<string>) =>
      Effect.forEach(hashes, (hash) =>
        Effect.tryPromise(() => client.publish(channel, `${hash} ${origin}`)).pipe(
          Effect.timeoutFail({ duration: publishTimeoutMs, onTimeout: () => new Error("timed out") }),
          Effect.catchAll((error) =>
            Effect.logWarning(
              "key cache: invalidation not published; other gateways drop the key when their entry expires",
              error.message
            )
          )
        ), { discard: true })

    /** Drops `hashes` here, then tells every gateway. */
    const invalidate = (hashes: ReadonlyArray<string>) =>
      Effect.zipRight(Effect.sync(() => hashes.forEach(drop)), publish(hashes))

    const findByHash = Effect.fnUntraced(function*(hash: string) {
      const now = yield* Clock.currentTimeMillis
      if (subscribed) {
        const cached = cache.get(hash, now)
        if (cached !== undefined) {
          hits++
          return cached
        }
      }
      misses++
      const before = generation
      const found = yield* inner.findByHash(hash)
      if (subscribed && generation === before) {
        cache.set(hash, found, now + (Option.isSome(found) ? ttlMs : negativeTtlMs))
      }
      return found
    })

    const insert = (key: ApiKey) => Effect.tap(inner.insert(key), () => invalidate([key.hash]))

    const revoke = (id: ApiKeyId, at: number) => Effect.tap(inner.revoke(id, at), (key) => invalidate([key.hash]))

    const rotate = (id: ApiKeyId, successor: ApiKey, graceUntil: number) =>
      Effect.tap(
        inner.rotate(id, successor, graceUntil),
        ({ next, previous }) => invalidate([previous.hash, next.hash])
      )

    const stats = Effect.sync((): KeyCacheStats => ({
      entries: cache.size(),
      hits,
      misses,
      invalidations,
      flushes,
      subscribed
    }))

    return {
      ...KeyStore.of({ insert, findByHash, get: inner.get, listByProject: inner.listByProject, revoke, rotate }),
      stats
    }
  })

/**
 * Wraps the KeyStore below it with the cache, on the gateway's {@link RedisConnection}; the
 * channel is `<REDIS_KEY_PREFIX>keys:invalidate`.
 */
export const KeyCacheLive: Layer.Layer<KeyStore, never, KeyStore | RedisConnection> = Layer.scoped(
  KeyStore,
  Effect.gen(function*() {
    const inner = yield* KeyStore
    const { client, keyPrefix } = yield* RedisConnection
    return yield* makeCachedKeyStore(inner, { client, channel: `${keyPrefix}keys:invalidate` })
  })
)
