import type { EventId, IncomingEvent } from "@tollgate/core"
import { readFileSync } from "node:fs"

/**
 * Stripe's own example resources (stripe/openapi `openapi/fixtures3.json` at f6c2a48f): the
 * shapes of real webhook payloads. Builders copy one and override some fields.
 */
const fixtures = JSON.parse(
  readFileSync(new URL("./fixtures/stripe.json", import.meta.url), "utf8")
) as { readonly resources: Record<string, Record<string, unknown>> }

type Fields = Record<string, unknown>

const resource = (name: string, overrides: Fields): Fields => ({
  ...structuredClone(fixtures.resources[name]!),
  ...overrides
})

export const session = (overrides: Fields) =>
  resource("checkout.session", {
    mode: "payment",
    status: "complete",
    payment_status: "paid",
    ...overrides
  })

export const intent = (overrides: Fields) =>
  resource("payment_intent", { status: "succeeded", last_payment_error: null, ...overrides })

export const refund = (overrides: Fields) => resource("refund", overrides)

export const charge = (overrides: Fields) =>
  resource("charge", { captured: true, refunds: { object: "list", data: [], has_more: false }, ...overrides })

export const dispute = (overrides: Fields) => resource("dispute", { status: "needs_response", ...overrides })

export const invoice = (overrides: Fields) =>
  resource("invoice", { status: "paid", billing_reason: "subscription_cycle", ...overrides })

/**
 * A subscription as Stripe sends it in `customer.subscription.*` events (API reference shape; the
 * fixtures file has none): one item whose price names the plan in `metadata.plan_id`, the period on
 * the item (API versions from 2025-03-31) and on the subscription (older ones).
 */
export const subscription = (
  overrides: Fields & { readonly planId?: string; readonly unitAmount?: number; readonly periodEnd?: number } = {}
): Fields => {
  const { periodEnd = 1_724_632_454, planId, unitAmount = 2000, ...fields } = overrides
  return {
    id: "sub_1",
    object: "subscription",
    status: "active",
    customer: "cus_1",
    cancel_at_period_end: false,
    cancel_at: null,
    canceled_at: null,
    ended_at: null,
    current_period_start: periodEnd - 2_592_000,
    current_period_end: periodEnd,
    metadata: {},
    items: {
      object: "list",
      data: [{
        id: "si_1",
        object: "subscription_item",
        quantity: 1,
        current_period_start: periodEnd - 2_592_000,
        current_period_end: periodEnd,
        price: {
          id: `price_${planId ?? "none"}`,
          object: "price",
          unit_amount: unitAmount,
          recurring: { interval: "month" },
          metadata: planId === undefined ? {} : { plan_id: planId }
        }
      }]
    },
    ...fields
  }
}

/**
 * A webhook event around `object`, as the receiver stores it: Stripe's event id, type and
 * `created` (seconds; stored in milliseconds), and `previous_attributes` for updates.
 */
export const stripeEvent = (
  id: string,
  type: string,
  object: Fields,
  options: { readonly created?: number; readonly previous?: Fields } = {}
): IncomingEvent => {
  const created = options.created ?? 1_721_954_054
  const base = fixtures.resources.event!
  return {
    id: id as EventId,
    provider: "stripe",
    type,
    createdAt: created * 1000,
    payload: {
      ...base,
      id,
      type,
      created,
      data: { object, ...(options.previous === undefined ? {} : { previous_attributes: options.previous }) }
    }
  }
}
