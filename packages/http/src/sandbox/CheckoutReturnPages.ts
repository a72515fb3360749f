/**
 * Where a payment provider's hosted checkout sends the customer back. The pages only say what
 * happens next: credits are granted from the provider's webhook, never from this redirect.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"

const page = (title: string, text: string) =>
  HttpServerResponse.html(`<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}</style></head>
<body><h1>${title}</h1><p>${text}</p></body></html>`)

export const CheckoutReturnRoutes = HttpLayerRouter.use((router) =>
  Effect.all([
    router.add(
      "GET",
      "/billing/checkout/success",
      page(
        "Payment received",
        "Thank you. Your credits are added as soon as the payment provider confirms the payment, usually within seconds. Your balance is at GET /v1/project."
      )
    ),
    router.add(
      "GET",
      "/billing/checkout/cancelled",
      page("Checkout cancelled", "Nothing was charged. You can start a new top-up at any time.")
    )
  ])
)
