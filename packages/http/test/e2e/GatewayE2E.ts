/**
 * The gateway end to end, over real HTTP, in front of real upstream processes: written once and
 * run on every stack (embedded PGlite, PostgreSQL + Redis).
 */
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { ApiKeyId, Category, Credits, IdempotencyKey, PlanId, ProjectId, RouteId } from "@tollgate/core"
import {
  Catalog,
  defaultPlans,
  demoContributor,
  earningsAccount,
  KeyIssuer,
  Ledger,
  Project,
  ProjectStore,
  RateLimitPolicy,
  revenueAccount,
  Route,
  seedDemoCatalog,
  UsageLog
} from "@tollgate/core"
import { Effect, Layer, ManagedRuntime } from "effect"
import type { IncomingHttpHeaders } from "node:http"
import { request as httpRequest } from "node:http"
import { gatewayServer, serverUrl, UseCasesLive } from "../../src/GatewayServer.js"
import type { Ports } from "../../src/Stack.js"
import type { UpstreamProcess } from "../support/Upstream.js"
import { startUpstreamProcess } from "../support/Upstream.js"

const cat = (s: string) => s as Category
const credits = (n: number) => n as Credits

const route = (
  id: string,
  pathPrefix: string,
  upstream: string,
  extra: Partial<ConstructorParameters<typeof Route>[0]> = {}
) => new Route({ id: id as RouteId, method: "*", pathPrefix, upstream, category: cat("search"), ...extra })

interface Fixture {
  readonly base: string
  readonly keys: Record<string, string>
  readonly run: <A, E>(effect: Effect.Effect<A, E, any>) => Promise<A>
}

export interface StackUnderTest {
  readonly name: string
  readonly layer: () => Layer.Layer<Ports, unknown>
  readonly skip?: boolean
}

const BREAKER_THRESHOLD = 3

