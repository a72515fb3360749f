/**
 * The rate limiter's store stops answering: fail-open routes keep serving (marked degraded on the
 * usage row), fail-closed routes answer 503 with a problem document. Over real HTTP, with a
 * limiter whose store is down.
 */
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { Credits, IdempotencyKey, ProjectId } from "@tollgate/core"
import { KeyIssuer, Ledger, RateLimiter, RateLimiterUnavailable, seedDemoCatalog, UsageLog } from "@tollgate/core"
import { Effect, Layer, ManagedRuntime } from "effect"
import { gatewayServer, serverUrl, UseCasesLive } from "../../src/GatewayServer.js"
import { memoryStack } from "../../src/Stack.js"
import type { UpstreamProcess } from "../support/Upstream.js"
import { startUpstreamProcess } from "../support/Upstream.js"

const LimiterDown = Layer.succeed(RateLimiter, {
  consume: () => Effect.fail(new RateLimiterUnavailable({ message: "connection refused" }))
})

describe("gateway with its rate limiter down", () => {
  let runtime: ManagedRuntime.ManagedRuntime<any, any>
  let base = ""
  let key = ""

  let upstream: UpstreamProcess | undefined

  beforeAll(async () => {
    upstream = await startUpstreamProcess()
    runtime = ManagedRuntime.make(
      gatewayServer(Layer.empty, { port: 0, host: "127.0.0.1" }).pipe(
        Layer.provideMerge(UseCasesLive),
        Layer.provideMerge(Layer.merge(memoryStack, LimiterDown))
      )
    )
    base = serverUrl((await runtime.runPromise(HttpServer.HttpServer)).address)
    key = await runtime.runPromise(Effect.gen(function*() {
      yield* seedDemoCatalog(upstream!.url, Date.now())
      yield* (yield* Ledger).grant({
        idempotencyKey: "outage-grant" as IdempotencyKey,
        projectId: "demo-pro" as ProjectId,
        amount: 1_000 as Credits,
        source: "promotion"
      })
      return (yield* (yield* KeyIssuer).issue("demo-pro" as ProjectId, "test")).secret
    }))
  })
  afterAll(async () => {
    await runtime?.dispose()
    await upstream?.stop()
  })

  it("a fail-closed route answers 503 dependency_unavailable and charges nothing", async () => {
    const before = await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.balance("demo-pro" as ProjectId)))
    const response = await fetch(`${base}/api/export`, { method: "POST", headers: { authorization: `Bearer ${key}` } })
    const body = await response.json() as Record<string, unknown>
    assert.strictEqual(response.status, 503)
    assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
    assert.strictEqual(body["code"], "dependency_unavailable")
    assert.strictEqual(body["dependency"], "rate_limiter")
    assert.notInclude(JSON.stringify(body), "connection refused")
    const after = await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.balance("demo-pro" as ProjectId)))
    assert.strictEqual(after.available, before.available)
  })

  it("a fail-open route serves, charges, and its usage row says the limiter was degraded", async () => {
    const response = await fetch(`${base}/api/search?q=x`, { headers: { authorization: `Bearer ${key}` } })
    assert.strictEqual(response.status, 200)
    await response.arrayBuffer()
    assert.strictEqual(response.headers.get("tollgate-credits-charged"), "1")
    const rows = await runtime.runPromise(
      Effect.flatMap(
        UsageLog,
        (u) => u.list({ projectId: "demo-pro" as ProjectId, from: 0, to: Date.now() + 1 }, { limit: 10 })
      )
    )
    const search = rows.records.find((r) => r.routeId === "search")
    assert.strictEqual(search?.limiter, "degraded_open")
    const exported = rows.records.find((r) => r.routeId === "export")
    assert.strictEqual(exported?.limiter, "degraded_closed")
    assert.strictEqual(exported?.status, 503)
  })
})
