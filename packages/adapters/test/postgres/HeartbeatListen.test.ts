import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Chunk, Effect, Fiber, Layer, Ref, Schedule, Stream } from "effect"
import { listenWithHeartbeat } from "../../src/postgres/HeartbeatListen.js"
import { postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"
import { eventually } from "../support/Probes.js"

const pg = testDatabase(postgresTestClient)
const onPg = <A>(body: Effect.Effect<A, unknown, SqlClient.SqlClient | PgClient.PgClient | Scope.Scope>) =>
  Effect.scoped(body).pipe(Effect.provide(pg.fresh(Layer.empty)))

const channel = "tollgate_heartbeat_test"

/** Drops the connections that are listening, as a failover or a proxy's idle timeout would. */
const dropListeners = Effect.flatMap(PgClient.PgClient, (sql) =>
  sql<{ readonly dropped: boolean }>`
    SELECT pg_terminate_backend(pid) AS dropped FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`)

/**
 * Runs `stream` as its consumer in the product does (re-subscribing 100 ms after a failure),
 * collecting what it delivers; notifies `payload` every 50 ms until it has arrived (or 5 s).
 */
const collect = (stream: Stream.Stream<string, unknown>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make(Chunk.empty<string>())
    const fiber = yield* stream.pipe(
      Stream.runForEach((payload) => Ref.update(seen, Chunk.append(payload))),
      Effect.retry(Schedule.spaced("100 millis")),
      Effect.forkScoped
    )
    const arrives = (payload: string) =>
      Effect.flatMap(PgClient.PgClient, (sql) =>
        eventually(
          Effect.zipRight(
            sql`SELECT pg_notify(${channel}, ${payload})`,
            Effect.zipRight(Effect.sleep("50 millis"), Ref.get(seen))
          ),
          (s) => Chunk.some(s, (p) => p === payload),
          5_000
        )).pipe(Effect.map((s) => Chunk.some(s, (p) => p === payload)))
    return { arrives, fiber, seen: Ref.get(seen) } as const
  })

describe.skipIf(!postgresAvailable)("LISTEN with a heartbeat, on PostgreSQL", () => {
  it.live("hears again after its connection is dropped; a plain LISTEN does not", () =>
    onPg(Effect.gen(function*() {
      const client = yield* PgClient.PgClient
      const guarded = yield* collect(
        yield* listenWithHeartbeat(channel, { intervalMs: 200, timeoutMs: 150, startupMs: 1_000 })
      )
      assert.isTrue(yield* guarded.arrives("before"))
      assert.isNotEmpty(yield* dropListeners)
      assert.isTrue(yield* guarded.arrives("after"), "the guarded listener hears again")
      yield* Fiber.interrupt(guarded.fiber)

      const plain = yield* collect(client.listen(channel))
      assert.isTrue(yield* plain.arrives("plain-before"))
      assert.isNotEmpty(yield* dropListeners)
      assert.isFalse(yield* plain.arrives("plain-after"), "a plain LISTEN stays deaf")
    })), 30_000)

  it.live(
    "hears again after its server process stops answering without closing the connection",
    () =>
      onPg(Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const guarded = yield* collect(
          yield* listenWithHeartbeat(channel, { intervalMs: 200, timeoutMs: 150, startupMs: 1_000 })
        )
        assert.isTrue(yield* guarded.arrives("before"))
        const listeners = yield* sql<{ readonly pid: number }>`
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`
        assert.isNotEmpty(listeners)
        // the backends stop where they are: no reset, no close, no answer (as behind a dead NAT)
        const stopped = listeners.filter(({ pid }) => {
          try {
            process.kill(pid, "SIGSTOP")
            return true
          } catch {
            return false
          }
        })
        if (stopped.length === 0) return // the server is not on this machine: nothing to stop
        try {
          assert.isTrue(yield* guarded.arrives("after"), "the guarded listener hears again")
        } finally {
          for (const { pid } of stopped) process.kill(pid, "SIGCONT")
          yield* dropListeners
        }
      })),
    30_000
  )

  it.live("delivers only the channel's payloads, never its heartbeats", () =>
    onPg(Effect.gen(function*() {
      const guarded = yield* collect(
        yield* listenWithHeartbeat(channel, { intervalMs: 50, timeoutMs: 40, startupMs: 1_000 })
      )
      assert.isTrue(yield* guarded.arrives("p1"))
      yield* Effect.sleep("300 millis")
      assert.isTrue(yield* guarded.arrives("p2"))
      const seen = Chunk.toReadonlyArray(yield* guarded.seen)
      assert.isTrue(seen.every((p) => p === "p1" || p === "p2"), JSON.stringify(seen))
    })), 30_000)
})
