/** The caller's subscription: a checkout to subscribe to a plan, and the provider's billing portal. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { PlanId, UrlProtocol } from "@tollgate/core"
import { Schema } from "effect"
import { ApiKeyAuthentication } from "../Authentication.js"
import { OptionalIdempotencyKey } from "../Params.js"
import { BadGatewayProblem, BadRequestProblem, ServiceUnavailableProblem } from "../Problems.js"

const isHttpUrl = UrlProtocol.isHttpUrl

export const SubscriptionRequest = Schema.Struct({
  planId: PlanId.annotations({ description: "A public plan of the catalog", examples: ["pro" as PlanId] })
}).annotations({ identifier: "SubscriptionRequest" })

export const SubscriptionSession = Schema.Struct({
  sessionId: Schema.String,
  url: Schema.String.annotations({
    description: "Where the customer subscribes; the plan changes with the provider's subscription events"
  })
}).annotations({ identifier: "SubscriptionSession" })

export const BillingPortalRequest = Schema.Struct({
  returnUrl: Schema.String.pipe(
    Schema.maxLength(2_000),
    Schema.filter(isHttpUrl, { message: () => "Expected an http:// or https:// URL" })
  ).annotations({
    description: "Where the portal sends the customer back",
    examples: ["https://example.com/account"]
  })
}).annotations({ identifier: "BillingPortalRequest" })

export const BillingPortalSession = Schema.Struct({
  url: Schema.String.annotations({ description: "The provider's portal for this project's billing account" })
}).annotations({ identifier: "BillingPortalSession" })

export class SubscriptionApi extends HttpApiGroup.make("subscription")
  .add(
    HttpApiEndpoint.post("subscribe", "/subscription")
      .setHeaders(OptionalIdempotencyKey)
      .setPayload(SubscriptionRequest)
      .addSuccess(SubscriptionSession, { status: 201 })
      .addError(BadRequestProblem)
      .addError(BadGatewayProblem)
      .annotate(OpenApi.Summary, "Start a subscription checkout")
      .annotate(
        OpenApi.Description,
        "Opens a subscription checkout for a public plan with the payment provider. The plan changes only when " +
          "the provider reports the subscription, never by this call. Send an `Idempotency-Key` to retry safely. " +
          "502 `not_supported` when the provider sells no subscriptions."
      )
  )
  .add(
    HttpApiEndpoint.post("billingPortal", "/billing-portal")
      .setPayload(BillingPortalRequest)
      .addSuccess(BillingPortalSession)
      .addError(BadGatewayProblem)
      .annotate(OpenApi.Summary, "Open the billing portal")
      .annotate(
        OpenApi.Description,
        "A session of the payment provider's customer portal, where the customer manages the subscription and " +
          "payment methods. 502 `payment_provider_error` when the project has no billing account yet."
      )
  )
  .addError(ServiceUnavailableProblem)
  .middleware(ApiKeyAuthentication)
  .prefix("/v1")
  .annotateContext(OpenApi.annotations({
    title: "Subscription",
    description: "The calling project's subscription (API key authentication)"
  }))
{}
