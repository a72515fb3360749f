import { SqlClient } from "@effect/sql"
import type { EventId, IncomingEvent } from "@tollgate/core"
import {
  BillingEvent,
  BillingEventStatus,
  BillingInbox,
  BillingInboxUnavailable,
  ClaimedBillingEvent
} from "@tollgate/core"
import { Effect, Layer, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; the table bounds every value to a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

/** A row of `billing_inbox` (the lease columns, `claimable_at` and `lease_token`, are not part of the event). */
const EventRow = Schema.Struct({
  id: Schema.String,
  provider: Schema.Literal("stripe", "sandbox"),
  type: Schema.String,
  created_at: Int8,
  payload: Schema.Unknown,
  received_at: Int8,
  status: BillingEventStatus,
  attempts: Schema.Number,
  processed_at: Schema.NullOr(Int8),
  last_error: Schema.NullOr(Schema.String)
})

const EventFromRow = Schema.transform(EventRow, BillingEvent, {
  strict: true,
  decode: (row) => ({
    id: row.id,
    provider: row.provider,
    type: row.type,
    createdAt: row.created_at,
    payload: row.payload,
    receivedAt: row.received_at,
    status: row.status,
    attempts: row.attempts,
    ...(row.processed_at === null ? {} : { processedAt: row.processed_at }),
    ...(row.last_error === null ? {} : { lastError: row.last_error })
  }),
  encode: (event) => ({
    id: event.id,
    provider: event.provider,
    type: event.type,
    created_at: event.createdAt,
    payload: event.payload,
    received_at: event.receivedAt,
    status: event.status,
    attempts: event.attempts,
    processed_at: event.processedAt ?? null,
    last_error: event.lastError ?? null
  })
})

const decodeEvents = Schema.decodeUnknown(Schema.Array(EventFromRow))

/** Oldest provider time first (the order the provider meant), then arrival, then id. */
const oldestFirst = (a: BillingEvent, b: BillingEvent): number =>
  a.createdAt - b.createdAt || a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

const orUnavailable = outage(
  (message) => new BillingInboxUnavailable({ message }),
  "a stored billing event could not be read"
)

/**
 * The billing inbox in PostgreSQL. `store` relies on the primary key (`ON CONFLICT DO NOTHING`),
 * so concurrent deliveries of one event store it once. A claim is one statement: it locks the
 * oldest due events with `FOR UPDATE SKIP LOCKED` and leases them, so concurrent workers on
 * other connections skip what another claim holds and never receive the same event, and a
 * lease that ran out makes the event due again.
 */
export const makePgBillingInbox = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const store = Effect.fnUntraced(function*(incoming: IncomingEvent, receivedAt: number) {
    // `?? null`: a payload of `undefined` is stored as JSON null rather than failing the insert.
    const payload = JSON.stringify(incoming.payload) ?? "null"
    const stored = yield* sql`
      INSERT INTO billing_inbox (id, provider, type, created_at, payload, received_at, status, attempts)
      VALUES (
        ${incoming.id}, ${incoming.provider}, ${incoming.type}, ${incoming.createdAt}, ${payload}::jsonb,
        ${receivedAt}, 'pending', 0
      )
      ON CONFLICT (id) DO NOTHING
      RETURNING id`
    return stored.length > 0 ? "stored" as const : "duplicate" as const
  }, orUnavailable)

  const get = Effect.fnUntraced(function*(id: EventId) {
    const events = yield* decodeEvents(yield* sql`SELECT * FROM billing_inbox WHERE id = ${id}`)
    return Option.fromNullable(events[0])
  }, orUnavailable)

  /** Each claim is a new lease with its own token, the same for every event it takes. */
  const leased = (events: ReadonlyArray<BillingEvent>, leaseToken: string) =>
    events.map((event) => new ClaimedBillingEvent({ ...event, leaseToken }))

  const claim = Effect.fnUntraced(
    function*(options: { readonly now: number; readonly limit: number; readonly leaseMs: number }) {
      const { leaseMs, now } = options
      const limit = Number.isFinite(options.limit) ? Math.min(Math.max(0, Math.floor(options.limit)), 1_000_000_000) : 0
      if (limit === 0) return []
      const leaseToken = randomUUID()
      const claimed = yield* decodeEvents(
        yield* sql`
          WITH due AS MATERIALIZED (
            SELECT id FROM billing_inbox
            WHERE status = 'pending' AND (claimable_at IS NULL OR claimable_at <= ${now})
            ORDER BY created_at, received_at, id
            LIMIT ${limit}
            FOR UPDATE SKIP LOCKED
          )
          UPDATE billing_inbox AS event
          SET attempts = event.attempts + 1, claimable_at = ${now + leaseMs}, lease_token = ${leaseToken}
          FROM due
          WHERE event.id = due.id
          RETURNING event.*`
      )
      // RETURNING keeps no order.
      return leased([...claimed].sort(oldestFirst), leaseToken)
    },
    orUnavailable
  )

  const claimEvent = Effect.fnUntraced(
    function*(id: EventId, options: { readonly now: number; readonly leaseMs: number }) {
      const { leaseMs, now } = options
      const leaseToken = randomUUID()
      const claimed = yield* decodeEvents(
        yield* sql`
          UPDATE billing_inbox
          SET attempts = attempts + 1, claimable_at = ${now + leaseMs}, lease_token = ${leaseToken}
          WHERE id = ${id} AND status = 'pending' AND (claimable_at IS NULL OR claimable_at <= ${now})
          RETURNING *`
      )
      return Option.fromNullable(leased(claimed, leaseToken)[0])
    },
    orUnavailable
  )

  const complete = Effect.fnUntraced(function*(id: EventId, leaseToken: string, at: number) {
    const done = yield* sql`
      UPDATE billing_inbox SET status = 'processed', processed_at = ${at}, claimable_at = NULL, lease_token = NULL
      WHERE id = ${id} AND status = 'pending' AND lease_token = ${leaseToken}
      RETURNING id`
    return done.length > 0
  }, orUnavailable)

  const fail = Effect.fnUntraced(
    function*(id: EventId, leaseToken: string, error: string, retryAt: number) {
      const failed = yield* sql`
        UPDATE billing_inbox SET last_error = ${error}, claimable_at = ${retryAt}, lease_token = NULL
        WHERE id = ${id} AND status = 'pending' AND lease_token = ${leaseToken}
        RETURNING id`
      return failed.length > 0
    },
    orUnavailable
  )

  const deadLetter = Effect.fnUntraced(
    function*(id: EventId, leaseToken: string, error: string) {
      const parked = yield* sql`
        UPDATE billing_inbox SET status = 'dead', last_error = ${error}, claimable_at = NULL, lease_token = NULL
        WHERE id = ${id} AND status = 'pending' AND lease_token = ${leaseToken}
        RETURNING id`
      return parked.length > 0
    },
    orUnavailable
  )

  const list = Effect.fnUntraced(
    function*(options: { readonly status: BillingEventStatus; readonly limit: number }) {
      const limit = Number.isFinite(options.limit) ? Math.min(Math.max(0, Math.floor(options.limit)), 1_000_000_000) : 0
      if (limit === 0) return []
      return yield* decodeEvents(
        yield* sql`
          SELECT * FROM billing_inbox WHERE status = ${options.status}
          ORDER BY created_at, received_at, id
          LIMIT ${limit}`
      )
    },
    orUnavailable
  )

  const requeue = Effect.fnUntraced(function*(id: EventId) {
    const requeued = yield* decodeEvents(
      yield* sql`
        UPDATE billing_inbox SET status = 'pending', attempts = 0, claimable_at = NULL, lease_token = NULL
        WHERE id = ${id} AND status = 'dead'
        RETURNING *`
    )
    return Option.fromNullable(requeued[0])
  }, orUnavailable)

  return BillingInbox.of({ store, get, claim, claimEvent, complete, fail, deadLetter, list, requeue })
})

export const PgBillingInboxLive = Layer.effect(BillingInbox, makePgBillingInbox)
