/** Billing events in the inbox, for operators: the dead ones listed, and put back in the queue. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { BillingEvent, BillingEventStatus, EventId } from "@tollgate/core"
import { Schema } from "effect"
import { AdminAuthentication } from "../Authentication.js"
import { Limit } from "../Params.js"
import { ConflictProblem, NotFoundProblem, ServiceUnavailableProblem } from "../Problems.js"

export const BillingEventParams = Schema.Struct({
  status: BillingEventStatus.annotations({ description: "Which events: `dead` for those waiting for an operator" }),
  limit: Schema.optional(Limit)
})

/** An inbox event as operators see it (the payload documented as any JSON). */
export const BillingEventView = Schema.Struct({
  ...BillingEvent.fields,
  payload: Schema.Unknown.annotations({
    jsonSchema: {
      type: ["object", "array", "string", "number", "boolean", "null"],
      description: "The provider's event as received"
    }
  })
}).annotations({ identifier: "BillingEvent" })

export const BillingEventList = Schema.Struct({
  data: Schema.Array(BillingEventView).annotations({ description: "Oldest first (provider time, then arrival)" })
}).annotations({ identifier: "BillingEventList" })

const BillingEventIdPath = Schema.Struct({
  // the router matches path parameters of at most 100 characters
  id: EventId.pipe(Schema.maxLength(100)).annotations({ description: "The provider's event id" })
})

export class AdminBillingEventsApi extends HttpApiGroup.make("adminBillingEvents")
  .add(
    HttpApiEndpoint.get("list", "/billing-events")
      .setUrlParams(BillingEventParams)
      .addSuccess(BillingEventList)
      .annotate(OpenApi.Summary, "Billing events by status")
      .annotate(
        OpenApi.Description,
        "The provider events in the billing inbox with one status, oldest first. A `dead` event failed every " +
          "attempt the worker allows (`WORKER_INBOX_MAX_ATTEMPTS`); `lastError` says why. It is not applied until " +
          "requeued."
      )
  )
  .add(
    HttpApiEndpoint.post("retry", "/billing-events/:id/retry")
      .setPath(BillingEventIdPath)
      .addSuccess(BillingEventView)
      .addError(NotFoundProblem)
      .addError(ConflictProblem)
      .annotate(OpenApi.Summary, "Requeue a dead billing event")
      .annotate(
        OpenApi.Description,
        "Puts a dead event back in the queue with a fresh count of attempts; the worker applies it at its next " +
          "poll, under the same idempotency keys, so nothing it already applied is applied twice. An event that is " +
          "not dead is `not_dead` (409)."
      )
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({
    title: "Admin: billing events",
    description: "Provider events the worker gave up on, and their retry"
  }))
{}
