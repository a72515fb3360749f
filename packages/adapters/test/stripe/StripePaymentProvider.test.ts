import { assert, describe, it } from "@effect/vitest"
import type { EpochMillis, OffSessionCharge, TopUpCheckout } from "@tollgate/core"
import { PaymentProvider } from "@tollgate/core"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import Stripe from "stripe"
import { makeStripePaymentProvider, StripePaymentProviderLive } from "../../src/stripe/StripePaymentProvider.js"
import { cr, projectId, unique } from "../contracts/fixtures.js"
import type { StripeServer } from "../support/StripeServer.js"
import { StripeServerScoped } from "../support/StripeServer.js"

const checkout = (fields: Partial<TopUpCheckout> = {}): TopUpCheckout => ({
  projectId: projectId(),
  credits: cr(5_000),
  amountCents: 1_000,
  idempotencyKey: unique("topup"),
  saveCard: true,
  ...fields
})

const charge = (fields: Partial<OffSessionCharge> = {}): OffSessionCharge => ({
  projectId: projectId(),
  credits: cr(5_000),
  amountCents: 1_000,
  idempotencyKey: unique("auto"),
  ...fields
})

const provider = (server: StripeServer, options: { readonly apiKey?: string; readonly pageSize?: number } = {}) =>
  makeStripePaymentProvider({
    client: server.client(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
    successUrl: "https://tollgate.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}",
    cancelUrl: "https://tollgate.example/billing/checkout/cancelled",
    currency: "usd",
    timeoutMs: 5_000,
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize })
  })

const setup = Effect.gen(function*() {
  const server = yield* StripeServerScoped()
  return { server, stripe: yield* provider(server) }
})

/** A project whose card was saved by a paid checkout; returns its Stripe customer. */
const withSavedCard = (server: StripeServer, stripe: PaymentProvider["Type"], project: TopUpCheckout["projectId"]) =>
  Effect.gen(function*() {
    const { sessionId } = yield* stripe.createTopUpCheckout(checkout({ projectId: project }))
    return server.completeCheckout(sessionId).session["customer"] as string
  })

