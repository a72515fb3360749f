import type { IncomingEvent, ProviderCharge } from "@tollgate/core"
import { BillingAction, CreditsReversed } from "@tollgate/core"
import { Array as Arr, Option, Schema } from "effect"

// Stripe's events, read as ledger actions. Every action is keyed by Stripe's own ids (payment
// intent, refund, dispute, invoice), so duplicates, and two events about one payment, apply once.
//
// Out of order: Stripe does not promise order, and a refund or dispute may arrive before the
// purchase it takes back. The rule: an event carries every action it implies, earliest first.
// A refunded or disputed charge was paid, so its event grants the charge's purchase (under the
// same `purchase:<payment intent>` key the checkout and the intent use) before reversing; a closed
// dispute reverses (under the dispute's key) before it reinstates. Whichever event arrives first
// applies the shared prefix, and the later ones find it done. So a reversal never runs against a
// wallet still waiting for its purchase, nothing is left pending or retried, and the worker has
// nothing to spin on. The cost: the charge must say what it bought (`metadata.project_id` and
// `metadata.credits`, on the charge or on an expanded payment intent), which the checkout's
// `payment_intent_data.metadata` and off-session top-ups provide. Real Stripe sends a dispute's
// `charge` and a charge's `payment_intent` as bare ids, so an event that does not say is read
// again with the charge as the provider has it (`chargeToRetrieve`, `withCharge`, used by the
// worker's translator); one that still does not say is acknowledged and moves nothing.

/** Stripe writes metadata values as strings; numbers are accepted too. */
const Metadata = Schema.optional(
  Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Number) }))
)
type Metadata = Schema.Schema.Type<typeof Metadata>

const Amount = Schema.Int.pipe(Schema.nonNegative())

const Envelope = Schema.Struct({
  created: Schema.optional(Amount),
  data: Schema.Struct({
    object: Schema.Unknown,
    previous_attributes: Schema.optional(Schema.NullOr(Schema.Unknown))
  })
})

const CheckoutSession = Schema.Struct({
  id: Schema.NonEmptyString,
  client_reference_id: Schema.optional(Schema.NullOr(Schema.String)),
  payment_status: Schema.String,
  payment_intent: Schema.optional(Schema.Unknown),
  metadata: Metadata
})

const PaymentIntent = Schema.Struct({
  id: Schema.NonEmptyString,
  amount: Amount,
  metadata: Metadata
})

const Refund = Schema.Struct({
  id: Schema.NonEmptyString,
  amount: Amount,
  status: Schema.optional(Schema.NullOr(Schema.String))
})

const Charge = Schema.Struct({
  id: Schema.NonEmptyString,
  amount: Amount,
  amount_refunded: Schema.optional(Amount),
  payment_intent: Schema.optional(Schema.Unknown),
  metadata: Metadata,
  refunds: Schema.optional(Schema.NullOr(Schema.Struct({ data: Schema.Array(Refund) })))
})
type Charge = typeof Charge.Type

const Dispute = Schema.Struct({
  id: Schema.NonEmptyString,
  amount: Amount,
  status: Schema.String,
  charge: Schema.optional(Schema.Unknown),
  payment_intent: Schema.optional(Schema.Unknown)
})

const SubscriptionDetails = Schema.optional(Schema.NullOr(Schema.Struct({
  subscription: Schema.optional(Schema.Unknown),
  metadata: Metadata
})))

const Invoice = Schema.Struct({
  id: Schema.NonEmptyString,
  billing_reason: Schema.optional(Schema.NullOr(Schema.String)),
  subscription: Schema.optional(Schema.Unknown),
  subscription_details: SubscriptionDetails,
  parent: Schema.optional(Schema.NullOr(Schema.Struct({ subscription_details: SubscriptionDetails }))),
  metadata: Metadata,
  lines: Schema.optional(Schema.Struct({
    data: Schema.Array(Schema.Struct({
      metadata: Metadata,
      period: Schema.optional(Schema.Struct({ end: Amount }))
    }))
  }))
})

/** A price as a subscription item carries it: operators name the plan in its `metadata.plan_id`. */
const Price = Schema.Struct({
  id: Schema.optional(Schema.String),
  unit_amount: Schema.optional(Schema.NullOr(Schema.Number)),
  metadata: Metadata
})

