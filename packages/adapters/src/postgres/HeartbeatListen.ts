/**
 * `LISTEN` that notices when it has gone deaf. `@effect/sql-pg` listens on a connection of its
 * own and does not report it when that connection drops (a server restart, a failover, an idle
 * timeout in a proxy, `pg_terminate_backend`): the stream simply stops delivering, for ever.
 *
 * Here each subscription listens through a client of its own (one connection) on the channel
 * and on a heartbeat channel, and every `intervalMs` a fresh token is notified on the heartbeat
 * channel through the main pool. If that token has not come back within `timeoutMs`, the stream
 * fails with {@link ListenerDeaf} at once; its consumer subscribes again, on a new connection.
 * The old client is closed in the background: on a connection that died silently, even its
 * `UNLISTEN` can hang until TCP gives up, and nothing waits for it. Notices sent while the
 * listener was deaf are lost, as with any `LISTEN`: a consumer that must not miss one needs
 * another way to catch up.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { Cause, Clock, Data, Duration, Effect, Exit, Fiber, Queue, Scope, Stream } from "effect"
import { randomUUID } from "node:crypto"

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

        // the listening client lives in a scope of its own, closed in the background (see above)
        const connection = yield* Scope.make()
        yield* Effect.addFinalizer(() => Effect.forkDaemon(Scope.close(connection, Exit.void)))
        // the pool's own connection (opened to check the server) closes after a second; the
        // listening connection is the one that stays; neither waits for ever to connect
        const listener = yield* PgClient.make({
          ...client.config,
          maxConnections: 1,
          idleTimeout: Duration.seconds(1),
          connectTimeout: Duration.seconds(5)
        }).pipe(
          Scope.extend(connection),
          Effect.provide(Reactivity.layer),
          Effect.mapError(() => deafError)
        )
        const listening = yield* Stream.merge(
          listener.listen(channel).pipe(Stream.mapEffect((payload) => Queue.offer(payloads, payload))),
          listener.listen(beats).pipe(Stream.tap((payload) =>
            Effect.sync(() => {
              const at = payload.lastIndexOf(":")
              if (payload.slice(0, at) === token) heard = Math.max(heard, Number(payload.slice(at + 1)))
            })
          ))
        ).pipe(Stream.runDrain, Effect.forkIn(connection))

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
            if (heard >= sent) continue
            if (heard === 0 && (yield* Clock.currentTimeMillis) - started < startup) continue
            return yield* deafError
          }
        })
        // the listening fiber only ever ends by failing (it could not LISTEN, or its connection broke)
        const broken = Effect.zipRight(Effect.exit(Fiber.join(listening)), Effect.fail(deafError))

        return Stream.fromQueue(payloads).pipe(
          Stream.interruptWhen(Effect.raceFirst(deaf, broken)),
          Stream.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Stream.failCause(cause as Cause.Cause<never>) : Stream.fail(deafError)
          )
        )
      }).pipe(Effect.catchAll((error) => Effect.succeed(Stream.fail(error))))
    )
  })