describe("StripePaymentProvider", () => {
  it.scopedLive("is named stripe", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* setup).stripe.name, "stripe")
    }))

  it.scopedLive("a checkout carries the project, the credits and the card-saving choice", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const request = checkout({ credits: cr(2_500), amountCents: 1_250 })
      const { sessionId, url } = yield* stripe.createTopUpCheckout(request)
      assert.match(sessionId, /^cs_test_/)
      assert.strictEqual(url, `https://checkout.stripe.com/c/pay/${sessionId}`)
      const session = server.checkoutSession(sessionId)!
      const [customer] = server.customers()
      assert.deepStrictEqual(customer!["metadata"], { project_id: request.projectId })
      assert.deepStrictEqual(
        [session["mode"], session["customer"], session["client_reference_id"], session["metadata"]],
        ["payment", customer!["id"], request.projectId, { project_id: request.projectId, credits: "2500" }]
      )
      assert.deepStrictEqual([session["amount_total"], session["currency"]], [1_250, "usd"])
      assert.strictEqual(
        session["success_url"],
        "https://tollgate.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}"
      )
      const paid = server.completeCheckout(sessionId)
      assert.deepStrictEqual(paid.paymentIntent["metadata"], { project_id: request.projectId, credits: "2500" })
      assert.strictEqual(paid.paymentIntent["setup_future_usage"], "off_session")

      const once = yield* stripe.createTopUpCheckout(checkout({ projectId: request.projectId, saveCard: false }))
      const notSaved = server.completeCheckout(once.sessionId)
      assert.strictEqual(notSaved.paymentIntent["setup_future_usage"], null)
      assert.strictEqual(notSaved.session["customer"], customer!["id"])
      assert.strictEqual(server.customers().length, 1)
      const creates = server.requests().filter((r) => r.method === "POST" && r.path === "/v1/checkout/sessions")
      assert.deepStrictEqual(creates.map((r) => r.idempotencyKey), [
        `checkout:${request.idempotencyKey}`,
        creates[1]!.idempotencyKey
      ])
    }))

  it.scopedLive("one customer per project, even when checkouts race, in one gateway or two", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const other = yield* provider(server)
      const p = projectId()
      yield* Effect.all(
        [
          ...Array.from({ length: 4 }, () => stripe.createTopUpCheckout(checkout({ projectId: p }))),
          ...Array.from({ length: 4 }, () => other.createTopUpCheckout(checkout({ projectId: p })))
        ],
        { concurrency: "unbounded" }
      )
      const q = projectId()
      yield* stripe.createTopUpCheckout(checkout({ projectId: q }))
      // a third gateway, started later, finds the customer instead of creating one
      yield* (yield* provider(server)).createTopUpCheckout(checkout({ projectId: q }))
      const owners = server.customers().map((c) => (c["metadata"] as Record<string, string>)["project_id"])
      assert.deepStrictEqual(owners.sort(), [p, q].sort())
      const creates = server.requests().filter((r) => r.method === "POST" && r.path === "/v1/customers")
      assert.isTrue(creates.every((r) => r.idempotencyKey === `customer:${p}` || r.idempotencyKey === `customer:${q}`))
    }))

  it.scopedLive("the same idempotency key returns the same session; a different request under it is refused", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const request = checkout()
      const first = yield* stripe.createTopUpCheckout(request)
      assert.deepStrictEqual(yield* stripe.createTopUpCheckout({ ...request }), first)
      const refused = yield* Effect.flip(stripe.createTopUpCheckout({ ...request, amountCents: 2_000 }))
      assert.strictEqual(refused._tag, "PaymentProviderError")
      assert.include(refused.message, "idempotency_error")
      const sessions = server.requests().filter((r) => r.method === "POST" && r.path === "/v1/checkout/sessions")
      assert.strictEqual(sessions.length, 3)
      assert.isDefined(server.checkoutSession(first.sessionId))
    }))

  it.scopedLive("bad requests fail before Stripe is called", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const errors = yield* Effect.all([
        Effect.flip(stripe.createTopUpCheckout(checkout({ amountCents: 0 }))),
        Effect.flip(stripe.createTopUpCheckout(checkout({ credits: cr(0) }))),
        Effect.flip(stripe.chargeOffSession(charge({ idempotencyKey: "" })))
      ])
      assert.isTrue(errors.every((e) => e._tag === "PaymentProviderError"))
      assert.strictEqual(server.requests().length, 0)
    }))

  it.scopedLive("an off-session charge uses the saved card and succeeds once per idempotency key", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const p = projectId()
      const customer = yield* withSavedCard(server, stripe, p)
      const request = charge({ projectId: p, amountCents: 2_000 })
      const outcome = yield* stripe.chargeOffSession(request)
      assert.strictEqual(outcome.status, "succeeded")
      assert.match(outcome.paymentId ?? "", /^pi_/)
      assert.deepStrictEqual(yield* stripe.chargeOffSession({ ...request }), outcome)
      const charges = yield* stripe.listPayments!({ from: 0 as EpochMillis, to: (Date.now() + 5_000) as EpochMillis })
      const auto = charges.filter((c) => c.paymentId === outcome.paymentId)
      assert.deepStrictEqual(auto.map((c) => [c.projectId, c.credits, c.amountCents, c.status]), [
        [p, 5_000, 2_000, "succeeded"]
      ])
      const intents = server.requests().filter((r) => r.method === "POST" && r.path === "/v1/payment_intents")
      assert.deepStrictEqual(intents.map((r) => r.idempotencyKey), [
        `charge:${request.idempotencyKey}`,
        `charge:${request.idempotencyKey}`
      ])
      const refused = yield* Effect.flip(stripe.chargeOffSession({ ...request, amountCents: 3_000 }))
      assert.strictEqual(refused._tag, "PaymentProviderError")
      assert.isString(customer)
    }))

  it.scopedLive("a card that needs its customer gives requires_customer, with the reason", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const p = projectId()
      const customer = yield* withSavedCard(server, stripe, p)
      server.failNextOffSession(customer, "authentication_required")
      const request = charge({ projectId: p })
      const sca = yield* stripe.chargeOffSession(request)
      assert.strictEqual(sca.status, "requires_customer")
      assert.match(sca.paymentId ?? "", /^pi_/)
      assert.strictEqual(sca.status === "requires_customer" ? sca.reason : "", "authentication_required")
      // the replay gets Stripe's first answer, not a new attempt
      assert.deepStrictEqual(yield* stripe.chargeOffSession({ ...request }), sca)
      server.failNextOffSession(customer, "card_declined")
      const declined = yield* stripe.chargeOffSession(charge({ projectId: p }))
      assert.deepStrictEqual([declined.status, declined.status === "requires_customer" && declined.reason], [
        "requires_customer",
        "card_declined"
      ])
      assert.strictEqual((yield* stripe.chargeOffSession(charge({ projectId: p }))).status, "succeeded")
    }))

  it.scopedLive("without a customer or a saved card, an off-session charge needs the customer", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      assert.deepStrictEqual(yield* stripe.chargeOffSession(charge()), {
        status: "requires_customer",
        paymentId: undefined,
        reason: "no_customer"
      })
      const p = projectId()
      const { sessionId } = yield* stripe.createTopUpCheckout(checkout({ projectId: p, saveCard: false }))
      server.completeCheckout(sessionId)
      assert.deepStrictEqual(yield* stripe.chargeOffSession(charge({ projectId: p })), {
        status: "requires_customer",
        paymentId: undefined,
        reason: "no_saved_payment_method"
      })
      assert.isFalse(server.requests().some((r) => r.path === "/v1/payment_intents"))
    }))

  it.scopedLive("payments, refunds and disputes are listed across pages, within the window", () =>
    Effect.gen(function*() {
      const server = yield* StripeServerScoped()
      const stripe = yield* provider(server, { pageSize: 2 })
      const p = projectId()
      const t0 = 1_700_000_000
      const inWindow = Array.from({ length: 5 }, (_, i) =>
        server.createCharge({
          amount: 100 * (i + 1),
          metadata: { project_id: p, credits: String(500 * (i + 1)) },
          created: t0 + i
        }))
      server.createCharge({ amount: 999, metadata: { project_id: p, credits: "1" }, created: t0 + 10 })
      server.createCharge({ amount: 999, created: t0 - 1 })
      const stranger = server.createCharge({ amount: 50, metadata: { credits: "lots" }, created: t0 + 2 })
      const window = { from: (t0 * 1000) as EpochMillis, to: ((t0 + 10) * 1000) as EpochMillis }

      const payments = yield* stripe.listPayments!(window)
      assert.strictEqual(payments.length, 6)
      assert.deepStrictEqual(
        new Set(payments.map((r) => r.id)),
        new Set([...inWindow, stranger].map((c) => c["id"] as string))
      )
      const first = payments.find((r) => r.id === inWindow[0]!["id"])!
      assert.deepStrictEqual(first, {
        id: inWindow[0]!["id"] as string,
        projectId: p,
        amountCents: 100,
        credits: cr(500),
        createdAt: (t0 * 1000) as EpochMillis,
        status: "succeeded",
        paymentId: inWindow[0]!["payment_intent"] as string
      })
      const unknown = payments.find((r) => r.id === stranger["id"])!
      assert.deepStrictEqual([unknown.projectId, unknown.credits], [undefined, undefined])
      const pages = server.requests().filter((r) => r.path === "/v1/charges")
      assert.strictEqual(pages.length, 3)

      const refunded = inWindow[1]!
      const refunds = [
        server.createRefund(refunded["id"] as string, { amount: 50, created: t0 + 3 }),
        server.createRefund(refunded["id"] as string, { amount: 25, created: t0 + 4 }),
        server.createRefund(inWindow[2]!["id"] as string, { created: t0 + 5 })
      ]
      server.createRefund(refunded["id"] as string, { amount: 10, created: t0 + 20 })
      const listedRefunds = yield* stripe.listRefunds!(window)
      assert.deepStrictEqual(
        listedRefunds.map((r) => [r.id, r.projectId, r.credits, r.amountCents, r.paymentId, r.status]).sort(),
        refunds.map((r, i) => [
          r["id"],
          p,
          i < 2 ? 1_000 : 1_500,
          i === 0 ? 50 : i === 1 ? 25 : 300,
          r["payment_intent"],
          "succeeded"
        ]).sort()
      )

      const dispute = server.createDispute(inWindow[4]!["id"] as string, { status: "lost", created: t0 + 9 })
      const listedDisputes = yield* stripe.listDisputes!(window)
      assert.deepStrictEqual(
        listedDisputes.map((d) => [d.id, d.projectId, d.credits, d.amountCents, d.paymentId, d.status]),
        [[dispute["id"], p, 2_500, 500, inWindow[4]!["payment_intent"], "lost"]]
      )
      assert.deepStrictEqual(yield* stripe.listDisputes!({ from: 0 as EpochMillis, to: window.from }), [])
    }))

  it.scopedLive("a bad API key is a PaymentProviderError that never repeats the key", () =>
    Effect.gen(function*() {
      const server = yield* StripeServerScoped()
      const apiKey = "sk_test_thisIsNotTheRightKey0123456789"
      const stripe = yield* provider(server, { apiKey })
      const errors = yield* Effect.all([
        Effect.flip(stripe.createTopUpCheckout(checkout())),
        Effect.flip(stripe.chargeOffSession(charge())),
        Effect.flip(stripe.listPayments!({ from: 0 as EpochMillis, to: 1_000 as EpochMillis }))
      ])
      for (const error of errors) {
        assert.strictEqual(error._tag, "PaymentProviderError")
        assert.include(error.message, "HTTP 401")
        assert.notInclude(error.message, apiKey)
        assert.notInclude(error.message, "thisIsNotTheRightKey")
        assert.notInclude(JSON.stringify(error), "thisIsNotTheRightKey")
      }
    }))

  it.scopedLive("a Stripe server that does not answer in time is a PaymentProviderError", () =>
    Effect.gen(function*() {
      const silent = Http.createServer(() => {})
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void silent.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => (silent.closeAllConnections(), silent.close()))
      )
      const port = (silent.address() as AddressInfo).port
      const stripe = yield* makeStripePaymentProvider({
        // accepts and never answers: each attempt times out, retried twice, then reported
        client: new Stripe("sk_test_unreachable", { host: "127.0.0.1", port, protocol: "http" }),
        successUrl: "https://tollgate.example/ok",
        cancelUrl: "https://tollgate.example/cancel",
        currency: "usd",
        timeoutMs: 300
      })
      const started = Date.now()
      const error = yield* Effect.flip(stripe.createTopUpCheckout(checkout()))
      assert.strictEqual(error._tag, "PaymentProviderError")
      assert.isBelow(Date.now() - started, 10_000)
      assert.notInclude(error.message, "sk_test_unreachable")
    }), 20_000)

  it.scopedLive("retrieveCharge reads what a charge paid for from the charge, else its expanded payment intent", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const project = projectId()
      const metadata = { project_id: project, credits: "1000" }
      const own = server.createCharge({ amount: 2_000, metadata })
      const onIntent = server.createCharge({ amount: 3_000, metadata, copyMetadataToCharge: false })
      const silent = server.createCharge({ amount: 500 })
      assert.deepStrictEqual(
        yield* stripe.retrieveCharge!(own["id"] as string),
        Option.some({
          id: own["id"] as string,
          amountCents: 2_000,
          paymentId: own["payment_intent"] as string,
          projectId: project,
          credits: cr(1_000)
        })
      )
      assert.deepStrictEqual(onIntent["metadata"], {})
      assert.deepStrictEqual(
        yield* stripe.retrieveCharge!(onIntent["id"] as string),
        Option.some({
          id: onIntent["id"] as string,
          amountCents: 3_000,
          paymentId: onIntent["payment_intent"] as string,
          projectId: project,
          credits: cr(1_000)
        })
      )
      const unsaid = Option.getOrThrow(yield* stripe.retrieveCharge!(silent["id"] as string))
      assert.deepStrictEqual([unsaid.projectId, unsaid.credits], [undefined, undefined])
      const retrievals = server.requests().filter((r) => r.method === "GET" && r.path.startsWith("/v1/charges/"))
      assert.strictEqual(retrievals.length, 3)
    }))

  it.scopedLive("retrieveCharge: an unknown charge is none; a refused key is a PaymentProviderError", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      assert.isTrue(Option.isNone(yield* stripe.retrieveCharge!("ch_nowhere")))
      const charge = server.createCharge({ amount: 500 })
      const badKey = yield* provider(server, { apiKey: "sk_test_wrongwrongwrong" })
      const error = yield* Effect.flip(badKey.retrieveCharge!(charge["id"] as string))
      assert.strictEqual(error._tag, "PaymentProviderError")
      assert.notInclude(error.message, "sk_test_wrongwrongwrong")
    }))

  it.scopedLive("signed webhook events from the test server verify with the SDK", () =>
    Effect.gen(function*() {
      const { server, stripe } = yield* setup
      const { sessionId } = yield* stripe.createTopUpCheckout(checkout())
      const { session } = server.completeCheckout(sessionId)
      const secret = "whsec_test_secret"
      const { event, payload, signature } = server.signedEvent("checkout.session.completed", session, secret)
      const verified = server.client().webhooks.constructEvent(payload, signature, secret)
      assert.strictEqual(verified.id, event["id"])
      assert.strictEqual(verified.type, "checkout.session.completed")
      assert.throws(() => server.client().webhooks.constructEvent(payload, signature, "whsec_other"))
    }))
})

