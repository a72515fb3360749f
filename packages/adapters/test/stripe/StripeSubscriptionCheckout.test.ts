import { assert, describe, it } from "@effect/vitest"
import type { PaymentProvider, PlanId } from "@tollgate/core"
import { Effect } from "effect"
import { makeStripePaymentProvider } from "../../src/stripe/StripePaymentProvider.js"
import { cr, projectId, unique } from "../contracts/fixtures.js"
import type { StripeServer } from "../support/StripeServer.js"
import { StripeServerScoped } from "../support/StripeServer.js"

const setup = Effect.gen(function*() {
  const server = yield* StripeServerScoped()
  const stripe = yield* makeStripePaymentProvider({
    client: server.client(),
    successUrl: "https://tollgate.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}",
    cancelUrl: "https://tollgate.example/billing/checkout/cancelled",
    currency: "usd",
    timeoutMs: 5_000
  })
  return { server, stripe }
})

const subscribe = (stripe: PaymentProvider["Type"], fields: { projectId?: string; planId: string; key?: string }) =>
  stripe.createSubscriptionCheckout!({
    projectId: (fields.projectId ?? projectId()) as ReturnType<typeof projectId>,
    planId: fields.planId as PlanId,
    idempotencyKey: fields.key ?? unique("sub")
  })

const sessionsCreated = (server: StripeServer) =>
  server.requests().filter((r) => r.method === "POST" && r.path === "/v1/checkout/sessions")

describe("StripePaymentProvider subscriptions", () => {
  it.scopedLive("a subscription checkout uses the plan's Price, found by its lookup key", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      server.createPrice({ lookupKey: "basic", unitAmount: 900 })
      server.createPrice({ lookupKey: "pro", unitAmount: 2_900, active: false })
      const pro = server.createPrice({ lookupKey: "pro", unitAmount: 4_900 })
      server.createPrice({ unitAmount: 100 })
      const project = projectId()
      const key = unique("sub")
      const { sessionId, url } = yield* subscribe(stripe, { projectId: project, planId: "pro", key })
      assert.match(sessionId, /^cs_test_/)
      assert.strictEqual(url, `https://checkout.stripe.com/c/pay/${sessionId}`)
      const session = server.checkoutSession(sessionId)!
      const [customer] = server.customers()
      assert.deepStrictEqual(customer!["metadata"], { project_id: project })
      assert.deepStrictEqual(
        [session["mode"], session["customer"], session["client_reference_id"], session["amount_total"]],
        ["subscription", customer!["id"], project, 4_900]
      )
      assert.deepStrictEqual(session["line_items"], [{ price: pro["id"], quantity: 1 }])
      assert.deepStrictEqual(session["metadata"], { project_id: project, plan_id: "pro" })
      assert.deepStrictEqual(session["subscription_data"], { metadata: { project_id: project, plan_id: "pro" } })
      assert.strictEqual(
        session["success_url"],
        "https://tollgate.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}"
      )
      assert.strictEqual(session["cancel_url"], "https://tollgate.example/billing/checkout/cancelled")
      assert.strictEqual(sessionsCreated(server)[0]!.idempotencyKey, `subscription_checkout:${key}`)
      const lookup = server.requests().find((r) => r.path === "/v1/prices")
      assert.isDefined(lookup)
      // a retry under the same key is the same session
      const again = yield* subscribe(stripe, { projectId: project, planId: "pro", key })
      assert.strictEqual(again.sessionId, sessionId)
      assert.strictEqual(server.customers().length, 1)
    }))

  it.scopedLive("the project's existing customer is reused", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      server.createPrice({ lookupKey: "basic" })
      const project = projectId()
      yield* stripe.createTopUpCheckout({
        projectId: project,
        credits: cr(100),
        amountCents: 100,
        idempotencyKey: unique("topup"),
        saveCard: false
      })
      const { sessionId } = yield* subscribe(stripe, { projectId: project, planId: "basic" })
      assert.strictEqual(server.customers().length, 1)
      assert.strictEqual(server.checkoutSession(sessionId)!["customer"], server.customers()[0]!["id"])
    }))

  it.scopedLive("a plan without an active Price with its lookup key is refused, and no session opens", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      server.createPrice({ lookupKey: "basic" })
      server.createPrice({ lookupKey: "pro", active: false })
      for (const planId of ["pro", "enterprise"]) {
        const error = yield* Effect.flip(subscribe(stripe, { planId }))
        assert.strictEqual(error._tag, "PaymentProviderError")
        assert.include(error.message, `no Stripe price has lookup key ${planId}`)
      }
      assert.lengthOf(sessionsCreated(server), 0)
    }))

  it.scopedLive("the billing portal opens for a project's customer, and is refused without one", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      server.createPrice({ lookupKey: "basic" })
      const project = projectId()
      const none = yield* Effect.flip(
        stripe.createBillingPortal!({ projectId: project, returnUrl: "https://app.example/account" })
      )
      assert.strictEqual(none._tag, "PaymentProviderError")
      assert.include(none.message, "no billing account yet")
      assert.lengthOf(server.customers(), 0, "asking for a portal creates no customer")
      yield* subscribe(stripe, { projectId: project, planId: "basic" })
      const { url } = yield* stripe.createBillingPortal!({
        projectId: project,
        returnUrl: "https://app.example/account"
      })
      assert.match(url, /^https:\/\/billing\.stripe\.com\/p\/session\/bps_/)
      assert.isDefined(server.requests().find((r) => r.path === "/v1/billing_portal/sessions"))
    }))
})
