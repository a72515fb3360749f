import type {
  BillingPortalRequest,
  ChargeOutcome,
  EpochMillis,
  OffSessionCharge,
  ProviderCharge,
  ProviderRecord,
  ProviderWindow,
  SubscriptionCheckout,
  TopUpCheckout
} from "@tollgate/core"
import { Credits, PaymentProvider, PaymentProviderError, ProjectId } from "@tollgate/core"
import type { ConfigError } from "effect"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import Stripe from "stripe"
import { stripeClientConfig, StripeConfig } from "./StripeConfig.js"

export interface StripePaymentProviderOptions {
  /** The SDK client; its key is the only credential used. */
  readonly client: Stripe
  /** Where Checkout sends the customer after paying; may contain `{CHECKOUT_SESSION_ID}`. */
  readonly successUrl: string
  readonly cancelUrl: string
  /** Lowercase ISO code, e.g. `usd`. */
  readonly currency: string
  /** The longest one call may take, per attempt (default 20 s). */
  readonly timeoutMs?: number
  /** Objects per listing page (default 100, Stripe's maximum). */
  readonly pageSize?: number
}

/** Keys look like `sk_live_…`; whatever an error says, none of one leaves this module. */
const scrub = (text: string): string => text.replace(/\b(sk|rk|pk)_(test|live)_[A-Za-z0-9]+/g, "$1_$2_[redacted]")

const describe = (operation: string, error: unknown): PaymentProviderError => {
  if (error instanceof Stripe.errors.StripeError) {
    const kind = [error.rawType ?? error.type, error.code].filter((part) => part !== undefined && part !== "").join("/")
    const status = error.statusCode === undefined ? "" : ` (HTTP ${error.statusCode})`
    return new PaymentProviderError({
      message: scrub(`stripe: ${operation} failed: ${kind}${status}: ${error.message}`)
    })
  }
  const message = error instanceof Error ? error.message : String(error)
  return new PaymentProviderError({ message: scrub(`stripe: ${operation} failed: ${message}`) })
}