/** The environment `env`, read as `ConfigProvider.fromEnv` reads the process's (`_` between path parts). */
const withEnv = (env: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))

describe("StripePaymentProviderLive", () => {
  it.scopedLive("reads STRIPE_* and TOLLGATE_PUBLIC_URL, and can point at a Stripe-compatible server", () =>
    Effect.gen(function*() {
      const server = yield* StripeServerScoped()
      const request = checkout()
      const { sessionId } = yield* Effect.flatMap(PaymentProvider, (p) => p.createTopUpCheckout(request)).pipe(
        Effect.provide(StripePaymentProviderLive.pipe(Layer.provide(withEnv({
          STRIPE_SECRET_KEY: server.apiKey,
          STRIPE_API_HOST: "127.0.0.1",
          STRIPE_API_PORT: String(server.port),
          STRIPE_API_PROTOCOL: "http",
          STRIPE_CURRENCY: "eur",
          TOLLGATE_PUBLIC_URL: "https://gw.example/"
        }))))
      )
      const session = server.checkoutSession(sessionId)!
      assert.strictEqual(session["currency"], "eur")
      assert.strictEqual(
        session["success_url"],
        "https://gw.example/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}"
      )
      assert.strictEqual(session["cancel_url"], "https://gw.example/billing/checkout/cancelled")
    }))

  it.effect("a missing or malformed setting fails at start naming the variable, never echoing the key", () =>
    Effect.gen(function*() {
      const start = (env: Record<string, string>) =>
        Effect.flip(Layer.build(StripePaymentProviderLive.pipe(Layer.provide(withEnv(env))))).pipe(
          Effect.scoped,
          Effect.map(String)
        )
      assert.match(yield* start({}), /STRIPE\.SECRET_KEY/)
      const malformed = yield* start({ STRIPE_SECRET_KEY: "pk_live_publishableKey123" })
      assert.match(malformed, /STRIPE\.SECRET_KEY/)
      assert.notInclude(malformed, "publishableKey123")
      assert.match(yield* start({ STRIPE_SECRET_KEY: "sk_test_abc", STRIPE_CURRENCY: "USD" }), /STRIPE\.CURRENCY/)
      assert.match(yield* start({ STRIPE_SECRET_KEY: "sk_test_abc", STRIPE_API_PORT: "http" }), /STRIPE\.API_PORT/)
      assert.match(yield* start({ STRIPE_SECRET_KEY: "sk_test_abc", TOLLGATE_PUBLIC_URL: "gw" }), /TOLLGATE_PUBLIC_URL/)
    }))
})

