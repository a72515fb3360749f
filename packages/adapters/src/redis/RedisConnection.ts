import type { ConfigError, Scope } from "effect"
import { Context, Effect, Layer, Redacted, Runtime } from "effect"
import { Redis } from "ioredis"
import { RedisConfig } from "./RedisConfig.js"

export interface RedisClientOptions {
  /** Time allowed to open a connection (default 1,000 ms). */
  readonly connectTimeoutMs?: number
  /**
   * A connection that owes replies and receives nothing for this long is dropped and reopened,
   * failing what it owed (default 1,000 ms): a stalled server cannot hold commands for longer.
   */
  readonly socketTimeoutMs?: number
  /** Reconnect delays grow by 50 ms per attempt up to this cap (default 500 ms), without end. */
  readonly maxReconnectDelayMs?: number
  /** How long `makeRedisClient` waits for the first connection before carrying on (default 2,000 ms). */
  readonly startupWaitMs?: number
  /** A name for the connection, shown by CLIENT LIST. */
  readonly name?: string
}

/**
 * A client that never queues: with the offline queue off and no retries per request, a command
 * sent while the connection is down fails at once instead of waiting in memory for a reconnect.
 * Commands issued in the same tick go out as one pipeline (auto-pipelining). The client
 * reconnects forever with a capped delay, so a restarted server is picked up without restarting
 * the process.
 */
export const redisOptions = (options: RedisClientOptions = {}) => ({
  enableAutoPipelining: true,
  // RESP2: nothing here needs RESP3's types, and its replies are cheaper to parse
  protocol: 2 as const,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: options.connectTimeoutMs ?? 1_000,
  socketTimeout: options.socketTimeoutMs ?? 1_000,
  retryStrategy: (times: number) => Math.min(times * 50, options.maxReconnectDelayMs ?? 500),
  lazyConnect: true,
  ...(options.name === undefined ? {} : { connectionName: options.name })
})

/** Clients being closed on purpose: their `close` is no outage. */
const closing = new WeakSet<Redis>()

/**
 * Logs the connection's transitions (lost, back), not every failed reconnect attempt, and
 * keeps Node from printing unhandled `error` events.
 */
export const watchConnection = (client: Redis, label: string) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
    let lastError = ""
    let down = false
    client.on("error", (error: Error) => {
      lastError = error.message
    })
    client.on("close", () => {
      if (down || closing.has(client)) return
      down = true
      log(Effect.logWarning(`${label}: Redis connection lost`, lastError))
    })
    client.on("ready", () => {
      if (!down) return
      down = false
      log(Effect.logInfo(`${label}: Redis connection back`))
    })
  })

/** Resolves once the client is ready, or after `ms` (logged), whichever comes first; never fails. */
export const awaitReady = (client: Redis, ms: number, label: string) =>
  Effect.async<boolean>((resume) => {
    if (client.status === "ready") return resume(Effect.succeed(true))
    const done = (ready: boolean) => {
      clearTimeout(timer)
      client.off("ready", onReady)
      resume(Effect.succeed(ready))
    }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), ms)
    client.on("ready", onReady)
    return Effect.sync(() => {
      clearTimeout(timer)
      client.off("ready", onReady)
    })
  }).pipe(
    Effect.tap((ready) =>
      ready ? Effect.void : Effect.logWarning(`${label}: Redis is not answering yet; carrying on and retrying`)
    )
  )

/**
 * A client for `url`, connecting in the background; closed when the scope ends. A server that is
 * down at start does not fail the caller: its requests degrade (per route) until it answers.
 */
export const makeRedisClient = (
  url: Redacted.Redacted<string>,
  options: RedisClientOptions = {}
): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const client = new Redis(Redacted.value(url), redisOptions(options))
      const label = options.name ?? "tollgate"
      yield* watchConnection(client, label)
      client.connect().catch(() => {
        // reported through the `error` event; the retry strategy keeps trying
      })
      yield* awaitReady(client, options.startupWaitMs ?? 2_000, label)
      return client
    }),
    (client) => closeClient(client)
  )

/** QUIT when connected (bounded to 1 s), otherwise just drop the socket and stop reconnecting. */
export const closeClient = (client: Redis): Effect.Effect<void> =>
  Effect.promise(() => {
    closing.add(client)
    return (
      client.status === "ready"
        ? Promise.race([client.quit(), new Promise((r) => setTimeout(r, 1_000))]).catch(() => undefined)
        : Promise.resolve(undefined)
    )
  }).pipe(Effect.ensuring(Effect.sync(() => client.disconnect(false))))

/** The gateway's Redis: one client (shared, auto-pipelined), the key prefix and the per-call timeout. */
export class RedisConnection extends Context.Tag("@tollgate/adapters/RedisConnection")<RedisConnection, {
  readonly client: Redis
  readonly keyPrefix: string
  readonly timeoutMs: number
}>() {}

/** {@link RedisConnection} from `REDIS_URL`, `REDIS_KEY_PREFIX` and `REDIS_TIMEOUT_MS`. */
export const RedisConnectionLive: Layer.Layer<RedisConnection, ConfigError.ConfigError> = Layer.scoped(
  RedisConnection,
  Effect.gen(function*() {
    const config = yield* RedisConfig
    const client = yield* makeRedisClient(config.url, { name: "tollgate" })
    return { client, keyPrefix: config.keyPrefix, timeoutMs: config.timeoutMs }
  })
)
