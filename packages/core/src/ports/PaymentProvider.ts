import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { Credits } from "../domain/Credits.js"
import type { ProjectId } from "../domain/Ids.js"

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

export interface OffSessionCharge {
  readonly projectId: ProjectId
  readonly credits: Credits
  readonly amountCents: number
  readonly idempotencyKey: string
}

export type ChargeOutcome =
  | { readonly status: "succeeded"; readonly paymentId: string }
  | { readonly status: "requires_customer"; readonly paymentId: string | undefined; readonly reason: string }

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
}>() {}
