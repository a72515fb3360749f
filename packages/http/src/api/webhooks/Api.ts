/**
 * Payment provider events. The body is read raw (signatures cover the exact bytes), verified,
 * and stored once by event id; processing happens later, in the worker.
 */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { BadRequestProblem, ServiceUnavailableProblem } from "../Problems.js"

export const SignatureHeader = Schema.Struct({
  "stripe-signature": Schema.optional(Schema.String.annotations({
    description: "Stripe's signature header: `t=<timestamp>,v1=<hmac>`"
  }))
})

export const WebhookReceipt = Schema.Struct({
  received: Schema.Literal(true),
  duplicate: Schema.Boolean.annotations({ description: "The event was already stored; it is not stored again" })
}).annotations({ identifier: "WebhookReceipt" })

const rawEventBody = {
  requestBody: {
    required: true,
    description: "The provider's event, byte-exact as signed",
    content: { "application/json": { schema: { type: "object" } } }
  }
}

export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("stripe", "/webhooks/stripe")
      .setHeaders(SignatureHeader)
      .addSuccess(WebhookReceipt)
      .annotate(OpenApi.Summary, "Stripe events")
      .annotate(OpenApi.Override, rawEventBody)
  )
  .add(
    HttpApiEndpoint.post("sandbox", "/webhooks/sandbox")
      .setHeaders(SignatureHeader)
      .addSuccess(WebhookReceipt)
      .annotate(OpenApi.Summary, "Sandbox provider events (signed like Stripe's, with the sandbox secret)")
      .annotate(OpenApi.Override, rawEventBody)
  )
  .addError(BadRequestProblem)
  .addError(ServiceUnavailableProblem)
  .annotateContext(OpenApi.annotations({
    title: "Webhooks",
    description: "Signed events from the payment provider (no API key; the signature authenticates)"
  }))
{}
