/**
 * The sandbox checkout, for the embedded default only: the page a sandbox top-up's checkout URL
 * opens, and its "Pay" button. Paying sends a `checkout.session.completed` event shaped like
 * Stripe's, signed with the sandbox webhook secret by the Stripe SDK's own helper, through the
 * gateway's real webhook endpoint (`/webhooks/sandbox`): the credits then arrive exactly as a
 * provider's would, from the stored event, applied once by the worker. No money moves and no
 * card is asked for; every page says so.
 */
import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { SandboxPaymentControl } from "@tollgate/adapters/memory/index"
import { Effect, Option, Redacted } from "effect"
import Stripe from "stripe"
import { WebhookSecrets } from "../api/WebhookSecrets.js"
import { makeProblem, problemResponse } from "../Problem.js"

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

const page = (title: string, body: string) =>
  HttpServerResponse.html(`<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
.banner{background:#fff3cd;border:1px solid #e0c36a;padding:.6rem .8rem;border-radius:6px}
button{font-size:1rem;padding:.5rem 1.2rem}</style></head>
<body><p class="banner"><strong>SANDBOX</strong> — no money moves and no card is used.</p>${body}</body></html>`)

const notFound = problemResponse(
  makeProblem(404, "checkout_not_found", "Not found", "No sandbox checkout session has this id")
)

/** The stored event id of a session's payment: one payment, one event, however often "Pay" is pressed. */
export const sandboxEventId = (sessionId: string) => `evt_${sessionId}`

/** The Stripe-shaped event the sandbox sends when a checkout is paid. */
export const checkoutCompletedEvent = (
  session: { sessionId: string; projectId: string; credits: number; amountCents: number },
  paymentId: string,
  createdSeconds: number
) => ({
  id: sandboxEventId(session.sessionId),
  object: "event",
  api_version: "2025-01-27.acacia",
  created: createdSeconds,
  livemode: false,
  type: "checkout.session.completed",
  data: {
    object: {
      id: session.sessionId,
      object: "checkout.session",
      mode: "payment",
      client_reference_id: session.projectId,
      metadata: { project_id: session.projectId, credits: String(session.credits) },
      amount_total: session.amountCents,
      currency: "usd",
      payment_status: "paid",
      status: "complete",
      payment_intent: paymentId
    }
  }
})

/**
 * The routes. The event is delivered over HTTP to the very server and port the "Pay" request
 * arrived on (its socket's local address, never a client-supplied Host).
 */
export const SandboxCheckoutRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const control = yield* SandboxPaymentControl
    const secrets = yield* WebhookSecrets
    const stripe = new Stripe("sk_test_sandbox_signing_only")

    const sessionOf = Effect.gen(function*() {
      const params = yield* HttpLayerRouter.params
      return yield* control.session(params["id"] ?? "")
    })

    yield* router.add(
      "GET",
      "/sandbox/checkout/:id",
      Effect.gen(function*() {
        const session = yield* sessionOf
        if (Option.isNone(session)) return notFound
        const s = session.value
        return page(
          "Sandbox checkout",
          `<h1>Buy ${s.credits} credits</h1>
<p>Project <code>${escape(s.projectId)}</code> — ${(s.amountCents / 100).toFixed(2)} USD (sandbox).</p>
<form method="post" action="/sandbox/checkout/${
            encodeURIComponent(s.sessionId)
          }/pay"><button>Pay (sandbox)</button></form>`
        )
      })
    )

    yield* router.add(
      "POST",
      "/sandbox/checkout/:id/pay",
      Effect.gen(function*() {
        const session = yield* sessionOf
        if (Option.isNone(session)) return notFound
        const s = session.value
        const socket = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest).socket
        const local = socket.localFamily === "IPv6" ? `[${socket.localAddress}]` : socket.localAddress
        const baseUrl = `http://${local}:${socket.localPort}`
        // the sandbox records the payment (once per session), so its listings and reconciliation
        // see the same payment id the event carries
        const payment = yield* control.completeCheckout(s.sessionId)
        const paymentId = Option.match(payment, { onNone: () => `pi_${s.sessionId}`, onSome: (p) => p.paymentId })
        const payload = JSON.stringify(checkoutCompletedEvent(s, paymentId, Math.floor(Date.now() / 1000)))
        const signature = stripe.webhooks.generateTestHeaderString({
          payload,
          secret: Redacted.value(secrets.sandbox)
        })
        const delivered = yield* Effect.tryPromise(() =>
          fetch(`${baseUrl}/webhooks/sandbox`, {
            method: "POST",
            headers: { "content-type": "application/json", "stripe-signature": signature },
            body: payload
          }).then(async (r) => ({ status: r.status, body: await r.text() }))
        ).pipe(Effect.either)
        if (delivered._tag === "Left" || delivered.right.status !== 200) {
          yield* Effect.logWarning("sandbox webhook not accepted", delivered)
          return problemResponse(
            makeProblem(502, "webhook_not_delivered", "Bad gateway", "The sandbox could not deliver the payment event")
          )
        }
        const accept = (yield* HttpServerRequest.HttpServerRequest).headers["accept"] ?? ""
        if (accept.includes("application/json")) {
          return yield* HttpServerResponse.json({ eventId: sandboxEventId(s.sessionId), delivered: true })
        }
        return page(
          "Paid (sandbox)",
          `<h1>Paid</h1><p>The payment event was delivered to the gateway's webhook. The worker applies it
within a second or two: ${s.credits} credits for <code>${escape(s.projectId)}</code>, once, however often
this page is reloaded.</p>`
        )
      })
    )
  })
)