const SubscriptionItems = Schema.Struct({
  data: Schema.Array(Schema.Struct({
    price: Schema.optional(Schema.NullOr(Price)),
    // since API version 2025-03-31 the period lives on each item
    current_period_end: Schema.optional(Schema.NullOr(Amount))
  }))
})

const Subscription = Schema.Struct({
  id: Schema.NonEmptyString,
  status: Schema.optional(Schema.String),
  metadata: Metadata,
  items: Schema.optional(Schema.NullOr(SubscriptionItems)),
  plan: Schema.optional(Schema.NullOr(Schema.Struct({ metadata: Metadata }))),
  current_period_end: Schema.optional(Schema.NullOr(Amount)),
  cancel_at_period_end: Schema.optional(Schema.NullOr(Schema.Boolean)),
  cancel_at: Schema.optional(Schema.NullOr(Amount)),
  canceled_at: Schema.optional(Schema.NullOr(Amount)),
  ended_at: Schema.optional(Schema.NullOr(Amount))
})

const decodeEnvelope = Schema.decodeUnknownOption(Envelope)
const decodeAction = Schema.decodeUnknownOption(BillingAction)
const decodeReversal = Schema.decodeUnknownOption(CreditsReversed)
const decodePreviousRefunded = Schema.decodeUnknownOption(Schema.Struct({ amount_refunded: Amount }))

/** `data.object` of the event as `schema`, or none. */
const objectOf = <A, I>(event: IncomingEvent, schema: Schema.Schema<A, I>): Option.Option<A> =>
  Option.flatMap(decodeEnvelope(event.payload), (e) => Schema.decodeUnknownOption(schema)(e.data.object))

/** A Stripe reference: an id, an expanded object's id, or none (null, missing, empty). */
const idOf = (ref: unknown): string | undefined => {
  if (typeof ref === "string") return ref === "" ? undefined : ref
  if (typeof ref === "object" && ref !== null && "id" in ref && typeof ref.id === "string" && ref.id !== "") {
    return ref.id
  }
  return undefined
}

/** The first of `sources` that has `key`, as text. */
const metadataValue = (key: string, ...sources: ReadonlyArray<Metadata>): string | undefined => {
  for (const source of sources) {
    const value = source?.[key]
    if (value !== undefined && value !== "") return String(value)
  }
  return undefined
}

/** What a charge paid for: a top-up's project and credits, keyed by its payment. */
interface Paid {
  readonly projectId: string
  readonly credits: number
  readonly paymentId: string
  /** The payment's amount in the smallest currency unit: what refunds and disputes are a share of. */
  readonly amount: number
}

const isWhole = (text: string | undefined): text is string => text !== undefined && /^\d+$/.test(text)
/** Credits as `BillingAction` checks them: NaN is refused there. */
const wholeOrNaN = (text: string | undefined): number => isWhole(text) ? Number(text) : Number.NaN

const paidFrom = (metadata: Metadata, paymentId: string, amount: number): Option.Option<Paid> => {
  const projectId = metadataValue("project_id", metadata)
  const credits = metadataValue("credits", metadata)
  return projectId === undefined || !isWhole(credits) || amount <= 0
    ? Option.none()
    : Option.some({ projectId, credits: Number(credits), paymentId, amount })
}

/** The charge's metadata, else its expanded payment intent's (where Checkout's `payment_intent_data.metadata` lands). */
const paidByCharge = (charge: Charge): Option.Option<Paid> => {
  const paymentId = idOf(charge.payment_intent) ?? charge.id
  return paidFrom(charge.metadata, paymentId, charge.amount).pipe(
    Option.orElse(() =>
      Schema.decodeUnknownOption(PaymentIntent)(charge.payment_intent).pipe(
        Option.flatMap((intent) => paidFrom(intent.metadata, paymentId, charge.amount))
      )
    )
  )
}

/** `floor(credits × part / whole)`, exactly (the product may pass 2^53). */
const share = (credits: number, part: number, whole: number): number =>
  Number((BigInt(credits) * BigInt(Math.min(part, whole))) / BigInt(whole))

const purchase = (paid: Paid): Option.Option<BillingAction> =>
  decodeAction({
    _tag: "CreditsPurchased",
    projectId: paid.projectId,
    credits: paid.credits,
    paymentId: paid.paymentId
  })

/**
 * None when the share rounds down to nothing. A refund names the payment it refunds, so credit of
 * it already spent is reclaimed from the calls' payees; a dispute only holds credit back.
 */
