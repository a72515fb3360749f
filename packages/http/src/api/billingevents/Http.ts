import { HttpApiBuilder } from "@effect/platform"
import { BillingInbox } from "@tollgate/core"
import { Effect, Option } from "effect"
import { ManagementApi } from "../Api.js"
import { DEFAULT_LIMIT } from "../Params.js"
import { Conflict, notFound, orUnavailable } from "../Problems.js"

export const AdminBillingEventsLive = HttpApiBuilder.group(
  ManagementApi,
  "adminBillingEvents",
  (handlers) =>
    Effect.gen(function*() {
      const inbox = yield* BillingInbox
      return handlers
        .handle("list", ({ urlParams }) =>
          inbox.list({ status: urlParams.status, limit: urlParams.limit ?? DEFAULT_LIMIT }).pipe(
            Effect.map((data) => ({ data })),
            orUnavailable("billing_inbox")
          ))
        .handle("retry", ({ path }) =>
          Effect.gen(function*() {
            const requeued = yield* inbox.requeue(path.id).pipe(orUnavailable("billing_inbox"))
            if (Option.isSome(requeued)) {
              yield* Effect.logInfo("dead billing event requeued by an operator", path.id)
              return requeued.value
            }
            const existing = yield* inbox.get(path.id).pipe(orUnavailable("billing_inbox"))
            if (Option.isNone(existing)) {
              return yield* notFound("not_found", `No billing event ${path.id}`)
            }
            return yield* new Conflict({
              code: "not_dead",
              detail: `Billing event ${path.id} is ${existing.value.status}, not dead`
            })
          }))
    })
)
