/**
 * A local stand-in for Stripe's REST API, just the part the Stripe adapter speaks, so the adapter
 * is tested through the real SDK without the network. Requests are form-encoded with Stripe's
 * bracket notation, need `Authorization: Bearer <key>`, and get Stripe's error shape and statuses;
 * POSTs honour Idempotency-Key the way Stripe does. Objects start from Stripe's own fixtures
 * (`test/stripe/fixtures.json`, from its `fixtures3.json`) with the fields that matter overridden.
 */
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import Stripe from "stripe"

type Json = Record<string, unknown>

// A subset of Stripe's fixtures3.json (stripe/openapi), the resources this server returns
const fixturesPath = new URL("../stripe/fixtures.json", import.meta.url)
const resources = (JSON.parse(readFileSync(fixturesPath, "utf8")) as { resources: Record<string, Json> }).resources
const fixture = (name: string): Json => structuredClone(resources[name]!)

/** Parses `a[b][0][c]=v` into nested objects; objects whose keys are all indices become arrays. */
export const parseForm = (body: string): Json => {
  const root: Json = {}
  for (const [key, value] of new URLSearchParams(body)) {
    const path = key.replace(/\]/g, "").split("[")
    let node: Record<string, unknown> = root
    path.forEach((segment, i) => {
      const name = segment === "" ? String(Object.keys(node).length) : segment
      if (i === path.length - 1) node[name] = value
      else node = (node[name] ??= {}) as Record<string, unknown>
    })
  }
  const arrays = (value: unknown): unknown => {
    if (typeof value !== "object" || value === null) return value
    const entries = Object.entries(value as Json).map(([k, v]) => [k, arrays(v)] as const)
    return entries.length > 0 && entries.every(([k]) => /^\d+$/.test(k))
      ? entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v)
      : Object.fromEntries(entries)
  }
  return arrays(root) as Json
}

