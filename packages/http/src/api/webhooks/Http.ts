import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { BillingInbox, EventId } from "@tollgate/core"
import { Clock, Effect, Option, Redacted, Schema } from "effect"
import Stripe from "stripe"
import { ManagementApi } from "../Api.js"
import { BadRequest, invalidRequest, orUnavailable, ServiceUnavailable } from "../Problems.js"
import { WebhookSecrets } from "../WebhookSecrets.js"

/** How old a signature may be, in seconds (Stripe's default): replays of old deliveries are refused. */
const TOLERANCE_SECONDS = 300

const decodeEventId = Schema.decodeUnknownOption(EventId)

const badSignature = (detail: string) => new BadRequest({ code: "invalid_signature", detail })

export const WebhooksLive = HttpApiBuilder.group(ManagementApi, "webhooks", (handlers) =>
  Effect.gen(function*() {
    const inbox = yield* BillingInbox
    const secrets = yield* WebhookSecrets

    /** Verifies the exact bytes received and stores the event once by id; nothing is stored unverified. */
    const receive = Effect.fn("Webhooks.receive")(function*(
      provider: "stripe" | "sandbox",
      secret: Redacted.Redacted<string>,
      signature: string | undefined
    ) {
      if (signature === undefined || signature.length === 0) {
        return yield* badSignature("The stripe-signature header is missing")
      }
      const request = yield* HttpServerRequest.HttpServerRequest
      const raw = yield* request.text.pipe(Effect.mapError(() => invalidRequest("The request body could not be read")))
      const now = yield* Clock.currentTimeMillis
      const event = yield* Effect.try({
        try: () =>
          Stripe.webhooks.constructEvent(raw, signature, Redacted.value(secret), TOLERANCE_SECONDS, undefined, now),
        catch: () => badSignature("The signature does not match the body, or is too old")
      })
      const id = decodeEventId(event.id)
      if (Option.isNone(id) || typeof event.type !== "string" || !Number.isSafeInteger(event.created)) {
        return yield* invalidRequest("The event has no usable id, type or creation time")
      }
      const stored = yield* inbox.store(
        { id: id.value, provider, type: event.type, createdAt: event.created * 1_000, payload: event },
        now
      ).pipe(orUnavailable("billing_inbox"))
      return { received: true as const, duplicate: stored === "duplicate" }
    })

    return handlers
      .handle("stripe", ({ headers }) =>
        Option.match(secrets.stripe, {
          onNone: () =>
            Effect.fail(
              new ServiceUnavailable({
                code: "webhook_not_configured",
                detail: "Stripe webhooks are not configured on this gateway (no signing secret)"
              })
            ),
          onSome: (secret) => receive("stripe", secret, headers["stripe-signature"])
        }))
      .handle("sandbox", ({ headers }) => receive("sandbox", secrets.sandbox, headers["stripe-signature"]))
  }))
