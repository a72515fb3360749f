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