export const gatewayE2E = (stack: StackUnderTest) =>
  describe.skipIf(stack.skip === true)(`gateway end to end (${stack.name})`, () => {
    let upstreamA: UpstreamProcess
    let upstreamB: UpstreamProcess
    let stopUpstreams = async () => {}
    let fixture: Fixture
    let runtime: ManagedRuntime.ManagedRuntime<any, any> | undefined

    beforeAll(async () => {
      // afterAll stops whichever started, even if the other did not
      const started = await Promise.allSettled([startUpstreamProcess(), startUpstreamProcess()])
      const running = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []))
      stopUpstreams = async () => {
        await Promise.all(running.map((u) => u.stop()))
      }
      for (const s of started) if (s.status === "rejected") throw s.reason
      ;[upstreamA, upstreamB] = running as [UpstreamProcess, UpstreamProcess]
      const app = gatewayServer(Layer.empty, {
        port: 0,
        host: "127.0.0.1",
        isolation: { breaker: { failureThreshold: BREAKER_THRESHOLD, cooldownMs: 600_000 } }
      })
      runtime = ManagedRuntime.make(app.pipe(Layer.provideMerge(UseCasesLive), Layer.provideMerge(stack.layer())))
      const run = <A, E>(effect: Effect.Effect<A, E, any>) => runtime!.runPromise(effect as Effect.Effect<A, E, never>)
      const base = serverUrl((await run(HttpServer.HttpServer)).address)

      const keys = await run(Effect.gen(function*() {
        const catalog = yield* Catalog
        const projects = yield* ProjectStore
        const issuer = yield* KeyIssuer
        const ledger = yield* Ledger
        const now = Date.now()
        yield* seedDemoCatalog(upstreamA.url, now)
        for (
          const r of [
            route("echo", "/api/echo", upstreamA.url, { price: credits(1) }),
            route("bytes", "/api/bytes", upstreamA.url, { price: credits(1) }),
            route("status", "/api/status", upstreamA.url, { price: credits(2) }),
            route("slow", "/api/slow", upstreamA.url, { price: credits(2), timeoutMs: 300 }),
            route("flaky", "/b/api", upstreamB.url, { price: credits(1) }),
            route("dead", "/dead", "http://127.0.0.1:9", { price: credits(1) })
          ]
        ) yield* catalog.putRoute(r)
        const tiny = yield* catalog.putPlan({
          ...defaultPlans[2]!,
          id: "tiny-cap" as PlanId,
          name: "Tiny cap",
          public: false,
          concurrencyCap: 3,
          rateLimits: [new RateLimitPolicy({ name: "per_second", scope: "key", limit: 100_000, windowMs: 1_000 })],
          lowBalanceThreshold: credits(0)
        })
        for (const id of ["flood-a", "flood-b", "broke"]) {
          yield* projects.put(
            new Project({ id: id as ProjectId, name: id, planId: tiny.id, planVersion: tiny.version, createdAt: now })
          )
        }
        const out: Record<string, string> = {}
        for (const id of ["demo-free", "demo-basic", "demo-pro", "flood-a", "flood-b", "broke"]) {
          out[id] = (yield* issuer.issue(id as ProjectId, "test")).secret
          if (id !== "broke") {
            yield* ledger.grant({
              idempotencyKey: `e2e-grant:${id}` as IdempotencyKey,
              projectId: id as ProjectId,
              amount: credits(10_000),
              source: "promotion"
            })
          }
        }
        const revoked = yield* issuer.issue("demo-pro" as ProjectId, "test")
        yield* issuer.revoke(revoked.key.id as ApiKeyId)
        out["revoked"] = revoked.secret
        return out
      }))
      fixture = { base, keys, run }
    })

    afterAll(async () => {
      await runtime?.dispose()
      await stopUpstreams()
    })

    const call = (path: string, key: string | undefined, init: RequestInit = {}) =>
      fetch(`${fixture.base}${path}`, {
        ...init,
        headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...(init.headers ?? {}) }
      })

    /** A request exactly as written (fetch would normalize the path and refuses some headers). */
    const raw = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const base = new URL(fixture.base)
        const req = httpRequest({ host: base.hostname, port: base.port, path, headers, agent: false }, (res) => {
          let body = ""
          res.setEncoding("utf8")
          res.on("data", (c: string) => (body += c))
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        })
        req.on("error", reject)
        req.end()
      })

    const available = (project: string) =>
      fixture.run(Effect.map(Effect.flatMap(Ledger, (l) => l.balance(project as ProjectId)), (b) => b.available))

    const expectProblem = async (response: Response, status: number, code: string) => {
      const body = await response.json() as Record<string, unknown>
      assert.strictEqual(response.status, status, JSON.stringify(body))
      assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
      assert.strictEqual(body["code"], code)
      assert.strictEqual(body["status"], status)
      assert.isString(body["title"])
      assert.isString(body["type"])
      return body
    }

    it("a served call is charged at the upstream's reported cost, split with the contributor, and says so", async () => {
      const before = await available("demo-basic")
      const earnedBefore = await fixture.run(
        Effect.flatMap(Ledger, (l) => l.accountBalance(earningsAccount(demoContributor)))
      )
      const response = await call("/api/datasets/weather-eu/rows?limit=25", fixture.keys["demo-basic"])
      const body = await response.json() as { rows: Array<unknown> }
      assert.strictEqual(response.status, 200)
      assert.strictEqual(body.rows.length, 25)
      // 25 rows are 3 units, under the price of 5 for the query category on Basic
      assert.strictEqual(response.headers.get("tollgate-credits-charged"), "3")
      assert.strictEqual(response.headers.get("tollgate-credits-remaining"), String(before - 3))
      assert.match(response.headers.get("tollgate-request-id") ?? "", /^req_[0-9a-f]{32}$/)
      assert.include(response.headers.get("ratelimit-policy") ?? "", "\"per_second\";q=10;w=1")
      assert.match(response.headers.get("ratelimit") ?? "", /"per_second";r=\d+;t=\d+/)
      assert.strictEqual(await available("demo-basic"), before - 3)
      const earnedAfter = await fixture.run(
        Effect.flatMap(Ledger, (l) => l.accountBalance(earningsAccount(demoContributor)))
      )
      // 30 % of 3 credits, in whole credits
      assert.strictEqual(earnedAfter - earnedBefore, 0n + BigInt(Math.floor(3 * 0.3)))
      const trial = await fixture.run(Effect.flatMap(Ledger, (l) => l.trialBalance))
      assert.strictEqual([...trial.values()].reduce((a, b) => a + b, 0n), 0n)
      assert.isAbove(Number(await fixture.run(Effect.flatMap(Ledger, (l) => l.accountBalance(revenueAccount)))), 0)
    })

    it("the upstream sees identity headers and never the caller's credentials", async () => {
      const response = await raw("/api/echo?x=1", {
        "x-api-key": fixture.keys["demo-pro"]!,
        "x-tollgate-project": "forged",
        connection: "keep-alive, x-drop-me",
        "x-drop-me": "1"
      })
      const echo = JSON.parse(response.body) as { headers: Record<string, string>; identity: Record<string, string> }
      assert.strictEqual(response.status, 200)
      assert.strictEqual(echo.identity["x-tollgate-project"], "demo-pro")
      assert.strictEqual(echo.identity["x-tollgate-plan"], "pro@1")
      assert.strictEqual(echo.identity["x-tollgate-request-id"], response.headers["tollgate-request-id"])
      assert.isUndefined(echo.headers["x-api-key"])
      assert.isUndefined(echo.headers["authorization"])
      assert.isUndefined(echo.headers["x-drop-me"])
    })

    it("401 for a missing, malformed, unknown or revoked key, before anything is reserved", async () => {
      await expectProblem(await call("/api/search", undefined), 401, "missing_key")
      const missing = await call("/api/search", undefined)
      assert.strictEqual(missing.headers.get("www-authenticate"), "Bearer realm=\"tollgate\"")
      await expectProblem(await call("/api/search", "tg_test_nonsense"), 401, "malformed_key")
      const pro = fixture.keys["demo-pro"]!
      const flipped = pro.slice(0, 10) + (pro[10] === "a" ? "b" : "a") + pro.slice(11)
      await expectProblem(await call("/api/search", flipped), 401, "malformed_key")
      await expectProblem(await call("/api/search", fixture.keys["revoked"]), 401, "revoked_key")
    })

    it("403 names the cheapest plan that allows the category", async () => {
      const body = await expectProblem(
        await call("/api/datasets/weather-eu/rows", fixture.keys["demo-free"]),
        403,
        "not_entitled"
      )
      assert.deepInclude(body["upgradeTo"] as object, { id: "basic", name: "Basic" })
    })

    it("402 with the balance and a top-up link when the wallet cannot cover the price, and nothing moves", async () => {
      const body = await expectProblem(await call("/api/search", fixture.keys["broke"]), 402, "insufficient_credits")
      assert.strictEqual(body["available"], 0)
      assert.strictEqual(body["required"], 1)
      assert.deepStrictEqual(body["topUp"], { method: "POST", href: "/v1/topups" })
    })

    it("429 names the limit, with Retry-After and the RateLimit headers; a refused call is not charged", async () => {
      const key = fixture.keys["demo-free"]!
      const before = await available("demo-free")
      const statuses: Array<number> = []
      let refused: Response | undefined
      for (let i = 0; i < 4; i++) {
        const r = await call(`/api/search?q=${i}`, key)
        statuses.push(r.status)
        if (r.status === 429) refused = r
        else await r.arrayBuffer()
      }
      assert.includeMembers(statuses, [200, 429])
      const body = await expectProblem(refused!, 429, "rate_limited")
      assert.strictEqual(body["limit"], "per_second")
      assert.match(refused!.headers.get("retry-after") ?? "", /^\d+$/)
      assert.include(refused!.headers.get("ratelimit-policy") ?? "", "\"per_second\";q=2;w=1")
      const served = statuses.filter((s) => s === 200).length
      assert.strictEqual(await available("demo-free"), before - served)
    })

    it("an upstream 500 is passed through and charges nothing", async () => {
      const before = await available("demo-pro")
      const response = await call("/api/status/500", fixture.keys["demo-pro"])
      assert.strictEqual(response.status, 500)
      await response.arrayBuffer()
      assert.strictEqual(response.headers.get("tollgate-credits-charged"), "0")
      assert.strictEqual(await available("demo-pro"), before)
    })

    it("an upstream timeout is a 504 and an unreachable upstream a 502; neither charges", async () => {
      const before = await available("demo-pro")
      await expectProblem(await call("/api/slow?ms=2000", fixture.keys["demo-pro"]), 504, "upstream_timeout")
      await expectProblem(await call("/dead/x", fixture.keys["demo-pro"]), 502, "upstream_unreachable")
      assert.strictEqual(await available("demo-pro"), before)
      const rows = await fixture.run(
        Effect.flatMap(
          UsageLog,
          (u) => u.list({ projectId: "demo-pro" as ProjectId, from: 0, to: Date.now() + 1 }, { limit: 500 })
        )
      )
      const voided = rows.records.filter((r) => r.routeId === "slow" || r.routeId === "dead")
      assert.isAtLeast(voided.length, 2)
      for (const r of voided) {
        assert.strictEqual(r.outcome, "voided")
        assert.strictEqual(r.credits, 0)
      }
    })

    it("404 for a path no route serves, 400 for a path that could escape its route; neither charges", async () => {
      const before = await available("demo-pro")
      await expectProblem(await call("/nowhere", fixture.keys["demo-pro"]), 404, "route_not_found")
      for (const path of ["/api/search/%2e%2e/%2e%2e/admin", "/api/search/../x", "/api/search%2Fx", "/api/%zz"]) {
        const r = await raw(path, { authorization: `Bearer ${fixture.keys["demo-pro"]}` })
        assert.strictEqual(r.status, 400, `${path}: ${JSON.stringify(r)}`)
        assert.strictEqual(r.headers["content-type"], "application/problem+json")
        assert.strictEqual(JSON.parse(r.body).code, "invalid_path")
      }
      await expectProblem(
        await call("/api/datasets/unknown-set/rows", fixture.keys["demo-pro"]),
        404,
        "unknown_dataset"
      )
      assert.strictEqual(await available("demo-pro"), before)
    })

    it("streams 256 MiB down and 256 MiB up without buffering them", async () => {
      const key = fixture.keys["demo-pro"]!
      const mib = 256
      const baseline = process.memoryUsage()
      let peak = 0
      const sample = setInterval(() => {
        const m = process.memoryUsage()
        peak = Math.max(peak, m.arrayBuffers + m.heapUsed - baseline.arrayBuffers - baseline.heapUsed)
      }, 5)
      try {
        const down = await call(`/api/bytes?mb=${mib}`, key)
        assert.strictEqual(down.status, 200)
        let received = 0
        for await (const chunk of down.body as unknown as AsyncIterable<Uint8Array>) received += chunk.length
        assert.strictEqual(received, mib * 1024 * 1024)

        const chunk = new Uint8Array(256 * 1024).fill(7)
        let sent = 0
        const upload = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= mib * 1024 * 1024) return controller.close()
            sent += chunk.length
            controller.enqueue(chunk)
          }
        })
        const up = await call("/api/echo", key, {
          method: "POST",
          body: upload,
          headers: { "content-type": "application/octet-stream" },
          duplex: "half"
        } as RequestInit)
        const echo = await up.json() as { bytes: number }
        assert.strictEqual(up.status, 200)
        assert.strictEqual(echo.bytes, mib * 1024 * 1024)
      } finally {
        clearInterval(sample)
      }
      // Both directions moved 512 MiB through this process (client and gateway both live here).
      // Garbage not yet collected stays well under the bound (about 30 MiB on a quiet machine, up to
      // about 60 MiB under a loaded test run); buffering either direction would exceed it.
      assert.isBelow(peak, 128 * 1024 * 1024, `peak growth ${Math.round(peak / 1048576)} MiB`)
    })

    it("one tenant's flood meets its concurrency cap and does not starve another tenant", async () => {
      const flood = Array.from({ length: 40 }, () => call("/api/slow?ms=150", fixture.keys["flood-a"]))
      await new Promise((r) => setTimeout(r, 20))
      const started = Date.now()
      const other = await call("/api/search?q=calm", fixture.keys["flood-b"])
      const otherMs = Date.now() - started
      assert.strictEqual(other.status, 200)
      await other.arrayBuffer()
      const results = await Promise.all(flood)
      const bodies = await Promise.all(results.map((r) => r.json() as Promise<Record<string, unknown>>))
      const served = results.filter((r) => r.status === 200).length
      const refused = bodies.filter((_, i) => results[i]!.status === 429)
      // 40 calls of 150 ms against a cap of 3: most are refused at once, none waits in a queue
      assert.isAtLeast(refused.length, 20)
      assert.isAtLeast(served, 3)
      for (const b of refused) assert.strictEqual(b["code"], "concurrency_limited")
      assert.isBelow(otherMs, 1_000)
    })

    it("a caller who goes away before the answer is not charged, and its concurrency slot comes back", async () => {
      const key = fixture.keys["flood-b"]!
      const before = await available("flood-b")
      const since = Date.now()
      // as many calls as the plan's cap, each abandoned while the upstream is still working
      const abandoned = Array.from({ length: 3 }, async () => {
        const controller = new AbortController()
        const pending = call("/api/slow?ms=400", key, { signal: controller.signal })
        setTimeout(() => controller.abort(), 100)
        return pending.then(() => "answered", () => "aborted")
      })
      assert.deepStrictEqual(await Promise.all(abandoned), ["aborted", "aborted", "aborted"])
      // the gateway finds the callers gone once the upstream has answered, and voids their holds
      const settled = () =>
        fixture.run(Effect.map(
          Effect.flatMap(UsageLog, (log) =>
            log.list(
              { projectId: "flood-b" as ProjectId, routeId: "slow" as RouteId, from: since, to: Date.now() + 1 },
              {
                limit: 10
              }
            )),
          (page) => page.records
        ))
      const deadline = Date.now() + 5_000
      while ((await settled()).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      const rows = await settled()
      assert.deepStrictEqual(rows.map((r) => [r.outcome, r.credits]), [["voided", 0], ["voided", 0], ["voided", 0]])
      assert.strictEqual(await available("flood-b"), before)
      // none of the three slots leaked: a cap of 3 would refuse this call otherwise
      const next = await call("/api/search?q=after", key)
      assert.strictEqual(next.status, 200)
      await next.arrayBuffer()
      assert.isBelow(await available("flood-b"), before)
    })

    it("callers who abandon their uploads are not charged and do not trip the upstream's breaker", async () => {
      const key = fixture.keys["demo-pro"]!
      const before = await available("demo-pro")
      for (let i = 0; i < BREAKER_THRESHOLD + 2; i++) {
        const controller = new AbortController()
        const body = new ReadableStream<Uint8Array>({
          start(stream) {
            stream.enqueue(new Uint8Array(64 * 1024))
            // the rest never comes: the caller gives up
            setTimeout(() => controller.abort(), 100)
          }
        })
        await call("/api/echo", key, {
          method: "POST",
          body,
          signal: controller.signal,
          duplex: "half"
        } as RequestInit).then((r) => r.arrayBuffer(), () => undefined).catch(() => undefined)
      }
      // the upstream is healthy: its breaker stays closed for every tenant
      const next = await call("/api/search?q=still-open", key)
      assert.strictEqual(next.status, 200)
      await next.arrayBuffer()
      const deadline = Date.now() + 5_000
      while (await available("demo-pro") !== before - 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
      }
      // only the call that was answered is charged
      assert.strictEqual(await available("demo-pro"), before - 1)
    })

    it("a failing upstream trips its breaker; the other upstream keeps serving", async () => {
      const key = fixture.keys["demo-pro"]!
      for (let i = 0; i < BREAKER_THRESHOLD; i++) {
        const r = await call("/b/api/status/503", key)
        assert.strictEqual(r.status, 503)
        await r.arrayBuffer()
      }
      const before = await available("demo-pro")
      const started = Date.now()
      await expectProblem(await call("/b/api/status/200", key), 503, "upstream_circuit_open")
      assert.isBelow(Date.now() - started, 500)
      assert.strictEqual(await available("demo-pro"), before)
      const other = await call("/api/search?q=still-fine", key)
      assert.strictEqual(other.status, 200)
      await other.arrayBuffer()
    })
  })