const reversal = (paid: Paid, credits: number, reversalId: string, reason: string, refund = false) =>
  decodeReversal({
    _tag: "CreditsReversed",
    projectId: paid.projectId,
    credits,
    reversalId,
    reason,
    ...(refund ? { paymentId: paid.paymentId } : {})
  })

const somes = (...options: ReadonlyArray<Option.Option<BillingAction>>): ReadonlyArray<BillingAction> =>
  Arr.getSomes(options)

const checkoutPaid = (event: IncomingEvent, requirePaid: boolean): ReadonlyArray<BillingAction> =>
  Option.toArray(
    objectOf(event, CheckoutSession).pipe(
      Option.filter((session) => !requirePaid || session.payment_status === "paid"),
      Option.flatMap((session) =>
        decodeAction({
          _tag: "CreditsPurchased",
          projectId: session.client_reference_id ?? metadataValue("project_id", session.metadata),
          credits: wholeOrNaN(metadataValue("credits", session.metadata)),
          paymentId: idOf(session.payment_intent) ?? session.id
        })
      )
    )
  )

const intentSucceeded = (event: IncomingEvent): ReadonlyArray<BillingAction> =>
  Option.toArray(
    objectOf(event, PaymentIntent).pipe(
      Option.flatMap((intent) => paidFrom(intent.metadata, intent.id, intent.amount)),
      Option.flatMap(purchase)
    )
  )

/**
 * Each refund in `refunds.data` reverses `floor(credits × refund.amount / charge.amount)` under
 * `refund:<refund id>`; a failed or canceled refund reverses nothing. Since API version 2022-11-15
 * a charge no longer lists its refunds, so without the list the charge's cumulative
 * `amount_refunded` is read against the event's `previous_attributes.amount_refunded` (0 when
 * absent): the event reverses the slice between them, under `refund:<charge id>:<cumulative amount>`,
 * `floor(credits × to / amount) − floor(credits × from / amount)`. The slices telescope, so all of
 * them together reverse exactly `floor(credits × amount_refunded / amount)`, in any order.
 */
const chargeRefunded = (event: IncomingEvent): ReadonlyArray<BillingAction> =>
  Option.match(
    Option.flatMap(objectOf(event, Charge), (charge) => Option.map(paidByCharge(charge), (paid) => ({ charge, paid }))),
    {
      onNone: () => [],
      onSome: ({ charge, paid }) => {
        if (charge.refunds != null) {
          const reversals = charge.refunds.data
            .filter((refund) => refund.status !== "failed" && refund.status !== "canceled")
            .map((refund) =>
              reversal(
                paid,
                share(paid.credits, refund.amount, paid.amount),
                `refund:${refund.id}`,
                `refund ${refund.id} of ${paid.paymentId}`,
                true
              )
            )
          return somes(purchase(paid), ...reversals)
        }
        const to = charge.amount_refunded ?? 0
        const previous = decodeEnvelope(event.payload).pipe(
          Option.flatMap((e) => decodePreviousRefunded(e.data.previous_attributes)),
          Option.match({ onNone: () => 0, onSome: (p) => p.amount_refunded })
        )
        const from = Math.min(to, previous)
        const credits = share(paid.credits, to, paid.amount) - share(paid.credits, from, paid.amount)
        return somes(
          purchase(paid),
          reversal(
            paid,
            credits,
            `refund:${charge.id}:${to}`,
            `refund of ${to} on ${charge.id} (${paid.paymentId})`,
            true
          )
        )
      }
    }
  )

/**
 * The disputed payment as the dispute carries it: Stripe sends `charge` (and `payment_intent`)
 * as ids unless expanded, and only an expanded one says what the payment bought.
 */
const paidByDispute = (dispute: typeof Dispute.Type): Option.Option<Paid> =>
  Schema.decodeUnknownOption(Charge)(dispute.charge).pipe(
    Option.flatMap(paidByCharge),
    Option.orElse(() =>
      Schema.decodeUnknownOption(PaymentIntent)(dispute.payment_intent).pipe(
        Option.flatMap((intent) => paidFrom(intent.metadata, intent.id, intent.amount))
      )
    )
  )

/**
 * A dispute takes back the disputed share of the credits when opened (`dispute:<id>`); won (or an
 * inquiry closed without a dispute) it gives back exactly what that reversal took; lost, the
 * reversal stands. A closed dispute repeats the opening's reversal, in case it arrives first.
 */
