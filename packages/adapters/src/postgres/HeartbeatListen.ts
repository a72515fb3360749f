/**
 * `LISTEN` that notices when it has gone deaf. `@effect/sql-pg` listens on a connection of its
 * own and does not report it when that connection drops (a server restart, a failover, an idle
 * timeout in a proxy, `pg_terminate_backend`): the stream simply stops delivering, for ever.
 *
 * Here the listener also listens on a heartbeat channel of its own and, every `intervalMs`,
 * notifies it with a fresh token through the pool. If that token has not come back on the
 * listening connection within `timeoutMs`, the stream fails with {@link ListenerDeaf}; its
 * consumer re-subscribes, and a fresh subscription takes a fresh connection once the dead one has
 * been let go. Notices sent while the listener was deaf are lost, as with any `LISTEN`: a
 * consumer that must not miss one needs another way to catch up.
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Data, Duration, Effect, Stream } from "effect"
import { randomUUID } from "node:crypto"

export class ListenerDeaf extends Data.TaggedError("ListenerDeaf")<{ readonly channel: string }> {}

export interface HeartbeatOptions {
  /** How often the listener checks that it still hears (default 5 s). */
  readonly intervalMs?: number
  /** How long a heartbeat may take to come back (default 2 s; less than `intervalMs`). */
  readonly timeoutMs?: number
}

/** The channel the heartbeats of `channel`'s listeners go on; other listeners of `channel` never see them. */
export const heartbeatChannel = (channel: string): string => `${channel}_heartbeat`

/**
 * The payloads notified on `channel`, failing with {@link ListenerDeaf} (or the subscription's own
 * error) once the listening connection stops hearing.
 */
export const listenWithHeartbeat = (
  channel: string,
  options: HeartbeatOptions = {}
): Effect.Effect<Stream.Stream<string, ListenerDeaf>, never, PgClient.PgClient> =>
  Effect.map(PgClient.PgClient, (client) => {
    const interval = Math.max(2, options.intervalMs ?? 5_000)
    const timeout = Math.min(interval - 1, Math.max(1, options.timeoutMs ?? 2_000))
    const beats = heartbeatChannel(channel)
    return Stream.unwrapScoped(Effect.sync(() => {
      const token = randomUUID()
      let sent = 0
      let heard = 0
      const deaf = Effect.gen(function*() {
        for (;;) {
          // first a pause: the subscriptions' LISTEN statements run once the stream is pulled,
          // and a heartbeat sent before them would be missed
          yield* Effect.sleep(Duration.millis(interval - timeout))
          sent++
          // a failed notify (the pool is down) is not heard either; `pg_notify` because the
          // client's `notify` sends its payload as a parameter of NOTIFY, which PostgreSQL refuses
          yield* Effect.ignore(client`SELECT pg_notify(${beats}, ${`${token}:${sent}`})`)
          yield* Effect.sleep(Duration.millis(timeout))
          if (heard < sent) return yield* new ListenerDeaf({ channel })
        }
      })
      const heartbeats = client.listen(beats).pipe(
        Stream.tap((payload) =>
          Effect.sync(() => {
            const at = payload.lastIndexOf(":")
            if (payload.slice(0, at) === token) heard = Math.max(heard, Number(payload.slice(at + 1)))
          })
        ),
        Stream.drain
      )
      return client.listen(channel).pipe(
        Stream.merge(heartbeats),
        Stream.interruptWhen(deaf),
        // the subscription's own errors, and a dead connection's failing UNLISTEN at its end
        // (a defect of `@effect/sql-pg`'s finalizer), all mean the same: subscribe again
        Stream.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Stream.failCause(cause as Cause.Cause<never>)
            : Stream.fail(
              Cause.failureOption(cause).pipe(
                (failure) =>
                  failure._tag === "Some" && failure.value instanceof ListenerDeaf
                    ? failure.value
                    : new ListenerDeaf({ channel })
              )
            )
        )
      )
    }))
  })
