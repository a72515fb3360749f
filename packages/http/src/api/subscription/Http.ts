import { HttpApiBuilder } from "@effect/platform"
import { Catalog, Ids, PaymentProvider } from "@tollgate/core"
import { Effect, Option } from "effect"
import { createHash } from "node:crypto"
import { ManagementApi } from "../Api.js"
import { CurrentPrincipal } from "../Authentication.js"
import { BadGateway, invalidRequest, orUnavailable } from "../Problems.js"

/** Per project, bounded in length whatever the client sent: tenants choose keys independently. */
const providerIdempotencyKey = (projectId: string, key: string) =>
  `subscription_${createHash("sha256").update(`${projectId}\n${key}`).digest("hex")}`

const notSupported = (what: string) =>
  new BadGateway({ code: "not_supported", detail: `The payment provider does not offer ${what}` })

export const SubscriptionLive = HttpApiBuilder.group(
  ManagementApi,
  "subscription",
  (handlers) =>
    Effect.gen(function*() {
      const catalog = yield* Catalog
      const payments = yield* PaymentProvider
      const ids = yield* Ids

      return handlers
        .handle("subscribe", ({ headers, payload }) =>
          Effect.gen(function*() {
            const { project } = yield* CurrentPrincipal
            const plan = yield* catalog.getPlan(payload.planId).pipe(orUnavailable("catalog"))
            if (Option.isNone(plan) || !plan.value.public) {
              return yield* invalidRequest(`No public plan has id ${payload.planId}`)
            }
            const createSubscriptionCheckout = payments.createSubscriptionCheckout
            if (createSubscriptionCheckout === undefined) return yield* notSupported("subscriptions")
            const key = headers["idempotency-key"] ?? (yield* ids.next("subscription"))
            return yield* createSubscriptionCheckout({
              projectId: project.id,
              planId: plan.value.id,
              idempotencyKey: providerIdempotencyKey(project.id, key)
            }).pipe(
              Effect.catchTag("PaymentProviderError", (e) =>
                Effect.zipRight(
                  Effect.logWarning("subscription checkout failed", e.message),
                  Effect.fail(
                    new BadGateway({
                      code: "payment_provider_error",
                      detail: "The payment provider did not open a subscription checkout; retry with the same " +
                        "Idempotency-Key"
                    })
                  )
                ))
            )
          }))
        .handle("billingPortal", ({ payload }) =>
          Effect.gen(function*() {
            const { project } = yield* CurrentPrincipal
            const createBillingPortal = payments.createBillingPortal
            if (createBillingPortal === undefined) return yield* notSupported("a billing portal")
            return yield* createBillingPortal({ projectId: project.id, returnUrl: payload.returnUrl }).pipe(
              Effect.catchTag("PaymentProviderError", (e) =>
                Effect.zipRight(
                  Effect.logWarning("billing portal failed", e.message),
                  Effect.fail(
                    new BadGateway({
                      code: "payment_provider_error",
                      detail: "The payment provider did not open a billing portal (a project has a billing account " +
                        "after its first checkout)"
                    })
                  )
                ))
            )
          }))
    })
)
