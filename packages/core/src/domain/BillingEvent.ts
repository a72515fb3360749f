import { Schema } from "effect"
import { EpochMillis } from "./Credits.js"
import { EventId } from "./Ids.js"

/**
 * `dead`: it failed the worker's allowed number of attempts and is parked with its last error;
 * it is not claimed again until an operator requeues it.
 */
export const BillingEventStatus = Schema.Literal("pending", "processed", "failed", "dead")
export type BillingEventStatus = typeof BillingEventStatus.Type

/** A payment provider's event, stored once by its id before anything is applied. */
export class BillingEvent extends Schema.Class<BillingEvent>("BillingEvent")({
  id: EventId,
  provider: Schema.Literal("stripe", "sandbox"),
  type: Schema.String,
  /** When the provider created the event; orders events of one object. */
  createdAt: EpochMillis,
  payload: Schema.Unknown,
  receivedAt: EpochMillis,
  status: BillingEventStatus,
  attempts: Schema.Int.pipe(Schema.nonNegative()),
  processedAt: Schema.optional(EpochMillis),
  lastError: Schema.optional(Schema.String)
}) {}

/**
 * A billing event as one claim leased it. `leaseToken` names that lease: only its holder may
 * complete or fail the event, so a worker whose lease ran out (and whose event another worker has
 * since claimed) changes nothing. `attempts` is this claim's attempt number.
 */
export class ClaimedBillingEvent extends BillingEvent.extend<ClaimedBillingEvent>("ClaimedBillingEvent")({
  leaseToken: Schema.NonEmptyString
}) {}