const disputed = (event: IncomingEvent, closed: boolean): ReadonlyArray<BillingAction> =>
  Option.match(
    Option.flatMap(objectOf(event, Dispute), (dispute) =>
      Option.map(paidByDispute(dispute), (paid) => ({ dispute, paid }))),
    {
      onNone: () => [],
      onSome: ({ dispute, paid }) => {
        const reversed = reversal(
          paid,
          share(paid.credits, dispute.amount, paid.amount),
          `dispute:${dispute.id}`,
          `dispute ${dispute.id} of ${paid.paymentId}`
        )
        const givenBack = closed && (dispute.status === "won" || dispute.status === "warning_closed")
        return somes(
          purchase(paid),
          reversed,
          givenBack
            ? Option.map(reversed, (r): BillingAction => ({ _tag: "CreditsReinstated", reversal: r }))
            : Option.none()
        )
      }
    }
  )

/**
 * A paid subscription invoice grants the period's allowance, expiring at the period's end (the
 * latest end among its lines). The project and the allowance come from metadata `project_id` and
 * `allowance_credits` on the invoice, its subscription details (old and new API shapes) or its lines.
 */
const invoicePaid = (event: IncomingEvent): ReadonlyArray<BillingAction> =>
  Option.toArray(
    objectOf(event, Invoice).pipe(
      Option.filter((invoice) =>
        idOf(invoice.subscription) !== undefined ||
        idOf(invoice.parent?.subscription_details?.subscription) !== undefined ||
        (invoice.billing_reason ?? "").startsWith("subscription")
      ),
      Option.flatMap((invoice) => {
        const lines = invoice.lines?.data ?? []
        const sources = [
          invoice.metadata,
          invoice.subscription_details?.metadata,
          invoice.parent?.subscription_details?.metadata,
          ...lines.map((line) => line.metadata)
        ]
        const ends = lines.flatMap((line) => line.period === undefined ? [] : [line.period.end])
        const credits = metadataValue("allowance_credits", ...sources)
        if (ends.length === 0 || !isWhole(credits)) return Option.none()
        return decodeAction({
          _tag: "AllowanceRenewed",
          projectId: metadataValue("project_id", ...sources),
          credits: Number(credits),
          periodEnd: Math.max(...ends) * 1000,
          invoiceId: invoice.id
        })
      })
    )
  )

const decodePreviousItems = Schema.decodeUnknownOption(Schema.Struct({ items: SubscriptionItems }))

const unitAmount = (items: typeof SubscriptionItems.Type | null | undefined): number | undefined => {
  const amount = items?.data[0]?.price?.unit_amount
  return typeof amount === "number" ? amount : undefined
}

/**
 * A subscription event as a plan change. The project is the subscription's `metadata.project_id`;
 * the plan is `metadata.plan_id` on its (first) item's price, else on the subscription (operators
 * set one of them); without both the event is acknowledged and moves nothing. `version` is the
 * event's `created` (seconds): Stripe's own order. A deletion, or an update that sets the
 * subscription to cancel (`cancel_at_period_end`, `cancel_at`), is a cancellation at `ended_at` /
 * `cancel_at` / the period's end; a deletion also ends the subscription, so no update of it counts
 * after. Whether an update is an upgrade or a downgrade is decided by Billing from the plans'
 * `priceCents`; `reason` here only reports what the prices in `previous_attributes` suggest.
 * A subscription still waiting for its first payment (`incomplete`, or `incomplete_expired` when it
 * never came) buys no plan: its events move nothing, and the update that makes it `active` does.
 */
