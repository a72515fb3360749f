import type { EventId, IncomingEvent } from "@tollgate/core"

/** A Stripe-shaped `checkout.session.completed` as the embedded sandbox sends it; `session` overrides fields of `data.object`. */
export const checkoutCompleted = (
  id: string,
  session: Record<string, unknown>,
  provider: IncomingEvent["provider"] = "sandbox"
): IncomingEvent => ({
  id: id as EventId,
  provider,
  type: "checkout.session.completed",
  createdAt: 0,
  payload: {
    id,
    object: "event",
    type: "checkout.session.completed",
    data: {
      object: {
        object: "checkout.session",
        id: "sbx_cs_1",
        client_reference_id: "demo-basic",
        payment_status: "paid",
        payment_intent: "sbx_pi_1",
        metadata: { credits: "500" },
        ...session
      }
    }
  }
})
