import { HttpLayerRouter } from "@effect/platform"
import { Effect } from "effect"
import { makeMeteredProxy } from "./MeteredProxy.js"

/**
 * The metered proxy on every path the management API does not claim. HttpApi routes are static
 * or parametric, which the router prefers over this wildcard, so `/v1/…`, `/admin/…` and the
 * rest reach the API and everything else reaches the route table.
 */
export const ProxyRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const proxy = yield* makeMeteredProxy
    yield* router.add("*", "/*", proxy)
  })
)