/** Key order must not matter when comparing two requests under one idempotency key. */
const canonical = (value: unknown): string =>
  typeof value !== "object" || value === null
    ? JSON.stringify(value)
    : Array.isArray(value)
    ? `[${value.map(canonical).join(",")}]`
    : `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Json)[k])}`).join(",")}}`

class StripeFailure {
  constructor(readonly status: number, readonly error: Json) {}
}
const fail = (status: number, type: string, message: string, extra: Json = {}): never => {
  throw new StripeFailure(status, { type, message, ...extra })
}
const missing = (kind: string, id: string): never =>
  fail(404, "invalid_request_error", `No such ${kind}: '${id}'`, { code: "resource_missing", param: "id" })
const required = (params: Json, name: string): string => {
  const value = params[name]
  if (typeof value !== "string" || value === "") {
    return fail(400, "invalid_request_error", `Missing required param: ${name}.`, {
      code: "parameter_missing",
      param: name
    })
  }
  return value
}
const positiveInt = (params: Json, name: string): number => {
  const n = Number(required(params, name))
  if (!Number.isSafeInteger(n) || n <= 0) {
    fail(400, "invalid_request_error", `Invalid positive integer: ${name}`, {
      code: "parameter_invalid_integer",
      param: name
    })
  }
  return n
}
/** Numbers as the form encoding would carry them. */
const stringified = (object: Json): Json =>
  Object.fromEntries(Object.entries(object).map(([k, v]) => [k, typeof v === "number" ? String(v) : v]))
const stringMap = (value: unknown): Record<string, string> =>
  typeof value === "object" && value !== null ? { ...(value as Record<string, string>) } : {}

export type OffSessionFailure = "authentication_required" | "card_declined"

export interface StripeServer {
  readonly port: number
  readonly apiKey: string
  /** An SDK client pointed at this server (a different key makes every call fail with 401). */
  readonly client: (options?: { readonly apiKey?: string; readonly timeout?: number }) => Stripe
  /** The next confirmed off-session PaymentIntent for the customer fails with this card error. */
  readonly failNextOffSession: (customerId: string, code: OffSessionFailure) => void
  /** Pays an open checkout session: a succeeded PaymentIntent and charge, and the card saved when asked. */
  readonly completeCheckout: (
    sessionId: string,
    options?: { readonly created?: number }
  ) => { readonly session: Json; readonly paymentIntent: Json; readonly charge: Json }
  /** A succeeded payment (PaymentIntent and charge) created directly, at a chosen time. */
  readonly createCharge: (options: {
    readonly amount: number
    readonly metadata?: Record<string, string>
    readonly customer?: string
    readonly created?: number
    /** false: the metadata stays on the PaymentIntent only (as for charges made before it was set). */
    readonly copyMetadataToCharge?: boolean
  }) => Json
  readonly createRefund: (chargeId: string, options?: { readonly amount?: number; readonly created?: number }) => Json
  readonly createDispute: (chargeId: string, options?: { readonly status?: string; readonly created?: number }) => Json
  /** A Stripe event of the type for the object, and its `Stripe-Signature` header for the secret. */
  readonly signedEvent: (
    type: string,
    object: Json,
    secret: string
  ) => { readonly event: Json; readonly payload: string; readonly signature: string }
  /** A recurring Price (active unless said), optionally with a lookup key, as an operator makes one. */
  readonly createPrice: (options: {
    readonly lookupKey?: string
    readonly unitAmount?: number
    readonly active?: boolean
  }) => Json
  readonly customers: () => ReadonlyArray<Json>
  readonly checkoutSession: (id: string) => Json | undefined
  /** Every request seen, in order: method, path and idempotency key. */
  readonly requests: () => ReadonlyArray<{ method: string; path: string; idempotencyKey: string | undefined }>
  readonly close: () => Promise<void>
}

export const startStripeServer = async (options: { readonly apiKey?: string } = {}): Promise<StripeServer> => {
  const apiKey = options.apiKey ?? `sk_test_${randomId(24)}`
  const now = () => Math.floor(Date.now() / 1000)
  let sequence = 0
  const newId = (prefix: string) => `${prefix}_${(++sequence).toString(36).padStart(6, "0")}${randomId(14)}`

  const customers = new Map<string, Json>()
  const sessions = new Map<string, { session: Json; paymentIntentData: Json }>()
  const paymentIntents = new Map<string, Json>()
  const paymentMethods = new Map<string, Json>()
  const charges = new Map<string, Json>()
  const refunds = new Map<string, Json>()
  const disputes = new Map<string, Json>()
  const prices = new Map<string, Json>()
  const offSessionFailures = new Map<string, OffSessionFailure>()
  const idempotent = new Map<string, { fingerprint: string; status: number; body: string }>()
  const log: Array<{ method: string; path: string; idempotencyKey: string | undefined }> = []
  // Stripe orders lists newest first; equal timestamps by creation order
  const order = new WeakMap<Json, number>()
  const stamp = (object: Json): Json => (order.set(object, ++sequence), object)

  const makeCustomer = (params: Json): Json =>
    stamp({
      ...fixture("customer"),
      id: newId("cus"),
      created: now(),
      email: params["email"] ?? null,
      name: params["name"] ?? null,
      description: params["description"] ?? null,
      metadata: stringMap(params["metadata"]),
      invoice_settings: { ...(fixture("customer")["invoice_settings"] as Json), default_payment_method: null }
    })

  const makePaymentIntent = (fields: Json): Json =>
    stamp({
      ...fixture("payment_intent"),
      id: newId("pi"),
      client_secret: null,
      created: now(),
      amount_capturable: 0,
      amount_received: 0,
      last_payment_error: null,
      latest_charge: null,
      next_action: null,
      payment_method: null,
      setup_future_usage: null,
      ...fields
    })

  const makeCharge = (pi: Json, created: number): Json => {
    const charge = stamp({
      ...fixture("charge"),
      id: newId("ch"),
      amount: pi["amount"],
      amount_captured: pi["amount"],
      amount_refunded: 0,
      created,
      currency: pi["currency"],
      customer: pi["customer"] ?? null,
      // Stripe copies the PaymentIntent's metadata onto the charge it creates
      metadata: { ...(pi["metadata"] as Json) },
      paid: true,
      captured: true,
      refunded: false,
      disputed: false,
      payment_intent: pi["id"],
      payment_method: pi["payment_method"] ?? null,
      status: "succeeded",
      refunds: null
    })
    charges.set(charge["id"] as string, charge)
    Object.assign(pi, { status: "succeeded", amount_received: pi["amount"], latest_charge: charge["id"] })
    return charge
  }

  const saveCard = (customerId: string): Json => {
    const pm = stamp({ ...fixture("payment_method"), id: newId("pm"), customer: customerId, type: "card" })
    paymentMethods.set(pm["id"] as string, pm)
    return pm
  }

  const list = (url: URL, items: Iterable<Json>, expandable: Record<string, (id: string) => Json | undefined> = {}) => {
    const params = parseForm(url.search.slice(1))
    const created = stringMap(params["created"])
    const bound = (name: string) => created[name] === undefined ? undefined : Number(created[name])
    const [gte, gt, lte, lt] = [bound("gte"), bound("gt"), bound("lte"), bound("lt")]
    const limit = params["limit"] === undefined ? 10 : Number(params["limit"])
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      fail(400, "invalid_request_error", "Invalid integer: limit", {
        code: "parameter_invalid_integer",
        param: "limit"
      })
    }
    const all = [...items]
      .filter((o) => {
        const t = o["created"] as number
        return (gte === undefined || t >= gte) && (gt === undefined || t > gt) && (lte === undefined || t <= lte) &&
          (lt === undefined || t < lt)
      })
      .sort((a, b) => (b["created"] as number) - (a["created"] as number) || order.get(b)! - order.get(a)!)
    let start = 0
    if (typeof params["starting_after"] === "string") {
      const at = all.findIndex((o) => o["id"] === params["starting_after"])
      if (at < 0) missing("object", params["starting_after"])
      start = at + 1
    }
    const expand = Array.isArray(params["expand"]) ? (params["expand"] as Array<string>) : []
    const page = all.slice(start, start + limit).map((o) => {
      const copy = { ...o }
      for (const path of expand) {
        const field = path.replace(/^data\./, "")
        const lookup = expandable[field]
        if (lookup !== undefined && typeof copy[field] === "string") copy[field] = lookup(copy[field]) ?? copy[field]
      }
      return copy
    })
    return { object: "list", data: page, has_more: start + limit < all.length, url: url.pathname }
  }

  const confirmPaymentIntent = (pi: Json, offSession: boolean): Json => {
    const customer = pi["customer"] as string | null
    const failure = customer === null ? undefined : offSessionFailures.get(customer)
    if (offSession && failure !== undefined) {
      offSessionFailures.delete(customer!)
      const error = failure === "authentication_required"
        ? {
          code: "authentication_required",
          decline_code: "authentication_required",
          message: "Your card was declined. This transaction requires authentication."
        }
        : { code: "card_declined", decline_code: "generic_decline", message: "Your card was declined." }
      Object.assign(pi, {
        status: "requires_payment_method",
        last_payment_error: { ...error, type: "card_error" }
      })
      return fail(402, "card_error", error.message, { ...error, payment_intent: pi })
    }
    if (pi["payment_method"] === null) {
      return fail(
        400,
        "invalid_request_error",
        "You cannot confirm this PaymentIntent because it's missing a payment method.",
        { code: "payment_intent_unexpected_state", payment_intent: pi }
      )
    }
    makeCharge(pi, pi["created"] as number)
    return pi
  }

  const routes: Array<[string, RegExp, (match: RegExpMatchArray, params: Json, url: URL) => unknown]> = [
    ["POST", /^\/v1\/customers$/, (_, params) => {
      const customer = makeCustomer(params)
      customers.set(customer["id"] as string, customer)
      return customer
    }],
    ["GET", /^\/v1\/customers\/search$/, (_, __, url) => {
      const query = url.searchParams.get("query") ?? ""
      const clause = /^metadata\[['"]([^'"]+)['"]\]:['"]([^'"]*)['"]$/.exec(query.trim())
      if (clause === null) return fail(400, "invalid_request_error", "Unsupported search query", { param: "query" })
      const data = [...customers.values()].filter((c) => (c["metadata"] as Json)[clause[1]!] === clause[2])
      return { object: "search_result", data, has_more: false, next_page: null, url: url.pathname }
    }],
    ["GET", /^\/v1\/customers\/([^/]+)$/, ([, id]) => customers.get(id!) ?? missing("customer", id!)],
    ["GET", /^\/v1\/customers$/, (_, __, url) => list(url, customers.values())],
    ["GET", /^\/v1\/prices$/, (_, __, url) => {
      const query = parseForm(url.search.slice(1))
      const lookupKeys = Array.isArray(query["lookup_keys"]) ? (query["lookup_keys"] as Array<string>) : undefined
      const active = query["active"] === undefined ? undefined : query["active"] === "true"
      return list(
        url,
        [...prices.values()].filter((p) =>
          (lookupKeys === undefined || lookupKeys.includes(p["lookup_key"] as string)) &&
          (active === undefined || p["active"] === active)
        )
      )
    }],
    ["GET", /^\/v1\/payment_methods$/, (_, __, url) => {
      const customer = url.searchParams.get("customer")
      const type = url.searchParams.get("type")
      return list(
        url,
        [...paymentMethods.values()].filter((pm) =>
          (customer === null || pm["customer"] === customer) && (type === null || pm["type"] === type)
        )
      )
    }],
    ["POST", /^\/v1\/checkout\/sessions$/, (_, params) => {
      const mode = required(params, "mode")
      if (mode !== "payment" && mode !== "subscription") {
        fail(400, "invalid_request_error", `Invalid mode: ${mode}`, { param: "mode" })
      }
      const lineItems = Array.isArray(params["line_items"]) ? (params["line_items"] as Array<Json>) : []
      if (lineItems.length === 0) return required(params, "line_items")
      // a line is a saved Price (by id) or inline price_data; subscriptions take recurring Prices only
      const priceOf = (item: Json): Json => {
        if (typeof item["price"] === "string") {
          const price = prices.get(item["price"]) ?? missing("price", item["price"])
          if (price["active"] !== true) fail(400, "invalid_request_error", `The price ${price["id"]} is not active.`)
          return price
        }
        if (mode === "subscription") {
          return fail(400, "invalid_request_error", "Subscription mode needs a recurring price.", {
            param: "line_items"
          })
        }
        return (item["price_data"] ?? {}) as Json
      }
      const amount = lineItems.reduce(
        (sum, item) => sum + positiveInt(stringified(priceOf(item)), "unit_amount") * Number(item["quantity"] ?? 1),
        0
      )
      const currency = required(priceOf(lineItems[0]!), "currency")
      if (mode === "payment" && params["subscription_data"] !== undefined) {
        fail(400, "invalid_request_error", "subscription_data is only for subscription mode.", {
          param: "subscription_data"
        })
      }
      const customer = params["customer"]
      if (typeof customer === "string" && !customers.has(customer)) missing("customer", customer)
      const id = newId("cs_test")
      const created = now()
      const session = stamp({
        ...fixture("checkout.session"),
        id,
        object: "checkout.session",
        mode,
        amount_subtotal: amount,
        amount_total: amount,
        currency,
        created,
        expires_at: created + 24 * 3600,
        customer: customer ?? null,
        client_reference_id: params["client_reference_id"] ?? null,
        metadata: stringMap(params["metadata"]),
        subscription_data: mode === "subscription"
          ? { metadata: stringMap((params["subscription_data"] as Json | undefined)?.["metadata"]) }
          : undefined,
        line_items: lineItems.map((item) => ({
          price: item["price"] ?? null,
          quantity: Number(item["quantity"] ?? 1)
        })),
        success_url: required(params, "success_url"),
        cancel_url: params["cancel_url"] ?? null,
        payment_intent: null,
        payment_status: "unpaid",
        status: "open",
        url: `https://checkout.stripe.com/c/pay/${id}`
      })
      sessions.set(id, { session, paymentIntentData: (params["payment_intent_data"] ?? {}) as Json })
      return session
    }],
    [
      "GET",
      /^\/v1\/checkout\/sessions\/([^/]+)$/,
      ([, id]) => sessions.get(id!)?.session ?? missing("checkout.session", id!)
    ],
    ["POST", /^\/v1\/payment_intents$/, (_, params) => {
      const amount = positiveInt(params, "amount")
      const currency = required(params, "currency")
      const customer = params["customer"]
      if (typeof customer === "string" && !customers.has(customer)) missing("customer", customer)
      const paymentMethod = params["payment_method"]
      if (typeof paymentMethod === "string" && !paymentMethods.has(paymentMethod)) {
        missing("payment_method", paymentMethod)
      }
      const pi = makePaymentIntent({
        amount,
        currency,
        customer: customer ?? null,
        payment_method: paymentMethod ?? null,
        metadata: stringMap(params["metadata"]),
        status: "requires_payment_method"
      })
      paymentIntents.set(pi["id"] as string, pi)
      return params["confirm"] === "true" ? confirmPaymentIntent(pi, params["off_session"] === "true") : pi
    }],
    ["GET", /^\/v1\/payment_intents\/([^/]+)$/, ([, id]) => paymentIntents.get(id!) ?? missing("payment_intent", id!)],
    ["GET", /^\/v1\/charges$/, (_, __, url) => list(url, charges.values())],
    ["GET", /^\/v1\/charges\/([^/]+)$/, ([, id], __, url) => {
      const charge = charges.get(id!) ?? missing("charge", id!)
      const expand = parseForm(url.search.slice(1))["expand"]
      const intent = typeof charge["payment_intent"] === "string"
        ? paymentIntents.get(charge["payment_intent"])
        : undefined
      return Array.isArray(expand) && expand.includes("payment_intent") && intent !== undefined
        ? { ...charge, payment_intent: intent }
        : charge
    }],
    ["GET", /^\/v1\/refunds$/, (_, __, url) => list(url, refunds.values(), { charge: (id) => charges.get(id) })],
    ["GET", /^\/v1\/disputes$/, (_, __, url) => list(url, disputes.values(), { charge: (id) => charges.get(id) })],
    ["POST", /^\/v1\/billing_portal\/sessions$/, (_, params) => {
      const customer = required(params, "customer")
      if (!customers.has(customer)) missing("customer", customer)
      const id = newId("bps")
      return {
        ...fixture("billing_portal.session"),
        id,
        customer,
        created: now(),
        return_url: params["return_url"] ?? null,
        url: `https://billing.stripe.com/p/session/${id}`
      }
    }]
  ]

  const handle = (method: string, url: URL, params: Json): unknown => {
    for (const [m, pattern, handler] of routes) {
      const match = method === m ? pattern.exec(url.pathname) : null
      if (match !== null) return handler(match, params, url)
    }
    return fail(404, "invalid_request_error", `Unrecognized request URL (${method}: ${url.pathname}).`)
  }

  const server = Http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const method = request.method ?? "GET"
      const url = new URL(request.url ?? "/", "http://127.0.0.1")
      const body = Buffer.concat(chunks).toString("utf8")
      const idempotencyKey = request.headers["idempotency-key"] as string | undefined
      log.push({ method, path: url.pathname, idempotencyKey })
      const send = (status: number, text: string, replayed = false) => {
        response.writeHead(status, {
          "content-type": "application/json",
          "request-id": `req_${randomId(14)}`,
          ...(replayed ? { "idempotent-replayed": "true" } : {})
        })
        response.end(text)
      }
      const authorization = request.headers["authorization"] ?? ""
      if (authorization !== `Bearer ${apiKey}`) {
        // Deliberately echoes the whole key (Stripe masks it) so the adapter must keep it out of its errors
        return send(
          401,
          JSON.stringify({
            error: {
              type: "invalid_request_error",
              message: `Invalid API Key provided: ${authorization.replace(/^Bearer /, "")}`
            }
          })
        )
      }
      const params = method === "POST" ? parseForm(body) : {}
      const fingerprint = `${method} ${url.pathname} ${canonical(params)}`
      if (method === "POST" && idempotencyKey !== undefined) {
        const prior = idempotent.get(idempotencyKey)
        if (prior !== undefined) {
          if (prior.fingerprint !== fingerprint) {
            return send(
              400,
              JSON.stringify({
                error: {
                  type: "idempotency_error",
                  message:
                    `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`
                }
              })
            )
          }
          return send(prior.status, prior.body, true)
        }
      }
      let status = 200
      let text: string
      try {
        text = JSON.stringify(handle(method, url, params))
      } catch (e) {
        if (!(e instanceof StripeFailure)) throw e
        status = e.status
        text = JSON.stringify({ error: e.error })
      }
      // Stripe saves the result once the endpoint started executing, errors included, but not a
      // request that failed validation (a 400) or a server fault
      if (method === "POST" && idempotencyKey !== undefined && (status === 200 || status === 402)) {
        idempotent.set(idempotencyKey, { fingerprint, status, body: text })
      }
      send(status, text)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  const signer = new Stripe("sk_test_signing_only")

  return {
    port,
    apiKey,
    client: (o = {}) =>
      new Stripe(o.apiKey ?? apiKey, {
        host: "127.0.0.1",
        port,
        protocol: "http",
        maxNetworkRetries: 0,
        ...(o.timeout === undefined ? {} : { timeout: o.timeout })
      }),
    failNextOffSession: (customerId, code) => void offSessionFailures.set(customerId, code),
    completeCheckout: (sessionId, o = {}) => {
      const entry = sessions.get(sessionId)
      if (entry === undefined || entry.session["status"] !== "open") throw new Error(`no open session ${sessionId}`)
      const { paymentIntentData, session } = entry
      const customer = session["customer"] as string | null
      const saving = paymentIntentData["setup_future_usage"] === "off_session" && customer !== null
      const pm = customer === null ? null : saving ? saveCard(customer) : null
      const paymentIntent = makePaymentIntent({
        amount: session["amount_total"],
        currency: session["currency"],
        customer,
        created: o.created ?? now(),
        metadata: stringMap(paymentIntentData["metadata"]),
        payment_method: pm?.["id"] ?? `pm_${randomId(14)}`,
        setup_future_usage: saving ? "off_session" : null
      })
      paymentIntents.set(paymentIntent["id"] as string, paymentIntent)
      const charge = makeCharge(paymentIntent, paymentIntent["created"] as number)
      Object.assign(session, { status: "complete", payment_status: "paid", payment_intent: paymentIntent["id"] })
      return { session, paymentIntent, charge }
    },
    createCharge: (o) => {
      const pi = makePaymentIntent({
        amount: o.amount,
        currency: "usd",
        customer: o.customer ?? null,
        created: o.created ?? now(),
        metadata: { ...o.metadata },
        payment_method: `pm_${randomId(14)}`
      })
      paymentIntents.set(pi["id"] as string, pi)
      const charge = makeCharge(pi, pi["created"] as number)
      if (o.copyMetadataToCharge === false) charge["metadata"] = {}
      return charge
    },
    createRefund: (chargeId, o = {}) => {
      const charge = charges.get(chargeId)
      if (charge === undefined) throw new Error(`no charge ${chargeId}`)
      const amount = o.amount ?? (charge["amount"] as number)
      const refund = stamp({
        ...fixture("refund"),
        id: newId("re"),
        amount,
        charge: chargeId,
        created: o.created ?? now(),
        currency: charge["currency"],
        payment_intent: charge["payment_intent"],
        status: "succeeded"
      })
      refunds.set(refund["id"] as string, refund)
      const refunded = (charge["amount_refunded"] as number) + amount
      Object.assign(charge, { amount_refunded: refunded, refunded: refunded >= (charge["amount"] as number) })
      return refund
    },
    createDispute: (chargeId, o = {}) => {
      const charge = charges.get(chargeId)
      if (charge === undefined) throw new Error(`no charge ${chargeId}`)
      const dispute = stamp({
        ...fixture("dispute"),
        id: newId("dp"),
        amount: charge["amount"],
        charge: chargeId,
        created: o.created ?? now(),
        currency: charge["currency"],
        payment_intent: charge["payment_intent"],
        status: o.status ?? "needs_response"
      })
      disputes.set(dispute["id"] as string, dispute)
      charge["disputed"] = true
      return dispute
    },
    signedEvent: (type, object, secret) => {
      const event = {
        ...fixture("event"),
        id: newId("evt"),
        api_version: Stripe.API_VERSION,
        created: now(),
        type,
        data: { object }
      }
      const payload = JSON.stringify(event)
      return { event, payload, signature: signer.webhooks.generateTestHeaderString({ payload, secret }) }
    },
    createPrice: (o) => {
      const price = stamp({
        id: newId("price"),
        object: "price",
        active: o.active ?? true,
        created: now(),
        currency: "usd",
        livemode: false,
        lookup_key: o.lookupKey ?? null,
        metadata: {},
        product: newId("prod"),
        recurring: { interval: "month", interval_count: 1, usage_type: "licensed" },
        type: "recurring",
        unit_amount: o.unitAmount ?? 2_900
      })
      prices.set(price["id"] as string, price)
      return price
    },
    customers: () => [...customers.values()],
    checkoutSession: (id) => sessions.get(id)?.session,
    requests: () => [...log],
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((e) => (e === undefined ? resolve() : reject(e)))
      })
  }
}

/** The server for the length of a scope. */
export const StripeServerScoped = (options: { readonly apiKey?: string } = {}) =>
  Effect.acquireRelease(Effect.promise(() => startStripeServer(options)), (server) => Effect.promise(server.close))

function randomId(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(length)), (b) => alphabet[b % 62]).join("")
}
