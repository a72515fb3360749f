/**
 * `LISTEN` that notices when it has gone deaf. `@effect/sql-pg` listens on a connection of its
 * own and does not report it when that connection drops (a server restart, a failover, an idle
 * timeout in a proxy, `pg_terminate_backend`): the stream simply stops delivering, for ever.
 *
 * Here each subscription listens on a `pg` connection of its own (the main client's settings,
 * TCP keep-alive, a 5 s connect timeout) on the channel and on a heartbeat channel, and every
 * `intervalMs` a fresh token is notified on the heartbeat channel through the main pool. If that
 * token has not come back within `timeoutMs`, or the connection reports an error or ends, the
 * stream fails with {@link ListenerDeaf} at once; its consumer subscribes again, on a new
 * connection. The old connection's socket is destroyed, not closed politely: on a connection that
 * died silently even `UNLISTEN` or a close would wait until TCP gives up. Its error listener
 * stays for good, so a late error from the server (the connection being terminated while it
 * closes) is never an uncaught one. Notices sent while the listener was deaf are lost, as with
 * any `LISTEN`: a consumer that must not miss one needs another way to catch up.
 */
import { PgClient } from "@effect/sql-pg"
import { Clock, Data, Duration, Effect, Queue, Redacted, Stream } from "effect"
import { randomUUID } from "node:crypto"
import pg from "pg"

export class ListenerDeaf extends Data.TaggedError("ListenerDeaf")<{ readonly channel: string }> {}

export interface HeartbeatOptions {
  /** How often the listener checks that it still hears (default 5 s). */
  readonly intervalMs?: number
  /** How long a heartbeat may take to come back (default 2 s; less than `intervalMs`). */
  readonly timeoutMs?: number
  /**
   * Until the first heartbeat comes back, misses are forgiven for this long (default twice
   * `intervalMs`): the new connection may still be opening. Each subscription has it, so it
   * bounds how long a replacement connection that never hears can go unnoticed.
   */
  readonly startupMs?: number
}

/** The channel the heartbeats of `channel`'s listeners go on; other listeners of `channel` never see them. */
const heartbeatChannel = (channel: string): string => `${channel}_heartbeat`

/** A `pg` connection with the settings of `config`, the main client's. */
const connectionOf = (config: PgClient.PgClientConfig) =>
  new pg.Client({
    ...(config.url === undefined ? {} : { connectionString: Redacted.value(config.url) }),
    ...(config.username === undefined ? {} : { user: config.username }),
    ...(config.host === undefined ? {} : { host: config.host }),
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(config.database === undefined ? {} : { database: config.database }),
    ...(config.password === undefined ? {} : { password: Redacted.value(config.password) }),
    ...(config.ssl === undefined ? {} : { ssl: config.ssl }),
    application_name: `${config.applicationName ?? "tollgate"} (listen)`,
    connectionTimeoutMillis: 5_000,
    keepAlive: true
  })

/**
 * The payloads notified on `channel`, failing with {@link ListenerDeaf} once the listening
 * connection stops hearing (or cannot be opened).
 */
export const listenWithHeartbeat = (
  channel: string,
  options: HeartbeatOptions = {}
): Effect.Effect<Stream.Stream<string, ListenerDeaf>, never, PgClient.PgClient> =>
  Effect.map(PgClient.PgClient, (client) => {
    const interval = Math.max(2, options.intervalMs ?? 5_000)
    const timeout = Math.min(interval - 1, Math.max(1, options.timeoutMs ?? 2_000))
    const startup = options.startupMs ?? 2 * interval
    const beats = heartbeatChannel(channel)
    const deafError = new ListenerDeaf({ channel })
    return Stream.unwrapScoped(
      Effect.gen(function*() {
        const token = randomUUID()
        let sent = 0
        let heard = 0
        const started = yield* Clock.currentTimeMillis
        const payloads = yield* Queue.unbounded<string>()
        // set once the connection reports an error or ends: it will not hear again
        let broken = false

        const connection = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const conn = connectionOf(client.config)
            conn.on("error", () => {
              broken = true
            })
            conn.on("end", () => {
              broken = true
            })
            conn.on("notification", ({ channel: on, payload }) => {
              if (payload === undefined) return
              if (on === channel) Queue.unsafeOffer(payloads, payload)
              else if (on === beats) {
                const at = payload.lastIndexOf(":")
                if (payload.slice(0, at) === token) heard = Math.max(heard, Number(payload.slice(at + 1)))
              }
            })
            return conn
          }),
          (conn) =>
            Effect.sync(() => {
              conn.removeAllListeners("notification") // no UNLISTEN or polite close: on a dead connection either would wait for TCP
              ;(conn as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream
                ?.destroy?.()
            })
        )
        yield* Effect.tryPromise({
          try: async () => {
            await connection.connect()
            await connection.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
            await connection.query(`LISTEN ${pg.escapeIdentifier(beats)}`)
          },
          catch: () => deafError
        })

        const deaf = Effect.gen(function*() {
          for (;;) {
            yield* Effect.sleep(Duration.millis(interval - timeout))
            sent++
            // a failed notify (the pool is down) is not heard either; `pg_notify` because the
            // client's `notify` sends its payload as a parameter of NOTIFY, which PostgreSQL refuses
            yield* Effect.ignore(
              Effect.timeout(client`SELECT pg_notify(${beats}, ${`${token}:${sent}`})`, Duration.millis(timeout))
            )
            yield* Effect.sleep(Duration.millis(timeout))
            if (broken) return yield* deafError
            if (heard >= sent) continue
            if (heard === 0 && (yield* Clock.currentTimeMillis) - started < startup) continue
            return yield* deafError
          }
        })

        return Stream.fromQueue(payloads).pipe(Stream.interruptWhen(deaf))
      }).pipe(Effect.catchAll((error) => Effect.succeed(Stream.fail(error))))
    )
  })
