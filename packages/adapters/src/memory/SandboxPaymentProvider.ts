import type {
  BillingPortalRequest,
  ChargeOutcome,
  Credits,
  EpochMillis,
  OffSessionCharge,
  PlanId,
  ProjectId,
  ProviderRecord,
  ProviderWindow,
  SubscriptionCheckout,
  TopUpCheckout
} from "@tollgate/core"
import { Fingerprint, PaymentProvider, PaymentProviderError } from "@tollgate/core"
import { Clock, Context, Effect, Layer, Option } from "effect"

/** A checkout the sandbox opened: what a completed payment for it should credit. */
export interface SandboxCheckoutSession {
  readonly sessionId: string
  readonly url: string
  readonly projectId: ProjectId
  readonly credits: Credits
  readonly amountCents: number
  readonly saveCard: boolean
  readonly idempotencyKey: string
}

/**
 * A subscription checkout the sandbox opened. It is only recorded: no sandbox page serves it
 * and nothing subscribes the project (that takes the provider's subscription events).
 */
export interface SandboxSubscriptionSession {
  readonly sessionId: string
  readonly url: string
  readonly projectId: ProjectId
  readonly planId: PlanId
  readonly idempotencyKey: string
}

/** One off-session charge attempt and how it ended. Nothing was actually charged. */
export interface SandboxCharge {
  readonly idempotencyKey: string
  readonly projectId: ProjectId
  readonly credits: Credits
  readonly amountCents: number
  readonly outcome: ChargeOutcome
}

/** What only a sandbox has: its memory of sessions and charges, and a switch to refuse charges. */
export class SandboxPaymentControl extends Context.Tag("@tollgate/adapters/SandboxPaymentControl")<
  SandboxPaymentControl,
  {
    readonly session: (sessionId: string) => Effect.Effect<Option.Option<SandboxCheckoutSession>>
    /** Every session opened, oldest first. */
    readonly sessions: () => Effect.Effect<ReadonlyArray<SandboxCheckoutSession>>
    /** Every subscription checkout opened (one per idempotency key), oldest first. */
    readonly subscriptionSessions: () => Effect.Effect<ReadonlyArray<SandboxSubscriptionSession>>
    /** Every off-session charge attempt (one per idempotency key), oldest first. */
    readonly charges: () => Effect.Effect<ReadonlyArray<SandboxCharge>>
    /** From now on, off-session charges for the project need the customer (as a card asking for 3-D Secure would). */
    readonly requireCustomerFor: (projectId: ProjectId) => Effect.Effect<void>
    /** Records a session as paid, as the sandbox page's Pay button does; its payment is listed from then on. */
    readonly completeCheckout: (sessionId: string) => Effect.Effect<Option.Option<ProviderRecord>>
    /** Records a refund of (part of) a listed payment. */
    readonly refund: (paymentId: string, amountCents: number) => Effect.Effect<Option.Option<ProviderRecord>>
    /** Records a dispute over a listed payment, in the given status (default "needs_response"). */
    readonly dispute: (paymentId: string, status?: string) => Effect.Effect<Option.Option<ProviderRecord>>
  }
>() {}

export interface SandboxPaymentProviderOptions {
  /** Where the sandbox checkout pages are served. */
  readonly baseUrl?: string | undefined
}

const defaultBaseUrl = "http://localhost:8080"

/**
 * SANDBOX PAYMENT PROVIDER: no money moves and no card is seen. Checkouts are remembered so a
 * sandbox page (or a test) can complete them; off-session charges succeed unless the project
 * was told to require its customer. Like a real provider, a call replayed with its idempotency
 * key gets its first answer, and a different request under a used key is refused.
 */
