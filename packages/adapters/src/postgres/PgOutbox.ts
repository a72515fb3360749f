import { SqlClient } from "@effect/sql"
import type { MessageId, OutboxMessage } from "@tollgate/core"
import { MessageId as MessageIdSchema, Outbox, OutboxUnavailable, ProjectId } from "@tollgate/core"
import { Clock, Effect, Layer, Schema } from "effect"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; every value we store is a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

/** A row returned by a claim. */
const MessageRow = Schema.Struct({
  id: MessageIdSchema,
  project_id: ProjectId,
  topic: Schema.String,
  payload: Schema.Unknown,
  available_at: Int8,
  attempts: Schema.Number,
  /** When it was due before this claim leased it: the claim's order. */
  due_at: Int8
})

const decodeMessages = Schema.decodeUnknown(Schema.Array(MessageRow))

/** Longest waiting first, then by id, as the in-memory outbox claims. */
const longestWaitingFirst = (a: typeof MessageRow.Type, b: typeof MessageRow.Type): number =>
  a.due_at - b.due_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

const orUnavailable = outage(
  (message) => new OutboxUnavailable({ message }),
  "a stored outbox message could not be read"
)

/**
 * The outbox in PostgreSQL. A claim locks the longest-waiting due messages with `FOR UPDATE
 * SKIP LOCKED` and moves their `available_at` to the end of the lease in the same statement, so
 * concurrent claims never share a message and an unanswered one comes back. Delivered rows are
 * kept with `delivered_at`, so an id enqueued again is still a duplicate.
 */
export const makePgOutbox = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const enqueue = Effect.fnUntraced(function*(message: Omit<OutboxMessage, "attempts">) {
    // `?? null`: a payload of `undefined` is stored as JSON null rather than failing the insert.
    const payload = JSON.stringify(message.payload) ?? "null"
    const created = yield* sql`
      INSERT INTO outbox (id, project_id, topic, payload, available_at, attempts)
      VALUES (${message.id}, ${message.projectId}, ${message.topic}, ${payload}::jsonb, ${message.availableAt}, 0)
      ON CONFLICT (id) DO NOTHING
      RETURNING id`
    return created.length > 0 ? "created" as const : "exists" as const
  }, orUnavailable)

  const claim = Effect.fnUntraced(
    function*(options: { readonly now: number; readonly limit: number; readonly leaseMs: number }) {
      const { leaseMs, now } = options
      const limit = Number.isFinite(options.limit) ? Math.min(Math.max(0, Math.floor(options.limit)), 1_000_000_000) : 0
      if (limit === 0) return []
      const rows = yield* decodeMessages(
        yield* sql`
          WITH due AS MATERIALIZED (
            SELECT id, available_at FROM outbox
            WHERE delivered_at IS NULL AND available_at <= ${now}
            ORDER BY available_at, id
            LIMIT ${limit}
            FOR UPDATE SKIP LOCKED
          )
          UPDATE outbox AS message
          SET attempts = message.attempts + 1, available_at = ${now + leaseMs}
          FROM due
          WHERE message.id = due.id
          RETURNING message.id, message.project_id, message.topic, message.payload, message.available_at,
            message.attempts, due.available_at AS due_at`
      )
      // RETURNING keeps no order: sort as the claim selected, by when each was due.
      return [...rows].sort(longestWaitingFirst).map((row): OutboxMessage => ({
        id: row.id,
        projectId: row.project_id,
        topic: row.topic,
        payload: row.payload,
        availableAt: row.available_at,
        attempts: row.attempts
      }))
    },
    orUnavailable
  )

  const complete = Effect.fnUntraced(function*(id: MessageId) {
    const now = yield* Clock.currentTimeMillis
    yield* sql`UPDATE outbox SET delivered_at = ${now} WHERE id = ${id} AND delivered_at IS NULL`
  }, orUnavailable)

  const retry = Effect.fnUntraced(function*(id: MessageId, error: string, availableAt: number) {
    yield* sql`
      UPDATE outbox SET available_at = ${availableAt}, last_error = ${error}
      WHERE id = ${id} AND delivered_at IS NULL`
  }, orUnavailable)

  return Outbox.of({ enqueue, claim, complete, retry })
})

export const PgOutboxLive = Layer.effect(Outbox, makePgOutbox)
