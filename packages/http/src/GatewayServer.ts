/**
 * The gateway process's HTTP server: the management API and the metered proxy on one port.
 */
import type { HttpServer } from "@effect/platform"
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Billing, Gateway, KeyIssuer, Subscriptions } from "@tollgate/core"
import { Cause, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { makeProblem, problemResponse } from "./Problem.js"
import type { IsolationOptions } from "./proxy/Isolation.js"
import { defaultIsolationOptions, isolationLayer } from "./proxy/Isolation.js"
import { UpstreamAgentLive } from "./proxy/MeteredProxy.js"
import { isSafePath } from "./proxy/MeteredProxy.js"
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
            : problemResponse(
              makeProblem(
                400,
                "invalid_path",
                "Invalid path",
                "The path has dot segments, encoded separators or bad escapes"
              )
            )
        )
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.as(
        Effect.logError("request failed", Cause.pretty(cause)),
        problemResponse(
          makeProblem(500, "internal_error", "Internal error", "The gateway failed to answer this request")
        )
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

/** Serves `routes` and the proxy on `host:port`; the proxy's own services are built here. */
export const gatewayServer = <E, R>(routes: Layer.Layer<never, E, R>, options: GatewayServerOptions) =>
  HttpLayerRouter.serve(Layer.mergeAll(routes, ProxyRoutes, ProblemFallback), {
    disableLogger: true,
    disableListenLog: true,
    // ids may be up to 200 characters; the router refuses longer path parameters than 100 by default
    routerConfig: { maxParamLength: 256 }
  }).pipe(
    Layer.provide(Layer.mergeAll(isolationLayer(options.isolation ?? defaultIsolationOptions), UpstreamAgentLive)),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host }))
  )

/** The address the server listens on, as a base URL. */
export const serverUrl = (address: HttpServer.Address): string =>
  address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : `http://unix:${address.path}`
