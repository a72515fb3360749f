import type { IncomingEvent } from "@tollgate/core"
import { BillingAction, neutralActions } from "@tollgate/core"
import { Option, Schema } from "effect"

/**
 * The fields of a Stripe `checkout.session.completed` event the sandbox sends. Stripe puts
 * metadata values in strings, so `credits` is read as text or number and checked by
 * `BillingAction` (a positive whole number of credits).
 */
const CheckoutCompleted = Schema.Struct({
  data: Schema.Struct({
    object: Schema.Struct({
      id: Schema.NonEmptyString,
      client_reference_id: Schema.String,
      payment_status: Schema.String,
      payment_intent: Schema.optional(Schema.Unknown),
      metadata: Schema.Struct({ credits: Schema.Union(Schema.String, Schema.Number) })
    })
  })
})
const decodeCheckout = Schema.decodeUnknownOption(CheckoutCompleted)
const decodeAction = Schema.decodeUnknownOption(BillingAction)

/** The payment's id (Stripe gives the intent as an id, an expanded object or null); the session's id without one. */
const paymentIdOf = (intent: unknown, sessionId: string): string => {
  if (typeof intent === "string" && intent !== "") return intent
  if (typeof intent === "object" && intent !== null && "id" in intent && typeof intent.id === "string") {
    return intent.id
  }
  return sessionId
}

/**
 * Sandbox events: a paid `checkout.session.completed` buys `metadata.credits` for the project in
 * `client_reference_id`; anything else is read as a neutral `{ action: … }` payload. The payment
 * id is the ledger's idempotency key, so a checkout delivered twice (or as two events) grants once.
 */
export const sandboxTranslate = (event: IncomingEvent): ReadonlyArray<BillingAction> => {
  if (event.provider !== "sandbox" || event.type !== "checkout.session.completed") return neutralActions(event)
  return decodeCheckout(event.payload).pipe(
    Option.filter(({ data }) => data.object.payment_status === "paid"),
    Option.flatMap(({ data: { object } }) =>
      decodeAction({
        _tag: "CreditsPurchased",
        projectId: object.client_reference_id,
        credits: Number(object.metadata.credits),
        paymentId: paymentIdOf(object.payment_intent, object.id)
      })
    ),
    Option.match({ onNone: () => neutralActions(event), onSome: (action) => [action] })
  )
}