const subscriptionChanged = (event: IncomingEvent, kind: "created" | "updated" | "deleted") =>
  Option.toArray(
    Option.flatMap(decodeEnvelope(event.payload), (envelope) =>
      Schema.decodeUnknownOption(Subscription)(envelope.data.object).pipe(
        Option.filter((sub) =>
          sub.status !== "incomplete" && sub.status !== "incomplete_expired"
        ),
        Option.flatMap((sub) => {
          const item = sub.items?.data[0]
          const version = envelope.created ?? Math.floor(event.createdAt / 1000)
          const periodEnd = item?.current_period_end ?? sub.current_period_end ?? undefined
          const cancelling = kind === "deleted" || sub.cancel_at_period_end === true || sub.cancel_at != null
          const cancelAt = kind === "deleted"
            ? sub.ended_at ?? sub.canceled_at ?? version
            : sub.cancel_at ?? periodEnd
          const effectiveAt = (cancelling ? cancelAt : kind === "created" ? version : periodEnd) ?? version
          const previous = Option.flatMap(
            Option.fromNullable(envelope.data.previous_attributes),
            decodePreviousItems
          ).pipe(Option.flatMap((p) => Option.fromNullable(unitAmount(p.items))))
          const now = unitAmount(sub.items)
          const reason = cancelling
            ? "cancelled"
            : kind === "created"
            ? "created"
            : Option.isSome(previous) && now !== undefined && now < previous.value
            ? "downgraded"
            : "upgraded"
          const planId = metadataValue("plan_id", item?.price?.metadata, sub.metadata, sub.plan?.metadata)
          const projectId = metadataValue("project_id", sub.metadata)
          if (planId === undefined || projectId === undefined) return Option.none()
          return decodeAction({
            _tag: "PlanChanged",
            projectId,
            planId,
            subscriptionId: sub.id,
            effectiveAt: effectiveAt * 1000,
            version,
            reason,
            ended: kind === "deleted"
          })
        })
      ))
  )

/** The types whose actions depend on what their charge paid for. */
const chargeEventTypes: ReadonlySet<string> = new Set([
  "charge.refunded",
  "charge.dispute.created",
  "charge.dispute.closed"
])

/**
 * The charge a refund or dispute event names without saying what it paid for (no `project_id` and
 * `credits` on it or on an expanded payment intent): what must be retrieved before it can move
 * credit. None for other events, and for events that already say.
 */
export const chargeToRetrieve = (event: IncomingEvent): Option.Option<string> => {
  if (!chargeEventTypes.has(event.type)) return Option.none()
  if (event.type === "charge.refunded") {
    return objectOf(event, Charge).pipe(
      Option.filter((charge) => Option.isNone(paidByCharge(charge))),
      Option.map((charge) => charge.id)
    )
  }
  return objectOf(event, Dispute).pipe(
    Option.filter((dispute) => Option.isNone(paidByDispute(dispute))),
    Option.flatMap((dispute) => Option.fromNullable(idOf(dispute.charge)))
  )
}

/**
 * The event with its charge as the provider has it: a refunded charge gains the metadata and the
 * payment it lacked; a dispute's charge becomes that charge, expanded. Unchanged when the provider's
 * charge does not say what it paid for either.
 */
export const withCharge = (event: IncomingEvent, charge: ProviderCharge): IncomingEvent => {
  if (charge.projectId === undefined || charge.credits === undefined) return event
  const payload = event.payload as { readonly data: { readonly object: Record<string, unknown> } }
  const object = payload.data.object
  const metadata = { project_id: charge.projectId, credits: String(charge.credits) }
  const intent = charge.paymentId === charge.id ? null : charge.paymentId
  const enriched = event.type === "charge.refunded"
    ? {
      ...object,
      metadata: { ...(object["metadata"] as Record<string, unknown> | null | undefined), ...metadata },
      payment_intent: object["payment_intent"] ?? intent
    }
    : {
      ...object,
      charge: { id: charge.id, object: "charge", amount: charge.amountCents, payment_intent: intent, metadata }
    }
  return { ...event, payload: { ...payload, data: { ...payload.data, object: enriched } } }
}

/**
 * Stripe's events as ledger actions, earliest first; anything else (or an event that does not say
 * what it bought) is an empty list: acknowledged, stored, not applied.
 */
export const stripeTranslate = (event: IncomingEvent): ReadonlyArray<BillingAction> => {
  switch (event.type) {
    case "checkout.session.completed":
      return checkoutPaid(event, true)
    case "checkout.session.async_payment_succeeded":
      return checkoutPaid(event, false)
    case "payment_intent.succeeded":
      return intentSucceeded(event)
    case "charge.refunded":
      return chargeRefunded(event)
    case "charge.dispute.created":
      return disputed(event, false)
    case "charge.dispute.closed":
      return disputed(event, true)
    case "invoice.paid":
      return invoicePaid(event)
    case "customer.subscription.created":
      return subscriptionChanged(event, "created")
    case "customer.subscription.updated":
      return subscriptionChanged(event, "updated")
    case "customer.subscription.deleted":
      return subscriptionChanged(event, "deleted")
    default:
      return []
  }
}