/** Escapes a value for a single-quoted Stripe search string. */
const searchString = (value: string): string => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`

const decodeProjectId = Schema.decodeUnknownOption(ProjectId)
const decodeCredits = Schema.decodeUnknownOption(Credits)

const idOf = (value: string | { readonly id: string } | null | undefined): string | undefined =>
  value === null || value === undefined ? undefined : typeof value === "string" ? value : value.id

/** What a payment's metadata says it was for. */
const metadataOf = (metadata: Stripe.Metadata | null | undefined) => ({
  projectId: Option.getOrUndefined(decodeProjectId(metadata?.["project_id"])),
  credits: metadata?.["credits"] === undefined || !/^\d+$/.test(metadata["credits"])
    ? undefined
    : Option.getOrUndefined(decodeCredits(Number(metadata["credits"])))
})

/** A Stripe timestamp (seconds) as epoch milliseconds. */
const millis = (seconds: number): EpochMillis => (seconds * 1000) as EpochMillis

const invalid = (
  request: { readonly credits: number; readonly amountCents: number; readonly idempotencyKey: string }
) =>
  request.idempotencyKey.length === 0 || request.idempotencyKey.length > 200
    ? Option.some("an idempotency key of 1 to 200 characters is required")
    : !Number.isSafeInteger(request.amountCents) || request.amountCents <= 0
    ? Option.some("the amount must be a positive number of cents")
    : request.credits <= 0
    ? Option.some("a top-up must buy at least one credit")
    : Option.none()

/**
 * STRIPE PAYMENT PROVIDER. Top-ups are Checkout Sessions in payment mode and auto top-ups are
 * off-session PaymentIntents, each under an idempotency key derived from the caller's, so a
 * retried call never pays twice. Each project has one Stripe customer, found by its
 * `metadata.project_id` and created under the key `customer:<projectId>`, so gateways racing to
 * create it get the same one. Credits are never granted from these answers, only from webhooks.
 */
export const makeStripePaymentProvider = (options: StripePaymentProviderOptions) =>
  Effect.sync(() => {
    const { client, currency } = options
    const pageSize = Math.min(Math.max(options.pageSize ?? 100, 1), 100)
    const requestOptions = { timeout: options.timeoutMs ?? 20_000, maxNetworkRetries: 2 }
    const call = <A>(operation: string, run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (error) => error }).pipe(
        Effect.withSpan(`Stripe.${operation}`)
      )
    const callOrFail = <A>(operation: string, run: () => Promise<A>) =>
      Effect.mapError(call(operation, run), (error) => describe(operation, error))

    // project → customer, remembered once known; one lookup-or-create at a time per process
    const customers = new Map<ProjectId, string>()
    const customerLock = Effect.unsafeMakeSemaphore(1)

    const findCustomer = (projectId: ProjectId) =>
      callOrFail("customers.search", () =>
        client.customers.search(
          { query: `metadata['project_id']:${searchString(projectId)}`, limit: 10 },
          requestOptions
        )).pipe(
          // two customers can only exist after the idempotency key expired; the oldest is the one
          // that has been used since
          Effect.map((result) =>
            Option.fromNullable([...result.data].sort((a, b) => a.created - b.created || a.id.localeCompare(b.id))[0])
          )
        )

    const createCustomer = (projectId: ProjectId) =>
      callOrFail("customers.create", () =>
        client.customers.create(
          { description: `Tollgate project ${projectId}`, metadata: { project_id: projectId } },
          { ...requestOptions, idempotencyKey: `customer:${projectId}` }
        ))

    /** The project's customer, created if `create` and there is none yet. */
    const customerFor = (projectId: ProjectId, create: boolean) =>
      Effect.suspend(() => {
        const known = customers.get(projectId)
        if (known !== undefined) return Effect.succeed(Option.some(known))
        return customerLock.withPermits(1)(Effect.gen(function*() {
          const again = customers.get(projectId)
          if (again !== undefined) return Option.some(again)
          // search is eventually consistent (about a minute); the idempotency key covers a
          // customer created by another gateway that search does not see yet
          const found = yield* findCustomer(projectId)
          const customer = Option.isSome(found)
            ? Option.some(found.value.id)
            : create
            ? Option.some((yield* createCustomer(projectId)).id)
            : Option.none()
          if (Option.isSome(customer)) customers.set(projectId, customer.value)
          return customer
        }))
      })

    const savedCard = (customerId: string) =>
      Effect.gen(function*() {
        const customer = yield* callOrFail(
          "customers.retrieve",
          () => client.customers.retrieve(customerId, {}, requestOptions)
        )
        if (!customer.deleted) {
          const preferred = idOf(customer.invoice_settings?.default_payment_method)
          if (preferred !== undefined) return Option.some(preferred)
        }
        const cards = yield* callOrFail(
          "paymentMethods.list",
          () => client.paymentMethods.list({ customer: customerId, type: "card", limit: 1 }, requestOptions)
        )
        return Option.fromNullable(cards.data[0]?.id)
      })

    const createTopUpCheckout = Effect.fnUntraced(
      function*(request: TopUpCheckout) {
        const problem = invalid(request)
        if (Option.isSome(problem)) return yield* new PaymentProviderError({ message: `stripe: ${problem.value}` })
        const customer = Option.getOrThrow(yield* customerFor(request.projectId, true))
        const metadata = { project_id: request.projectId, credits: String(request.credits) }
        const session = yield* callOrFail("checkout.sessions.create", () =>
          client.checkout.sessions.create(
            {
              mode: "payment",
              customer,
              client_reference_id: request.projectId,
              line_items: [{
                quantity: 1,
                price_data: {
                  currency,
                  unit_amount: request.amountCents,
                  product_data: { name: `${request.credits} credits` }
                }
              }],
              metadata,
              payment_intent_data: request.saveCard
                ? { metadata, setup_future_usage: "off_session" }
                : { metadata },
              success_url: options.successUrl,
              cancel_url: options.cancelUrl
            },
            { ...requestOptions, idempotencyKey: `checkout:${request.idempotencyKey}` }
          ))
        if (session.url === null) {
          return yield* new PaymentProviderError({ message: `stripe: checkout session ${session.id} has no URL` })
        }
        return { sessionId: session.id, url: session.url }
      }
    )

    /** The plan's active Price: the one whose lookup key is the plan id. */
    const priceFor = (planId: string) =>
      callOrFail("prices.list", () =>
        client.prices.list({ lookup_keys: [planId], active: true, limit: 1 }, requestOptions)).pipe(
          Effect.flatMap((result) =>
            result.data[0] === undefined
              ? Effect.fail(new PaymentProviderError({ message: `stripe: no Stripe price has lookup key ${planId}` }))
              : Effect.succeed(result.data[0].id)
          )
        )

    const createSubscriptionCheckout = Effect.fnUntraced(
      function*(request: SubscriptionCheckout) {
        if (request.idempotencyKey.length === 0 || request.idempotencyKey.length > 200) {
          return yield* new PaymentProviderError({
            message: "stripe: an idempotency key of 1 to 200 characters is required"
          })
        }
        const price = yield* priceFor(request.planId)
        const customer = Option.getOrThrow(yield* customerFor(request.projectId, true))
        // the worker reads the plan and project from the subscription's metadata
        const metadata = { project_id: request.projectId, plan_id: request.planId }
        const session = yield* callOrFail("checkout.sessions.create", () =>
          client.checkout.sessions.create(
            {
              mode: "subscription",
              customer,
              client_reference_id: request.projectId,
              line_items: [{ price, quantity: 1 }],
              metadata,
              subscription_data: { metadata },
              success_url: options.successUrl,
              cancel_url: options.cancelUrl
            },
            { ...requestOptions, idempotencyKey: `subscription_checkout:${request.idempotencyKey}` }
          ))
        if (session.url === null) {
          return yield* new PaymentProviderError({ message: `stripe: checkout session ${session.id} has no URL` })
        }
        return { sessionId: session.id, url: session.url }
      }
    )

    const createBillingPortal = Effect.fnUntraced(
      function*(request: BillingPortalRequest) {
        const customer = yield* customerFor(request.projectId, false)
        if (Option.isNone(customer)) {
          return yield* new PaymentProviderError({
            message: `stripe: project ${request.projectId} has no billing account yet`
          })
        }
        const session = yield* callOrFail("billingPortal.sessions.create", () =>
          client.billingPortal.sessions.create(
            { customer: customer.value, return_url: request.returnUrl },
            requestOptions
          ))
        return { url: session.url }
      }
    )

    const chargeOffSession = Effect.fnUntraced(
      function*(request: OffSessionCharge) {
        const problem = invalid(request)
        if (Option.isSome(problem)) {
          return yield* new PaymentProviderError({ message: `stripe: ${problem.value}` })
        }
        const customer = yield* customerFor(request.projectId, false)
        if (Option.isNone(customer)) {
          return { status: "requires_customer", paymentId: undefined, reason: "no_customer" } satisfies ChargeOutcome
        }
        const card = yield* savedCard(customer.value)
        if (Option.isNone(card)) {
          return {
            status: "requires_customer",
            paymentId: undefined,
            reason: "no_saved_payment_method"
          } satisfies ChargeOutcome
        }
        const attempt = yield* call("paymentIntents.create", () =>
          client.paymentIntents.create(
            {
              customer: customer.value,
              payment_method: card.value,
              amount: request.amountCents,
              currency,
              off_session: true,
              confirm: true,
              metadata: { project_id: request.projectId, credits: String(request.credits), kind: "auto_top_up" }
            },
            { ...requestOptions, idempotencyKey: `charge:${request.idempotencyKey}` }
          )).pipe(Effect.either)
        if (attempt._tag === "Left") {
          const error = attempt.left
          // a card error (SCA needed, declined, expired…) is the customer's to resolve, on a Checkout page
          if (error instanceof Stripe.errors.StripeCardError) {
            return {
              status: "requires_customer",
              paymentId: error.payment_intent?.id,
              reason: error.code ?? error.decline_code ?? "card_error"
            } satisfies ChargeOutcome
          }
          return yield* describe("paymentIntents.create", error)
        }
        const intent = attempt.right
        switch (intent.status) {
          case "succeeded":
          case "processing":
            return { status: "succeeded", paymentId: intent.id } satisfies ChargeOutcome
          case "requires_action":
          case "requires_payment_method":
          case "requires_confirmation":
            return {
              status: "requires_customer",
              paymentId: intent.id,
              reason: intent.last_payment_error?.code ?? intent.status
            } satisfies ChargeOutcome
          default:
            return yield* new PaymentProviderError({
              message: `stripe: payment intent ${intent.id} ended ${intent.status}`
            })
        }
      }
    )

    /** Every object created in `[from, to)`, following `has_more` page by page. */
    const listAll = <T extends { readonly id: string }>(
      operation: string,
      window: ProviderWindow,
      page: (params: {
        readonly limit: number
        readonly created: { readonly gte: number; readonly lt: number }
        readonly starting_after?: string
      }) => Promise<Stripe.ApiList<T>>
    ) =>
      Effect.gen(function*() {
        // Stripe counts whole seconds: t*1000 is in [from, to) exactly when t is in [⌈from/1000⌉, ⌈to/1000⌉)
        const created = { gte: Math.ceil(window.from / 1000), lt: Math.ceil(window.to / 1000) }
        const all: Array<T> = []
        let after: string | undefined
        while (true) {
          const cursor = after
          const result = yield* callOrFail(operation, () =>
            page(
              cursor === undefined ? { limit: pageSize, created } : {
                limit: pageSize,
                created,
                starting_after: cursor
              }
            ))
          for (const item of result.data) {
            all.push(item)
          }
          const last = result.data.at(-1)
          if (!result.has_more || last === undefined) {
            return all
          }
          after = last.id
        }
      })

    const chargeOf = (charge: string | Stripe.Charge | null) =>
      typeof charge === "object" && charge !== null ? charge : undefined

    const listPayments = Effect.fnUntraced(function*(window: ProviderWindow) {
      const charges = yield* listAll(
        "charges.list",
        window,
        (params) =>
          client.charges.list(params, requestOptions)
      )
      return charges.map((charge): ProviderRecord => ({
        id: charge.id,
        ...metadataOf(charge.metadata),
        amountCents: charge.amount,
        createdAt: millis(charge.created),
        status: charge.status,
        paymentId: idOf(charge.payment_intent) ?? charge.id
      }))
    })

    const listRefunds = Effect.fnUntraced(function*(window: ProviderWindow) {
      const refunds = yield* listAll(
        "refunds.list",
        window,
        (params) => client.refunds.list({ ...params, expand: ["data.charge"] }, requestOptions)
      )
      return refunds.map((refund): ProviderRecord => {
        const charge = chargeOf(refund.charge)
        return {
          id: refund.id,
          ...metadataOf(charge?.metadata),
          amountCents: refund.amount,
          createdAt: millis(refund.created),
          status: refund.status ?? "unknown",
          paymentId: idOf(refund.payment_intent) ?? idOf(charge?.payment_intent) ?? idOf(refund.charge) ?? refund.id
        }
      })
    })

    const listDisputes = Effect.fnUntraced(function*(window: ProviderWindow) {
      const disputes = yield* listAll(
        "disputes.list",
        window,
        (params) => client.disputes.list({ ...params, expand: ["data.charge"] }, requestOptions)
      )
      return disputes.map((dispute): ProviderRecord => {
        const charge = chargeOf(dispute.charge)
        return {
          id: dispute.id,
          ...metadataOf(charge?.metadata),
          amountCents: dispute.amount,
          createdAt: millis(dispute.created),
          status: dispute.status,
          paymentId: idOf(dispute.payment_intent) ?? idOf(charge?.payment_intent) ?? idOf(dispute.charge) ?? dispute.id
        }
      })
    })

    /** Stripe's answer for an id it does not have. */
    const isMissing = (error: unknown) =>
      error instanceof Stripe.errors.StripeError && (error.statusCode === 404 || error.code === "resource_missing")

    const retrieveCharge = Effect.fnUntraced(function*(chargeId: string) {
      if (chargeId === "") return Option.none<ProviderCharge>()
      const found = yield* call(
        "charges.retrieve",
        () => client.charges.retrieve(chargeId, { expand: ["payment_intent"] }, requestOptions)
      ).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          isMissing(error) ? Effect.succeed(Option.none()) : Effect.fail(describe("charges.retrieve", error))
        )
      )
      if (Option.isNone(found)) return Option.none<ProviderCharge>()
      const charge = found.value
      // Checkout puts the top-up's metadata on the payment intent; Stripe copies it to the charge
      // only for charges it creates after, so read the charge's, else its intent's
      const own = metadataOf(charge.metadata)
      const intent = typeof charge.payment_intent === "object" && charge.payment_intent !== null
        ? metadataOf(charge.payment_intent.metadata)
        : { projectId: undefined, credits: undefined }
      const said = own.projectId !== undefined && own.credits !== undefined ? own : intent
      return Option.some<ProviderCharge>({
        id: charge.id,
        amountCents: charge.amount,
        paymentId: idOf(charge.payment_intent) ?? charge.id,
        projectId: said.projectId,
        credits: said.credits
      })
    })

    return PaymentProvider.of({
      name: "stripe",
      createTopUpCheckout,
      chargeOffSession,
      listPayments,
      listRefunds,
      listDisputes,
      retrieveCharge,
      createSubscriptionCheckout,
      createBillingPortal
    })
  })

/** The Stripe SDK client for a configuration: its key, its API address, a timeout and two retries. */
export const makeStripeClient = (config: StripeConfig["stripe"]): Stripe =>
  new Stripe(Redacted.value(config.secretKey), stripeClientConfig(config))

/** The Stripe adapter as the PaymentProvider, from `STRIPE_*` and `TOLLGATE_PUBLIC_URL`. */
export const StripePaymentProviderLive: Layer.Layer<PaymentProvider, ConfigError.ConfigError> = Layer
  .effect(
    PaymentProvider,
    Effect.gen(function*() {
      const config = yield* StripeConfig
      return yield* makeStripePaymentProvider({
        client: makeStripeClient(config.stripe),
        successUrl: `${config.publicUrl}/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
        cancelUrl: `${config.publicUrl}/billing/checkout/cancelled`,
        currency: config.stripe.currency,
        timeoutMs: config.stripe.timeoutMs
      })
    })
  )
