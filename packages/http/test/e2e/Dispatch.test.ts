/**
 * The server hands proxied calls to the proxy without the router, and must choose exactly as the
 * router would: the management API's paths stay the API's even when the route table has a
 * catch-all route, and the proxy still serves what the API leaves under its own first segments.
 */
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { SandboxPaymentProviderLive } from "@tollgate/adapters"
import type { Credits, ProjectId, RouteId } from "@tollgate/core"
import { Catalog, Ledger, Route } from "@tollgate/core"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { AdminToken } from "../../src/api/AdminToken.js"
import { BillingSettings } from "../../src/api/BillingSettings.js"
import { ManagementApiRoutes } from "../../src/api/ManagementApi.js"
import { WebhookSecrets } from "../../src/api/WebhookSecrets.js"
import { gatewayServer, serverUrl, UseCasesLive } from "../../src/GatewayServer.js"
import { chargedHeader, requestIdHeader } from "../../src/proxy/MeteredProxy.js"
import { memoryStack } from "../../src/Stack.js"
import { demoTenant } from "../support/Tenant.js"
import type { UpstreamProcess } from "../support/Upstream.js"
import { startUpstreamProcess } from "../support/Upstream.js"

describe("which requests the proxy serves", () => {
  let runtime: ManagedRuntime.ManagedRuntime<any, any> | undefined
  let upstream: UpstreamProcess | undefined
  let base = ""
  let key = ""
  const project = "demo-pro" as ProjectId

  beforeAll(async () => {
    upstream = await startUpstreamProcess()
    runtime = ManagedRuntime.make(
      gatewayServer(ManagementApiRoutes, { port: 0, host: "127.0.0.1" }).pipe(
        Layer.provide(Layer.mergeAll(
          AdminToken.layer(Redacted.make("admin-token-for-the-dispatch-test")),
          WebhookSecrets.layer({ stripe: Option.none(), sandbox: Redacted.make("whsec_dispatch_test_secret") }),
          BillingSettings.layer(),
          SandboxPaymentProviderLive
        )),
        Layer.provideMerge(UseCasesLive),
        Layer.provideMerge(memoryStack)
      )
    )
    base = serverUrl((await runtime.runPromise(HttpServer.HttpServer)).address)
    const upstreamUrl = upstream.url
    key = await runtime.runPromise(Effect.gen(function*() {
      const secret = yield* demoTenant(upstreamUrl, project, 100)
      // every path the API does not serve is metered and sent upstream
      yield* (yield* Catalog).putRoute(
        new Route({
          id: "everything" as RouteId,
          method: "*",
          pathPrefix: "/",
          upstream: upstreamUrl,
          category: "search" as never,
          price: 1 as Credits
        })
      )
      return secret
    }))
  })
  afterAll(async () => {
    await runtime?.dispose()
    await upstream?.stop()
  })

  const get = (path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } })

  it("the API's paths are the API's, a catch-all route notwithstanding", async () => {
    const health = await get("/healthz")
    assert.strictEqual(health.status, 200)
    assert.isNull(health.headers.get(requestIdHeader))

    const me = await get("/v1/project")
    assert.strictEqual(me.status, 200)
    assert.strictEqual((await me.json() as { project: { id: string } }).project.id, project)

    // an unknown path under /v1 is the API's own 404, not a metered call
    const unknown = await get("/v1/no-such-endpoint")
    assert.strictEqual(unknown.status, 404)
    assert.strictEqual((await unknown.json() as { code: string }).code, "not_found")
    assert.isNull(unknown.headers.get(chargedHeader))

    const docs = await fetch(`${base}/openapi.json`)
    assert.strictEqual(docs.status, 200)
    assert.isNull(docs.headers.get(requestIdHeader))

    // what the router reads as the API's paths stays the API's: other cases, repeated slashes
    // (from clients joining a base URL that ends in a slash), a matrix parameter
    for (const path of ["/V1/project", "//v1/project", "/HEALTHZ", "/healthz;x"]) {
      const response = await get(path)
      assert.isNull(response.headers.get(requestIdHeader), path)
      assert.isNull(response.headers.get(chargedHeader), path)
      await response.arrayBuffer()
    }
  })

  it("the rest is metered, also under a first segment the API uses", async () => {
    const before = (await runtime!.runPromise(Effect.flatMap(Ledger, (l) => l.balance(project)))).available
    // /api/echo reaches the proxy without the router; /webhooks/echo through the router's
    // catch-all route, since the API serves /webhooks/stripe
    for (const path of ["/api/echo", "/webhooks/echo"]) {
      const response = await get(path)
      assert.isString(response.headers.get(requestIdHeader), path)
      await response.arrayBuffer()
    }
    const echoed = await get("/api/echo?x=1")
    assert.strictEqual(echoed.status, 200)
    assert.strictEqual(echoed.headers.get(chargedHeader), "1")
    assert.deepStrictEqual((await echoed.json() as { query: unknown }).query, { x: "1" })
    const after = (await runtime!.runPromise(Effect.flatMap(Ledger, (l) => l.balance(project)))).available
    // the upstream answers /webhooks/echo with a 404, which is not charged
    assert.strictEqual(before - after, 2)

    // the proxy's metrics are the ones /metrics shows
    const metrics = await (await fetch(`${base}/metrics`)).text()
    const value = (pattern: RegExp) => Number(metrics.match(pattern)?.[1] ?? 0)
    assert.isAtLeast(value(/tollgate_proxy_requests_total\{route="everything",status="200"\} (\d+)/), 2)
    assert.isAtLeast(value(/tollgate_proxy_requests_total\{route="everything",status="404"\} (\d+)/), 1)
    assert.isAtLeast(value(/tollgate_credits_charged_total\{route="everything"\} (\d+)/), 2)
    assert.isAtLeast(value(/tollgate_proxy_latency_seconds_count\{route="everything"\} (\d+)/), 3)
  })
})
