/**
 * One side of the gateway benchmark, in a process of its own so its CPU time is its own:
 *
 *   tsx packages/http/bench/target.ts bare     <upstream-url>   a bare Node + undici proxy (the floor)
 *   tsx packages/http/bench/target.ts embedded <upstream-url>   Tollgate on PGlite + the in-process limiter
 *   tsx packages/http/bench/target.ts postgres <upstream-url>   Tollgate on PostgreSQL + Redis (DATABASE_URL, REDIS_URL)
 *
 * Prints one JSON line `{ "url": …, "key": … }` once it listens; answers an IPC "cpu" message
 * with its `process.cpuUsage()`; exits on "stop".
 */
import { HttpServer } from "@effect/platform"
import type { Credits, IdempotencyKey, PlanId, ProjectId, RouteId } from "@tollgate/core"
import { Catalog, defaultPlans, KeyIssuer, Ledger, Project, ProjectStore, RateLimitPolicy, Route } from "@tollgate/core"
import type { Category } from "@tollgate/core"
import { Effect, Layer, ManagedRuntime } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Agent } from "undici"
import { gatewayServer, serverUrl, UseCasesLive } from "../src/GatewayServer.js"
import { embeddedStack, memoryStack, productionStack } from "../src/Stack.js"

const [mode, upstream] = [process.argv[2], process.argv[3]!]
const cleanups: Array<() => Promise<void> | void> = []

if (process.env["PROFILE"] === undefined) process.on("SIGINT", () => process.exit(0))

const announce = (info: { url: string; key: string }) => process.stdout.write(`${JSON.stringify(info)}\n`)

process.on("message", async (message) => {
  if (message === "cpu") process.send?.({ cpu: process.cpuUsage(), rss: process.memoryUsage().rss })
  if (message === "stop") {
    for (const cleanup of cleanups.reverse()) await cleanup()
    process.exit(0)
  }
})

/** The floor: what any proxy must do at least — accept, forward over keep-alive, stream back. */
const bare = async () => {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
  const origin = new URL(upstream).origin
  const server = createServer(async (req, res) => {
    try {
      const response = await agent.request({
        origin,
        path: req.url ?? "/",
        method: req.method as "GET",
        headers: Object.fromEntries(Object.entries(req.headers).filter(([name]) => name !== "host")) as Record<
          string,
          string
        >,
        body: req.method === "GET" || req.method === "HEAD" ? null : req
      })
      res.writeHead(response.statusCode, response.headers as Record<string, string>)
      response.body.pipe(res)
    } catch {
      res.writeHead(502).end()
    }
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  announce({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, key: "" })
}

const tollgate = async (stack: Layer.Layer<any, unknown>) => {
  const runtime = ManagedRuntime.make(
    gatewayServer(Layer.empty, { port: 0, host: "127.0.0.1" }).pipe(
      Layer.provideMerge(UseCasesLive),
      Layer.provideMerge(stack)
    ) as Layer.Layer<any, unknown, never>
  )
  cleanups.push(() => runtime.dispose())
  const url = serverUrl((await runtime.runPromise(HttpServer.HttpServer)).address)
  const key = await runtime.runPromise(Effect.gen(function*() {
    const catalog = yield* Catalog
    const plan = yield* catalog.putPlan({
      ...defaultPlans[2]!,
      id: "bench" as PlanId,
      name: "Bench",
      public: false,
      concurrencyCap: 10_000,
      rateLimits: [
        new RateLimitPolicy({ name: "per_second", scope: "key", limit: 1_000_000, windowMs: 1_000 }),
        new RateLimitPolicy({ name: "per_day", scope: "project", limit: 1_000_000_000, windowMs: 86_400_000 })
      ]
    })
    yield* catalog.putRoute(
      new Route({
        id: "search" as RouteId,
        method: "GET",
        pathPrefix: "/api/search",
        upstream,
        category: "search" as Category
      })
    )
    const project = new Project({
      id: "bench" as ProjectId,
      name: "Bench",
      planId: plan.id,
      planVersion: plan.version,
      createdAt: Date.now()
    })
    yield* (yield* ProjectStore).put(project)
    yield* (yield* Ledger).grant({
      idempotencyKey: `bench-grant-${Date.now()}` as IdempotencyKey,
      projectId: project.id,
      amount: 1_000_000_000 as Credits,
      source: "promotion"
    })
    return (yield* (yield* KeyIssuer).issue(project.id, "test")).secret
  }) as Effect.Effect<string, unknown, never>)
  announce({ url, key })
}

if (mode === "bare") await bare()
else if (mode === "embedded") {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-bench-"))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  await tollgate(embeddedStack(join(dir, "db")))
} else if (mode === "postgres") await tollgate(productionStack)
else if (mode === "memory") await tollgate(memoryStack)
else {
  process.stderr.write(`unknown mode ${mode}\n`)
  process.exit(2)
}
