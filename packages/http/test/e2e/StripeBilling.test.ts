/**
 * Production billing end to end over real HTTP: the gateway with the Stripe payment provider (the
 * SDK pointed at a local Stripe-compatible server), Stripe webhooks verified on the raw body, and
 * the worker translating Stripe's events. A top-up's credits arrive only from the signed
 * `checkout.session.completed`, once however often it is delivered; a refund claws back its share.
 */
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { makeStripePaymentProvider } from "@tollgate/adapters/stripe/index"
import type { ProjectId } from "@tollgate/core"
import { KeyIssuer, Ledger, PaymentProvider, seedDemoCatalog } from "@tollgate/core"
import { EventTranslator, WorkerLive } from "@tollgate/worker"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import type { StripeServer } from "../../../adapters/test/support/StripeServer.js"
import { startStripeServer } from "../../../adapters/test/support/StripeServer.js"
import { AdminToken } from "../../src/api/AdminToken.js"
import { BillingSettings } from "../../src/api/BillingSettings.js"
import { ManagementApiRoutes } from "../../src/api/ManagementApi.js"
import { WebhookSecrets } from "../../src/api/WebhookSecrets.js"
import { gatewayServer, serverUrl, UseCasesLive } from "../../src/GatewayServer.js"
import { CheckoutReturnRoutes } from "../../src/sandbox/CheckoutReturnPages.js"
import { memoryStack } from "../../src/Stack.js"

const WEBHOOK_SECRET = "whsec_stripe_billing_test"

