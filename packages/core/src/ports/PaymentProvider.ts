import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { Credits, EpochMillis } from "../domain/Credits.js"
import type { PlanId, ProjectId } from "../domain/Ids.js"

export class PaymentProviderError extends Schema.TaggedError<PaymentProviderError>()("PaymentProviderError", {
  message: Schema.String
}) {}

export interface TopUpCheckout {
  readonly projectId: ProjectId
  readonly credits: Credits
  readonly amountCents: number
  readonly idempotencyKey: string
  /** Save the card for off-session top-ups. */
  readonly saveCard: boolean
}

/** A subscription to a plan, paid through the provider's own checkout. */
export interface SubscriptionCheckout {
  readonly projectId: ProjectId
  readonly planId: PlanId
  readonly idempotencyKey: string
}

/** Where the project's customer manages its subscription and payment methods. */
export interface BillingPortalRequest {
  readonly projectId: ProjectId
  /** Where the portal sends the customer back. */
  readonly returnUrl: string
}

export interface OffSessionCharge {
  readonly projectId: ProjectId
  readonly credits: Credits
  readonly amountCents: number
  readonly idempotencyKey: string
}

export type ChargeOutcome =
  | { readonly status: "succeeded"; readonly paymentId: string }
  | { readonly status: "requires_customer"; readonly paymentId: string | undefined; readonly reason: string }

/** A half-open time window `[from, to)`, in milliseconds since the Unix epoch. */
export interface ProviderWindow {
  readonly from: EpochMillis
  readonly to: EpochMillis
}

/**
 * A payment, refund or dispute as the provider records it, for reconciliation against the ledger.
 * `projectId` and `credits` are what the payment's metadata says (for a refund or dispute, the metadata
 * of the payment it is about; undefined when it says nothing usable); `amountCents` is this record's
 * own amount; `paymentId` names the payment it belongs to (for a payment, the payment itself).
 */
export interface ProviderRecord {
  readonly id: string
  readonly projectId: ProjectId | undefined
  readonly amountCents: number
  readonly credits: Credits | undefined
  readonly createdAt: EpochMillis
  /** The provider's own status word, e.g. "succeeded", "pending", "lost". */
  readonly status: string
  readonly paymentId: string
}

/**
 * A charge as the provider records it, for events that name a charge without saying what it paid
 * for. `projectId` and `credits` are what the charge's metadata says, or its payment's (undefined
 * when neither says anything usable); `paymentId` names the payment (the charge itself when none).
 */
export interface ProviderCharge {
  readonly id: string
  readonly amountCents: number
  readonly paymentId: string
  readonly projectId?: ProjectId | undefined
  readonly credits?: Credits | undefined
}

/**
 * Money comes in through the provider; credits arrive only from its events (BillingInbox),
 * never from these calls' answers.
 */
export class PaymentProvider extends Context.Tag("@tollgate/core/PaymentProvider")<PaymentProvider, {
  readonly name: "stripe" | "sandbox"
  readonly createTopUpCheckout: (
    request: TopUpCheckout
  ) => Effect.Effect<{ readonly sessionId: string; readonly url: string }, PaymentProviderError>
  readonly chargeOffSession: (request: OffSessionCharge) => Effect.Effect<ChargeOutcome, PaymentProviderError>
  /**
   * What the provider says was paid, refunded and disputed in a window, every page of it.
   * Optional to implement: a provider without them cannot be reconciled.
   */
  readonly listPayments?: (window: ProviderWindow) => Effect.Effect<ReadonlyArray<ProviderRecord>, PaymentProviderError>
  readonly listRefunds?: (window: ProviderWindow) => Effect.Effect<ReadonlyArray<ProviderRecord>, PaymentProviderError>
  readonly listDisputes?: (window: ProviderWindow) => Effect.Effect<ReadonlyArray<ProviderRecord>, PaymentProviderError>
  /**
   * One charge by id; none when the provider does not know it (an error is an outage). Optional:
   * without it, events that do not carry what their charge paid for move no credit.
   */
  readonly retrieveCharge?: (
    chargeId: string
  ) => Effect.Effect<Option.Option<ProviderCharge>, PaymentProviderError>
  /**
   * A checkout that subscribes the project to a plan; the plan changes only when the provider's
   * subscription events say so. Optional: a provider without it sells no subscriptions.
   */
  readonly createSubscriptionCheckout?: (
    request: SubscriptionCheckout
  ) => Effect.Effect<{ readonly sessionId: string; readonly url: string }, PaymentProviderError>
  /** The provider's customer portal for the project. Optional. */
  readonly createBillingPortal?: (
    request: BillingPortalRequest
  ) => Effect.Effect<{ readonly url: string }, PaymentProviderError>
}>() {}
