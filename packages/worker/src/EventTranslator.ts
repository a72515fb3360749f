import type { TranslateEvent } from "@tollgate/core"
import { neutralActions, PaymentProvider, TranslationUnavailable } from "@tollgate/core"
import { Context, Effect, Layer, Option } from "effect"
import { sandboxTranslate } from "./SandboxTranslate.js"
import { chargeToRetrieve, stripeTranslate, withCharge } from "./StripeTranslate.js"

/** What a stored provider event means for the ledger, in order; empty when the event moves no credit. */
export type Translate = TranslateEvent

/**
 * Stripe's events, with the charge retrieved from the provider when a refund or dispute names it
 * without saying what it paid for (Stripe sends `dispute.charge` and `charge.payment_intent` as bare
 * ids). An outage fails the translation, so the event is retried; a charge the provider does not
 * know leaves the event as it is (moving nothing) and says so.
 */
export const stripeTranslateWith = (provider: PaymentProvider["Type"]): Translate => (event) => {
  const chargeId = chargeToRetrieve(event)
  const retrieve = provider.retrieveCharge
  if (Option.isNone(chargeId) || retrieve === undefined) return stripeTranslate(event)
  return retrieve(chargeId.value).pipe(
    Effect.mapError((e) => new TranslationUnavailable({ message: e.message })),
    Effect.flatMap(Option.match({
      onNone: () =>
        Effect.as(
          Effect.logWarning(
            `billing event ${event.id} names charge ${chargeId.value}, which the provider does not know`
          ),
          []
        ),
      onSome: (charge) => Effect.sync(() => stripeTranslate(withCharge(event, charge)))
    })),
    Effect.withSpan("EventTranslator.retrieveCharge")
  )
}

/**
 * How the worker reads provider events. There is deliberately no implicit default: an event the
 * translator does not understand is acknowledged and never applied, so a process must say which
 * provider's events it reads.
 */
export class EventTranslator extends Context.Tag("@tollgate/worker/EventTranslator")<EventTranslator, {
  readonly translate: Translate
}>() {
  /** Core's provider-neutral `{ action: … }` payloads only. */
  static readonly Default = Layer.succeed(EventTranslator, { translate: neutralActions })
  /** The embedded sandbox's Stripe-shaped checkouts, and neutral payloads. */
  static readonly Sandbox = Layer.succeed(EventTranslator, { translate: sandboxTranslate })
  /**
   * Stripe's events for provider "stripe" (asking the PaymentProvider for charges that thin
   * events only name); neutral payloads from any other provider.
   */
  static readonly Stripe = Layer.effect(
    EventTranslator,
    Effect.map(PaymentProvider, (provider) => {
      const stripe = stripeTranslateWith(provider)
      return { translate: (event) => event.provider === "stripe" ? stripe(event) : neutralActions(event) }
    })
  )
}
