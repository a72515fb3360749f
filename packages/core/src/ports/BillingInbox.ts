import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { BillingEvent } from "../domain/BillingEvent.js"
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
 * claimed again once its lease ends.
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
  }) => Effect.Effect<ReadonlyArray<BillingEvent>, BillingInboxUnavailable>
  readonly complete: (id: EventId, at: number) => Effect.Effect<void, BillingInboxUnavailable>
  /** Records the failure and makes the event claimable again at `retryAt`. */
  readonly fail: (id: EventId, error: string, retryAt: number) => Effect.Effect<void, BillingInboxUnavailable>
}>() {}
