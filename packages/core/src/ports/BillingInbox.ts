import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { BillingEvent, BillingEventStatus, ClaimedBillingEvent } from "../domain/BillingEvent.js"
import type { EventId } from "../domain/Ids.js"

export class BillingInboxUnavailable extends Schema.TaggedError<BillingInboxUnavailable>()("BillingInboxUnavailable", {
  message: Schema.String
}) {}

export interface IncomingEvent {
  readonly id: EventId
  readonly provider: BillingEvent["provider"]
  readonly type: string
  readonly createdAt: number
  readonly payload: unknown
}

/**
 * Provider events, stored once by id. Workers claim pending events under a lease, so several
 * workers never apply the same event at the same time, and an event whose worker died is
 * claimed again once its lease ends. Each claim carries a new lease token: `complete` and `fail`
 * act only for the current lease and answer whether they did, so a worker whose lease ran out
 * cannot finish (or fail) an event another worker has claimed since.
 */
export class BillingInbox extends Context.Tag("@tollgate/core/BillingInbox")<BillingInbox, {
  readonly store: (
    event: IncomingEvent,
    receivedAt: number
  ) => Effect.Effect<"stored" | "duplicate", BillingInboxUnavailable>
  readonly get: (id: EventId) => Effect.Effect<Option.Option<BillingEvent>, BillingInboxUnavailable>
  readonly claim: (options: {
    readonly now: number
    readonly limit: number
    readonly leaseMs: number
  }) => Effect.Effect<ReadonlyArray<ClaimedBillingEvent>, BillingInboxUnavailable>
  /** Claims this one event if it is due (pending, and not leased or waiting for a retry). */
  readonly claimEvent: (id: EventId, options: {
    readonly now: number
    readonly leaseMs: number
  }) => Effect.Effect<Option.Option<ClaimedBillingEvent>, BillingInboxUnavailable>
  /** Marks the event processed; `false` (and nothing changed) unless `leaseToken` is its current lease. */
  readonly complete: (id: EventId, leaseToken: string, at: number) => Effect.Effect<boolean, BillingInboxUnavailable>
  /**
   * Records the failure, ends the lease and makes the event claimable again at `retryAt`; `false`
   * (and nothing changed) unless `leaseToken` is its current lease.
   */
  readonly fail: (
    id: EventId,
    leaseToken: string,
    error: string,
    retryAt: number
  ) => Effect.Effect<boolean, BillingInboxUnavailable>
  /**
   * Parks the event as `dead` with its last error: it is not claimed again until requeued.
   * `false` (and nothing changed) unless `leaseToken` is its current lease.
   */
  readonly deadLetter: (
    id: EventId,
    leaseToken: string,
    error: string
  ) => Effect.Effect<boolean, BillingInboxUnavailable>
  /** Events in one status, oldest first (created, received, id), at most `limit`. */
  readonly list: (options: {
    readonly status: BillingEventStatus
    readonly limit: number
  }) => Effect.Effect<ReadonlyArray<BillingEvent>, BillingInboxUnavailable>
  /**
   * Puts a dead event back in the queue: pending, due at once, with a fresh count of attempts
   * (its last error kept). None when there is no such dead event.
   */
  readonly requeue: (id: EventId) => Effect.Effect<Option.Option<BillingEvent>, BillingInboxUnavailable>
}>() {}