describe("StripeServer", () => {
  it.scopedLive("speaks Stripe's errors, retrievals and billing portal sessions through the SDK", () =>
    Effect.gen(function*() {
      const server = yield* StripeServerScoped()
      const client = server.client()
      const customer = yield* Effect.promise(() => client.customers.create({ metadata: { project_id: "prj_1" } }))
      const portal = yield* Effect.promise(() =>
        client.billingPortal.sessions.create({ customer: customer.id, return_url: "https://gw.example/" })
      )
      assert.deepStrictEqual([portal.object, portal.customer, portal.return_url], [
        "billing_portal.session",
        customer.id,
        "https://gw.example/"
      ])
      const paid = server.createCharge({ amount: 700, customer: customer.id })
      const intent = yield* Effect.promise(() => client.paymentIntents.retrieve(paid["payment_intent"] as string))
      assert.deepStrictEqual([intent.status, intent.amount, intent.latest_charge], ["succeeded", 700, paid["id"]])
      const missing = yield* Effect.promise(() => client.checkout.sessions.retrieve("cs_test_nope").catch((e) => e))
      assert.instanceOf(missing, Stripe.errors.StripeInvalidRequestError)
      assert.deepStrictEqual([missing.statusCode, missing.code], [404, "resource_missing"])
      const invalid = yield* Effect.promise(() =>
        client.paymentIntents.create({ amount: 0, currency: "usd" }).catch((e) => e)
      )
      assert.deepStrictEqual([invalid.statusCode, invalid.param], [400, "amount"])
      const unauthorized = yield* Effect.promise(() =>
        server.client({ apiKey: "sk_test_wrong" }).customers.retrieve(customer.id).catch((e) => e)
      )
      assert.instanceOf(unauthorized, Stripe.errors.StripeAuthenticationError)
    }))
})
