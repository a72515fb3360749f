/**
 * The gateway process's HTTP server: the management API and the metered proxy on one port.
 */
import type { HttpServer } from "@effect/platform"
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Billing, Gateway, KeyIssuer, Subscriptions } from "@tollgate/core"
import { Cause, Effect, Layer } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { Server } from "node:http"
import { internalErrorProblem, invalidPathProblem, makeProblem, problemResponse } from "./Problem.js"
import type { IsolationOptions } from "./proxy/Isolation.js"
import { defaultIsolationOptions, isolationLayer } from "./proxy/Isolation.js"
import type { NodeProxyHandler } from "./proxy/MeteredProxy.js"
import { isSafePath, MeteredProxy, MeteredProxyLive, UpstreamAgentLive } from "./proxy/MeteredProxy.js"
import { ProxyRoutes } from "./proxy/ProxyRoutes.js"

/**
 * The last word on every request: a path the router cannot even read (bad percent-encoding) is a
 * 400, no route at all a 404, and a defect a 500 — each as a problem document, the defect logged
 * with its cause and never shown to the caller.
 */
export const ProblemFallback = HttpLayerRouter.middleware((app) =>
  app.pipe(
    Effect.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      if (failure._tag === "Some" && (failure.value as { _tag?: string })._tag === "RouteNotFound") {
        const url = (failure.value as unknown as { request: { url: string } }).request.url
        const path = url.split("?")[0] ?? url
        return Effect.succeed(
          isSafePath(path)
            ? problemResponse(makeProblem(404, "route_not_found", "Not found", "Nothing is served at this path"))
            : problemResponse(invalidPathProblem)
        )
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.as(
        Effect.logError("request failed", Cause.pretty(cause)),
        problemResponse(internalErrorProblem)
      )
    })
  ), { global: true })

/** The use cases over whatever stack provides the ports; Billing applies plan changes through Subscriptions. */
export const UseCasesLive = Layer.mergeAll(
  Gateway.Default,
  KeyIssuer.Default,
  Billing.Default.pipe(Layer.provideMerge(Subscriptions.Default))
)

export interface GatewayServerOptions {
  readonly port: number
  readonly host: string
  readonly isolation?: IsolationOptions | undefined
}

/**
 * The first path segments the router's other routes claim (`v1`, `admin`, `docs`, …), learnt from
 * the routes as they are added; `true` when one of them could match any first segment (a
 * parameter or wildcard there), so that nothing may bypass the router.
 */
interface Claimed {
  segments: Set<string>
  all: boolean
}

/** The first segment of a path (or of a request target, whose query and fragment it stops at). */
const firstSegment = (path: string): string => {
  const start = path.startsWith("/") ? 1 : 0
  let end = start
  while (end < path.length) {
    const c = path.charCodeAt(end)
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break
    end++
  }
  return path.slice(start, end)
}

const claim = (claimed: Claimed, path: string) => {
  const segment = firstSegment(path)
  if (segment.includes(":") || segment.includes("*") || segment === "") claimed.all = true
  // the router matches paths case-insensitively
  else claimed.segments.add(segment.toLowerCase())
}

/** The router, noting the path of every route added through it. */
const claiming = (
  router: HttpLayerRouter.HttpRouter,
  claimed: Claimed,
  prefix = ""
): HttpLayerRouter.HttpRouter => ({
  ...router,
  // every part of a prefix claims its first segment (claiming too much only sends more to the
  // router); the router puts a nested prefix in front of the outer one
  prefixed: (p) => {
    claim(claimed, p)
    return claiming(router.prefixed(p), claimed, p + prefix)
  },
  add: (method, path, handler, options) => {
    claim(claimed, prefix + path)
    return router.add(method, path, handler, options)
  },
  addAll: (routes) => {
    for (const route of routes) claim(claimed, prefix + route.path)
    return router.addAll(routes)
  }
})

/**
 * Node's server, with the proxied calls taken off the router: a request whose first path segment
 * no other route claims goes straight to the proxy's handler (what the router would have chosen,
 * its `/*` route, without the platform's request and response machinery); anything else goes to
 * the router as before, and so does anything the router might read differently from the plain
 * segment: an absolute URL, a percent escape, a `;` (the router cuts the path there) or an
 * empty first segment (`//v1/…`: the router ignores repeated slashes). Segments are compared
 * in lower case, as the router matches.
 */
class GatewayNodeServer extends Server {
  proxy: NodeProxyHandler | undefined = undefined
  readonly claimed: Claimed = { segments: new Set(), all: false }

  override emit(event: string | symbol, ...args: Array<any>): boolean {
    if (event === "request" && this.proxy !== undefined && !this.claimed.all) {
      const request = args[0] as IncomingMessage
      const url = request.url ?? ""
      if (url.startsWith("/")) {
        const segment = firstSegment(url)
        if (
          segment.length > 0 && !segment.includes("%") && !segment.includes(";") &&
          !this.claimed.segments.has(segment.toLowerCase())
        ) {
          void this.proxy(request, args[1] as ServerResponse)
          return true
        }
      }
    }
    return (super.emit as (event: string | symbol, ...args: Array<any>) => boolean).call(this, event, ...args)
  }
}

/** Serves `routes` and the proxy on `host:port`; the proxy's own services are built here. */
export const gatewayServer = <E, R>(routes: Layer.Layer<never, E, R>, options: GatewayServerOptions) =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = new GatewayNodeServer()
    const claimingRoutes = routes.pipe(
      Layer.provide(Layer.effect(
        HttpLayerRouter.HttpRouter,
        Effect.map(HttpLayerRouter.HttpRouter, (router) => claiming(router, server.claimed))
      ))
    )
    // once every route has been added (so every claim is known), and until the server closes
    const direct = Layer.scopedDiscard(Effect.acquireRelease(
      Effect.map(MeteredProxy, (proxy) => {
        server.proxy = proxy
      }),
      () =>
        Effect.sync(() => {
          server.proxy = undefined
        })
    ))
    const app = direct.pipe(Layer.provideMerge(Layer.mergeAll(claimingRoutes, ProxyRoutes, ProblemFallback)))
    return HttpLayerRouter.serve(app, {
      disableLogger: true,
      disableListenLog: true,
      // ids may be up to 200 characters; the router refuses longer path parameters than 100 by default
      routerConfig: { maxParamLength: 256 }
    }).pipe(
      Layer.provide(MeteredProxyLive),
      Layer.provide(Layer.mergeAll(isolationLayer(options.isolation ?? defaultIsolationOptions), UpstreamAgentLive)),
      Layer.provideMerge(NodeHttpServer.layer(() => server, { port: options.port, host: options.host }))
    )
  }))

/** The address the server listens on, as a base URL. */
export const serverUrl = (address: HttpServer.Address): string =>
  address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : `http://unix:${address.path}`
