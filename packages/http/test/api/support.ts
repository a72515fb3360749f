/**
 * The management API served over real HTTP on a test port, over every port in memory and the
 * sandbox payment provider, with the demo catalog seeded and a few keys issued.
 */
import { HttpClient, HttpClientRequest, HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import type { SandboxPaymentControl } from "@tollgate/adapters"
import { makeMemoryCatalog, MemoryStackLive, sandboxPaymentProviderLayer } from "@tollgate/adapters"
import type { Credits, IdempotencyKey, ProjectId } from "@tollgate/core"
import {
  Billing,
  Catalog,
  CatalogUnavailable,
  Gateway,
  KeyIssuer,
  Ledger,
  PaymentProvider,
  seedDemoCatalog
} from "@tollgate/core"
import { Clock, Context, Effect, Layer, Option, Redacted } from "effect"
import Stripe from "stripe"
import { AdminToken } from "../../src/api/AdminToken.js"
import { BillingSettings } from "../../src/api/BillingSettings.js"
import { ManagementApiRoutes } from "../../src/api/ManagementApi.js"
import { WebhookSecrets } from "../../src/api/WebhookSecrets.js"

export const ADMIN_TOKEN = "admin-token-for-tests-0123456789"
export const STRIPE_SECRET = "whsec_stripe_test_secret"
export const SANDBOX_SECRET = "whsec_sandbox_test_secret"
export const UPSTREAM = "http://127.0.0.1:9"

/** Keys issued at start: `basic` and `pro` for their demo projects, `contributor` for the dataset's owner. */
export interface FixturesShape {
  readonly basic: { readonly projectId: ProjectId; readonly secret: string; readonly keyId: string }
  readonly pro: { readonly projectId: ProjectId; readonly secret: string; readonly keyId: string }
  readonly contributor: { readonly projectId: ProjectId; readonly secret: string; readonly keyId: string }
}

export class Fixtures extends Context.Tag("test/Fixtures")<Fixtures, FixturesShape>() {}

const FixturesLive = Layer.effect(
  Fixtures,
  Effect.gen(function*() {
    yield* seedDemoCatalog(UPSTREAM, yield* Clock.currentTimeMillis)
    const issuer = yield* KeyIssuer
    const ledger = yield* Ledger
    const tenant = Effect.fn(function*(projectId: ProjectId, credits: number) {
      const { key, secret } = yield* issuer.issue(projectId, "test", { name: "fixture" })
      if (credits > 0) {
        yield* ledger.grant({
          idempotencyKey: `fixture:${projectId}` as IdempotencyKey,
          projectId,
          amount: credits as Credits,
          source: "purchase"
        })
      }
      return { projectId, secret, keyId: key.id as string }
    })
    return {
      basic: yield* tenant("demo-basic" as ProjectId, 1_000),
      pro: yield* tenant("demo-pro" as ProjectId, 0),
      contributor: yield* tenant("contributor-acme" as ProjectId, 0)
    }
  })
)

/** A catalog whose `listPlans` is down (everything else works): what readiness must notice. */
const CatalogListingDown = Layer.effect(
  Catalog,
  Effect.map(
    makeMemoryCatalog,
    (catalog) =>
      Catalog.of({ ...catalog, listPlans: Effect.fail(new CatalogUnavailable({ message: "connection refused" })) })
  )
)

/** The sandbox without its optional subscription methods: a provider that sells no subscriptions. */
const sandboxWithoutSubscriptions = Layer.effectContext(
  Effect.map(Effect.context<PaymentProvider | SandboxPaymentControl>(), (context) => {
    const { createBillingPortal: _portal, createSubscriptionCheckout: _checkout, ...provider } = Context.get(
      context,
      PaymentProvider
    )
    return Context.add(context, PaymentProvider, PaymentProvider.of(provider))
  })
).pipe(Layer.provide(sandboxPaymentProviderLayer()))

const useCases = (catalogDown: boolean, subscriptions: boolean) =>
  Layer.mergeAll(Gateway.Default, KeyIssuer.Default, Billing.Default).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        catalogDown ? Layer.merge(MemoryStackLive, CatalogListingDown) : MemoryStackLive,
        subscriptions ? sandboxPaymentProviderLayer() : sandboxWithoutSubscriptions
      )
    )
  )

/**
 * A fresh server and fresh stores; `stripe: false` leaves the Stripe webhook unconfigured,
 * `catalogDown: true` makes the catalog's listing fail, `subscriptions: false` takes the sandbox's
 * subscription checkout and billing portal away.
 */
export const makeTestServer = (
  options: { readonly stripe?: boolean; readonly catalogDown?: boolean; readonly subscriptions?: boolean } = {}
) =>
  HttpLayerRouter.serve(ManagementApiRoutes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(Layer.mergeAll(
      AdminToken.layer(Redacted.make(ADMIN_TOKEN)),
      WebhookSecrets.layer({
        stripe: options.stripe === false ? Option.none() : Option.some(Redacted.make(STRIPE_SECRET)),
        sandbox: Redacted.make(SANDBOX_SECRET)
      }),
      BillingSettings.layer({ creditPriceCents: 2, minTopUpCredits: 10, maxTopUpCredits: 100_000 })
    )),
    Layer.provideMerge(FixturesLive),
    Layer.provideMerge(useCases(options.catalogDown === true, options.subscriptions !== false)),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
  readonly body: any
}

export interface CallOptions {
  readonly bearer?: string
  readonly headers?: Record<string, string>
  readonly json?: unknown
  readonly text?: string
  /** Of `text`; default application/json. */
  readonly contentType?: string
}

/** One real HTTP call; transport failures are defects, every answer (any status) is a value. */
export const call = (method: "GET" | "POST" | "PUT" | "DELETE" | "PATCH", path: string, options: CallOptions = {}) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(path)
    if (options.bearer !== undefined) request = HttpClientRequest.bearerToken(request, options.bearer)
    if (options.headers !== undefined) request = HttpClientRequest.setHeaders(request, options.headers)
    if (options.json !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, options.json)
    if (options.text !== undefined) {
      request = HttpClientRequest.bodyText(request, options.text, options.contentType ?? "application/json")
    }
    const response = yield* client.execute(request)
    const text = yield* response.text
    let body: unknown = undefined
    try {
      body = text.length === 0 ? undefined : JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: response.status, headers: response.headers, text, body } as Answer
  }).pipe(Effect.orDie)

export const admin = (method: "GET" | "POST" | "PUT" | "DELETE", path: string, options: CallOptions = {}) =>
  call(method, path, { ...options, bearer: ADMIN_TOKEN })

/** A Stripe-signed delivery of `event`, as Stripe would send it. */
export const signed = (event: Record<string, unknown>, secret: string, timestamp?: number) => {
  const payload = JSON.stringify(event)
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(timestamp === undefined ? {} : { timestamp })
  })
  return { text: payload, headers: { "stripe-signature": header } }
}

export const stripeEvent = (id: string, type = "checkout.session.completed") => ({
  id,
  object: "event",
  type,
  created: 1_767_225_600,
  data: { object: { id: `cs_${id}`, object: "checkout.session" } }
})
