/** The caller's auto top-up settings and the endpoint its notifications are POSTed to. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { AutoTopUpSettings, Credits, UrlProtocol } from "@tollgate/core"
import { Schema } from "effect"
import { ApiKeyAuthentication } from "../Authentication.js"
import { BadRequestProblem, ServiceUnavailableProblem } from "../Problems.js"

export const AutoTopUpRequest = AutoTopUpSettings.annotations({
  identifier: "AutoTopUpRequest",
  description: "Below `thresholdCredits` available, buy `amountCredits` with the saved card, at most " +
    "`monthlyCapCredits` per calendar month (UTC)",
  examples: [{
    enabled: true,
    thresholdCredits: 100 as Credits,
    amountCredits: 1_000 as Credits,
    monthlyCapCredits: 5_000 as Credits
  }]
})

export const AutoTopUpView = Schema.Struct({
  enabled: Schema.Boolean,
  thresholdCredits: Credits,
  amountCredits: Credits,
  monthlyCapCredits: Credits,
  state: Schema.Literal("idle", "charging", "needs_customer").annotations({
    description: "idle; charging (a charge is in flight); needs_customer (the card needs its owner: " +
      "a top-up prompt with a Checkout link was sent)"
  }),
  lastResult: Schema.optional(Schema.Literal("succeeded", "needs_customer", "failed")),
  month: Schema.String.annotations({ description: "The current calendar month, UTC (YYYY-MM)" }),
  monthToDateCredits: Credits.annotations({ description: "Credits charged (or in flight) this month" }),
  notificationUrl: Schema.optional(Schema.String)
}).annotations({ identifier: "AutoTopUp" })

const isHttpUrl = UrlProtocol.isHttpUrl

export const NotificationEndpointRequest = Schema.Struct({
  url: Schema.NonEmptyTrimmedString.pipe(
    Schema.maxLength(2_000),
    Schema.filter(isHttpUrl, { message: () => "Expected an http:// or https:// URL" })
  ).annotations({ description: "Where notifications are POSTed", examples: ["https://example.com/tollgate"] })
}).annotations({ identifier: "NotificationEndpointRequest" })

export const NotificationEndpointView = Schema.Struct({
  url: Schema.String,
  secret: Schema.String.annotations({
    description: "Signs every notification (`Tollgate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">`). " +
      "Shown once: store it now; setting the endpoint again makes a new one"
  })
}).annotations({ identifier: "NotificationEndpoint" })

export class AutoTopUpApi extends HttpApiGroup.make("autoTopUp")
  .add(
    HttpApiEndpoint.get("get", "/auto-top-up")
      .addSuccess(AutoTopUpView)
      .annotate(OpenApi.Summary, "My auto top-up settings, state and month-to-date charges")
  )
  .add(
    HttpApiEndpoint.put("put", "/auto-top-up")
      .setPayload(AutoTopUpRequest)
      .addSuccess(AutoTopUpView)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Set my auto top-up settings")
      .annotate(
        OpenApi.Description,
        "When the available balance falls below the threshold, the saved card is charged off-session for the " +
          "amount (credits arrive with the provider's event), never beyond the monthly cap; when the card needs " +
          "its owner, a `topup.required` notification carries a Checkout link instead."
      )
  )
  .add(
    HttpApiEndpoint.put("notifications", "/notifications")
      .setPayload(NotificationEndpointRequest)
      .addSuccess(NotificationEndpointView)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Set my notification endpoint (the signing secret is returned once)")
      .annotate(
        OpenApi.Description,
        "Notifications (`balance.low`, `topup.required`, `topup.failed`) are POSTed as JSON and retried with " +
          "exponential backoff until the endpoint answers 2xx, at most `WORKER_OUTBOX_MAX_ATTEMPTS` times " +
          "(default 10). Each is signed: `Tollgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">`."
      )
  )
  .addError(ServiceUnavailableProblem)
  .middleware(ApiKeyAuthentication)
  .prefix("/v1")
  .annotateContext(OpenApi.annotations({
    title: "Auto top-up",
    description: "Auto top-up and notifications of the calling project (API key authentication)"
  }))
{}