export const makeSandboxPaymentProvider = (options: SandboxPaymentProviderOptions = {}) =>
  Effect.sync(() => {
    const baseUrl = (options.baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")
    const sessions = new Map<string, SandboxCheckoutSession>()
    const checkoutByKey = new Map<string, { readonly fingerprint: string; readonly session: SandboxCheckoutSession }>()
    const subscriptionByKey = new Map<
      string,
      { readonly fingerprint: string; readonly session: SandboxSubscriptionSession }
    >()
    const charges: Array<SandboxCharge> = []
    const chargeByKey = new Map<string, { readonly fingerprint: string; readonly charge: SandboxCharge }>()
    const customerRequired = new Set<ProjectId>()
    // ids stay unique across restarts of the process: a stored event or a ledger key from an
    // earlier run must never match a new session's payment
    const run = globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 12)
    let sessionCount = 0
    let paymentCount = 0
    let recordCount = 0
    const payments: Array<ProviderRecord> = []
    const paidSessions = new Map<string, ProviderRecord>()
    const refunds: Array<ProviderRecord> = []
    const disputes: Array<ProviderRecord> = []
    const now = Clock.currentTimeMillis.pipe(Effect.map((ms) => ms as EpochMillis))
    const within = (records: ReadonlyArray<ProviderRecord>, window: ProviderWindow) =>
      Effect.sync(() => records.filter((r) => r.createdAt >= window.from && r.createdAt < window.to))

    const validate = (
      request: { readonly credits: number; readonly amountCents: number; readonly idempotencyKey: string }
    ) =>
      request.idempotencyKey.length === 0
        ? Option.some(new PaymentProviderError({ message: "sandbox: an idempotency key is required" }))
        : !Number.isSafeInteger(request.amountCents) || request.amountCents <= 0
        ? Option.some(new PaymentProviderError({ message: "sandbox: the amount must be a positive number of cents" }))
        : request.credits <= 0
        ? Option.some(new PaymentProviderError({ message: "sandbox: a top-up must buy at least one credit" }))
        : Option.none()

    const reused = (key: string) =>
      new PaymentProviderError({ message: `sandbox: idempotency key ${key} was used with different parameters` })

    const createTopUpCheckout = Effect.fnUntraced(
      function*(request: TopUpCheckout) {
        const invalid = validate(request)
        if (Option.isSome(invalid)) return yield* invalid.value
        const fingerprint = Fingerprint.fingerprint("checkout", request)
        const prior = checkoutByKey.get(request.idempotencyKey)
        if (prior !== undefined) {
          if (prior.fingerprint !== fingerprint) return yield* reused(request.idempotencyKey)
          return { sessionId: prior.session.sessionId, url: prior.session.url }
        }
        const sessionId = `sbx_cs_${run}_${++sessionCount}`
        const session: SandboxCheckoutSession = {
          sessionId,
          url: `${baseUrl}/sandbox/checkout/${sessionId}`,
          projectId: request.projectId,
          credits: request.credits,
          amountCents: request.amountCents,
          saveCard: request.saveCard,
          idempotencyKey: request.idempotencyKey
        }
        sessions.set(sessionId, session)
        checkoutByKey.set(request.idempotencyKey, { fingerprint, session })
        return { sessionId, url: session.url }
      }
    )

    const createSubscriptionCheckout = Effect.fnUntraced(
      function*(request: SubscriptionCheckout) {
        if (request.idempotencyKey.length === 0) {
          return yield* new PaymentProviderError({ message: "sandbox: an idempotency key is required" })
        }
        const fingerprint = Fingerprint.fingerprint("subscription", request)
        const prior = subscriptionByKey.get(request.idempotencyKey)
        if (prior !== undefined) {
          if (prior.fingerprint !== fingerprint) return yield* reused(request.idempotencyKey)
          return { sessionId: prior.session.sessionId, url: prior.session.url }
        }
        const sessionId = `sbx_cs_sub_${run}_${++sessionCount}`
        const session: SandboxSubscriptionSession = {
          sessionId,
          // the path style of a top-up's page; no page is served for a subscription
          url: `${baseUrl}/sandbox/checkout/${sessionId}`,
          projectId: request.projectId,
          planId: request.planId,
          idempotencyKey: request.idempotencyKey
        }
        subscriptionByKey.set(request.idempotencyKey, { fingerprint, session })
        return { sessionId, url: session.url }
      }
    )

    const createBillingPortal = (request: BillingPortalRequest) =>
      Effect.succeed({
        url: `${baseUrl}/sandbox/billing-portal/${encodeURIComponent(request.projectId)}?return_url=${
          encodeURIComponent(request.returnUrl)
        }`
      })

    const chargeOffSession = Effect.fnUntraced(function*(request: OffSessionCharge) {
      const invalid = validate(request)
      if (Option.isSome(invalid)) return yield* invalid.value
      const fingerprint = Fingerprint.fingerprint("charge", request)
      const prior = chargeByKey.get(request.idempotencyKey)
      if (prior !== undefined) {
        if (prior.fingerprint !== fingerprint) return yield* reused(request.idempotencyKey)
        return prior.charge.outcome
      }
      const outcome: ChargeOutcome = customerRequired.has(request.projectId)
        ? { status: "requires_customer", paymentId: undefined, reason: "authentication_required" }
        : { status: "succeeded", paymentId: `sbx_pi_${run}_${++paymentCount}` }
      if (outcome.status === "succeeded") {
        payments.push({
          id: outcome.paymentId,
          projectId: request.projectId,
          amountCents: request.amountCents,
          credits: request.credits,
          createdAt: yield* now,
          status: "succeeded",
          paymentId: outcome.paymentId
        })
      }
      const charge: SandboxCharge = {
        idempotencyKey: request.idempotencyKey,
        projectId: request.projectId,
        credits: request.credits,
        amountCents: request.amountCents,
        outcome
      }
      charges.push(charge)
      chargeByKey.set(request.idempotencyKey, { fingerprint, charge })
      return outcome
    })

    const paymentOf = (paymentId: string) => Option.fromNullable(payments.find((p) => p.id === paymentId))

    const provider = PaymentProvider.of({
      name: "sandbox",
      createTopUpCheckout,
      chargeOffSession,
      createSubscriptionCheckout,
      createBillingPortal,
      listPayments: (window) => within(payments, window),
      listRefunds: (window) => within(refunds, window),
      listDisputes: (window) => within(disputes, window),
      // the sandbox's payments are its charges
      retrieveCharge: (chargeId) =>
        Effect.sync(() =>
          Option.map(paymentOf(chargeId), (payment) => ({
            id: payment.id,
            amountCents: payment.amountCents,
            paymentId: payment.paymentId,
            projectId: payment.projectId,
            credits: payment.credits
          }))
        )
    })
    const control = SandboxPaymentControl.of({
      session: (sessionId) => Effect.sync(() => Option.fromNullable(sessions.get(sessionId))),
      sessions: () => Effect.sync(() => [...sessions.values()]),
      subscriptionSessions: () => Effect.sync(() => [...subscriptionByKey.values()].map((entry) => entry.session)),
      charges: () => Effect.sync(() => [...charges]),
      requireCustomerFor: (projectId) => Effect.sync(() => void customerRequired.add(projectId)),
      completeCheckout: (sessionId) =>
        Effect.map(now, (createdAt) => {
          const session = sessions.get(sessionId)
          if (session === undefined) return Option.none()
          const paid = paidSessions.get(sessionId)
          if (paid !== undefined) return Option.some(paid)
          const id = `sbx_pi_${run}_${++paymentCount}`
          const record: ProviderRecord = {
            id,
            projectId: session.projectId,
            amountCents: session.amountCents,
            credits: session.credits,
            createdAt,
            status: "succeeded",
            paymentId: id
          }
          paidSessions.set(sessionId, record)
          payments.push(record)
          return Option.some(record)
        }),
      refund: (paymentId, amountCents) =>
        Effect.map(now, (createdAt) =>
          Option.map(paymentOf(paymentId), (payment) => {
            const record: ProviderRecord = {
              ...payment,
              id: `sbx_re_${run}_${++recordCount}`,
              amountCents,
              createdAt,
              status: "succeeded"
            }
            refunds.push(record)
            return record
          })),
      dispute: (paymentId, status = "needs_response") =>
        Effect.map(now, (createdAt) =>
          Option.map(paymentOf(paymentId), (payment) => {
            const record: ProviderRecord = { ...payment, id: `sbx_dp_${run}_${++recordCount}`, createdAt, status }
            disputes.push(record)
            return record
          }))
    })
    return { provider, control }
  })

/** Provides the sandbox as the PaymentProvider and its controls, over one shared state. */
export const sandboxPaymentProviderLayer = (
  options: SandboxPaymentProviderOptions = {}
): Layer.Layer<PaymentProvider | SandboxPaymentControl> =>
  Layer.effectContext(
    Effect.map(
      makeSandboxPaymentProvider(options),
      ({ control, provider }) =>
        Context.make(PaymentProvider, provider).pipe(Context.add(SandboxPaymentControl, control))
    )
  )

export const SandboxPaymentProviderLive = sandboxPaymentProviderLayer()
