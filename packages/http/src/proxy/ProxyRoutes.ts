import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect } from "effect"
import { MeteredProxy } from "./MeteredProxy.js"

/**
 * The metered proxy on every path the management API does not claim. HttpApi routes are static
 * or parametric, which the router prefers over this wildcard, so `/v1/…`, `/admin/…` and the
 * rest reach the API and everything else reaches the route table. (Most proxied calls never
 * reach the router: the server hands paths outside the management API's first segments to the
 * proxy directly. This route serves the rest, e.g. `/webhooks/other` when the API claims
 * `/webhooks/stripe`.)
 *
 * The proxy writes the whole answer to Node's response itself; the empty response returned once
 * it has finished finds the response ended, and the server writes nothing more.
 */
export const ProxyRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const proxy = yield* MeteredProxy
    yield* router.add(
      "*",
      "/*",
      (request) =>
        Effect.as(
          Effect.promise(() =>
            proxy(NodeHttpServerRequest.toIncomingMessage(request), NodeHttpServerRequest.toServerResponse(request))
          ),
          HttpServerResponse.empty()
        )
    )
  })
)