describe("Stripe billing through the gateway and the worker", () => {
  let stripe: StripeServer
  let runtime: ManagedRuntime.ManagedRuntime<any, any>
  let base = ""
  let key = ""
  const project = "demo-pro" as ProjectId
  const available = () =>
    runtime.runPromise(Effect.map(Effect.flatMap(Ledger, (l) => l.balance(project)), (b) => b.available))
  const until = async (done: () => Promise<boolean>) => {
    const deadline = Date.now() + 10_000
    while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  }
  const deliver = (signed: { payload: string; signature: string }) =>
    fetch(`${base}/webhooks/stripe`, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": signed.signature },
      body: signed.payload
    })

  beforeAll(async () => {
    stripe = await startStripeServer()
    const provider = Layer.effect(
      PaymentProvider,
      makeStripePaymentProvider({
        client: stripe.client(),
        successUrl: "http://127.0.0.1/billing/checkout/success",
        cancelUrl: "http://127.0.0.1/billing/checkout/cancelled",
        currency: "usd"
      })
    )
    runtime = ManagedRuntime.make(
      gatewayServer(Layer.merge(ManagementApiRoutes, CheckoutReturnRoutes), { port: 0, host: "127.0.0.1" }).pipe(
        Layer.provide(Layer.mergeAll(
          AdminToken.layer(Redacted.make("admin-token-for-the-stripe-test")),
          WebhookSecrets.layer({
            stripe: Option.some(Redacted.make(WEBHOOK_SECRET)),
            sandbox: Redacted.make("unused")
          }),
          BillingSettings.layer()
        )),
        Layer.provideMerge(WorkerLive.pipe(Layer.provideMerge(UseCasesLive))),
        Layer.provideMerge(EventTranslator.Stripe.pipe(Layer.provideMerge(provider))),
        Layer.provideMerge(memoryStack)
      )
    )
    base = serverUrl((await runtime.runPromise(HttpServer.HttpServer)).address)
    key = await runtime.runPromise(Effect.gen(function*() {
      yield* seedDemoCatalog("http://127.0.0.1:9", Date.now())
      return (yield* (yield* KeyIssuer).issue(project, "live")).secret
    }))
  })
  afterAll(async () => {
    await runtime?.dispose()
    await stripe?.close()
  })

  it("a top-up is credited from the signed webhook alone, once; a partial refund claws back its share", async () => {
    const started = await fetch(`${base}/v1/topups`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ credits: 1_000 })
    })
    assert.strictEqual(started.status, 201)
    const { sessionId } = await started.json() as { sessionId: string }
    const session = stripe.checkoutSession(sessionId)!
    assert.strictEqual(session["client_reference_id"], project)
    assert.deepInclude(session["metadata"] as object, { project_id: project, credits: "1000" })
    // starting a checkout grants nothing
    assert.strictEqual(await available(), 0)

    const paid = stripe.completeCheckout(sessionId)
    const completed = stripe.signedEvent("checkout.session.completed", paid.session, WEBHOOK_SECRET)
    const forged = await deliver({
      payload: completed.payload,
      signature: completed.signature.replace(
        /v1=([0-9a-f]+)/,
        (_, hex: string) => `v1=${hex.split("").map((c) => (c === "0" ? "1" : "0")).join("")}`
      )
    })
    assert.strictEqual(forged.status, 400)
    for (let i = 0; i < 3; i++) assert.strictEqual((await deliver(completed)).status, 200)
    // the same payment reported by its intent too: still one grant
    assert.strictEqual(
      (await deliver(stripe.signedEvent("payment_intent.succeeded", paid.paymentIntent, WEBHOOK_SECRET))).status,
      200
    )
    await until(async () => (await available()) >= 1_000)
    assert.strictEqual(await available(), 1_000)

    const chargeId = paid.charge["id"] as string
    const refund = stripe.createRefund(chargeId, { amount: 250 })
    // the charge as Stripe sends it in `charge.refunded`: cumulative amount and its refunds
    const refunded = {
      ...paid.charge,
      amount_refunded: 250,
      refunds: { object: "list", data: [refund], has_more: false }
    }
    assert.strictEqual((await deliver(stripe.signedEvent("charge.refunded", refunded, WEBHOOK_SECRET))).status, 200)
    await until(async () => (await available()) < 1_000)
    // a quarter of the payment refunded: a quarter of its credits taken back
    assert.strictEqual(await available(), 750)
    await new Promise((r) => setTimeout(r, 1_200))
    assert.strictEqual(await available(), 750)
    const trial = await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.trialBalance))
    assert.strictEqual([...trial.values()].reduce((a, b) => a + b, 0n), 0n)
  })

  it("a refund whose charge has no metadata and a dispute naming its charge by id: the charge is retrieved, the credits move once", async () => {
    const start = await available()
    // two payments of 20.00 for 1000 credits each, whose metadata is on their payment intents only
    const paidFor = { project_id: project, credits: "1000" }
    const refundedCharge = stripe.createCharge({ amount: 2_000, metadata: paidFor, copyMetadataToCharge: false })
    const disputedCharge = stripe.createCharge({ amount: 2_000, metadata: paidFor, copyMetadataToCharge: false })

    const refund = stripe.createRefund(refundedCharge["id"] as string, { amount: 500 })
    const refunded = stripe.signedEvent("charge.refunded", {
      ...refundedCharge,
      amount_refunded: 500,
      refunds: { object: "list", data: [refund], has_more: false }
    }, WEBHOOK_SECRET)
    // Stripe sends `charge` and `payment_intent` as bare ids; half of the payment disputed
    const dispute = { ...stripe.createDispute(disputedCharge["id"] as string), amount: 1_000 }
    const disputed = stripe.signedEvent("charge.dispute.created", dispute, WEBHOOK_SECRET)
    for (const signed of [refunded, disputed, refunded, disputed]) {
      assert.strictEqual((await deliver(signed)).status, 200)
    }
    // refund: the purchase (1000) granted, a quarter (250) taken back; dispute: 1000 granted, half taken back
    await until(async () => (await available()) >= start + 1_250)
    assert.strictEqual(await available(), start + 1_250)
    await new Promise((r) => setTimeout(r, 1_200))
    assert.strictEqual(await available(), start + 1_250)
    const retrieved = stripe.requests().filter((r) => r.method === "GET" && r.path.startsWith("/v1/charges/"))
    assert.sameMembers([...new Set(retrieved.map((r) => r.path))], [
      `/v1/charges/${refundedCharge["id"]}`,
      `/v1/charges/${disputedCharge["id"]}`
    ])
    const trial = await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.trialBalance))
    assert.strictEqual([...trial.values()].reduce((a, b) => a + b, 0n), 0n)
  })
})
