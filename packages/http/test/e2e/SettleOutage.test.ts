/**
 * The ledger stops answering between the hold and the capture: the caller gets a 503 problem and
 * not the upstream's answer for free, nothing is charged, and the hold's credit comes back when
 * it expires — no credit is lost and none is taken twice.
 */
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { makeMemoryLedger } from "@tollgate/adapters/memory/index"
import type { ProjectId } from "@tollgate/core"
import { Ledger, LedgerUnavailable } from "@tollgate/core"
import { Effect, Layer, ManagedRuntime } from "effect"
import { gatewayServer, serverUrl, UseCasesLive } from "../../src/GatewayServer.js"
import { memoryStack } from "../../src/Stack.js"
import { demoTenant } from "../support/Tenant.js"
import type { UpstreamProcess } from "../support/Upstream.js"
import { startUpstreamProcess } from "../support/Upstream.js"

let capturesDown = false

/** The in-memory ledger, whose captures fail while `capturesDown` is set. */
const FlakyLedger = Layer.effect(
  Ledger,
  Effect.map(makeMemoryLedger, (ledger) => ({
    ...ledger,
    capture: (request: Parameters<typeof ledger.capture>[0]) =>
      capturesDown ? Effect.fail(new LedgerUnavailable({ message: "connection lost" })) : ledger.capture(request)
  }))
)

describe("gateway when the ledger fails at settlement", () => {
  let runtime: ManagedRuntime.ManagedRuntime<any, any>
  let base = ""
  let key = ""
  const project = "demo-pro" as ProjectId
  const balance = () => runtime.runPromise(Effect.flatMap(Ledger, (l) => l.balance(project)))

  let upstream: UpstreamProcess | undefined

  beforeAll(async () => {
    upstream = await startUpstreamProcess()
    runtime = ManagedRuntime.make(
      gatewayServer(Layer.empty, { port: 0, host: "127.0.0.1" }).pipe(
        Layer.provideMerge(UseCasesLive),
        Layer.provideMerge(Layer.merge(memoryStack, FlakyLedger))
      )
    )
    base = serverUrl((await runtime.runPromise(HttpServer.HttpServer)).address)
    key = await runtime.runPromise(demoTenant(upstream.url, project, 100))
  })
  afterAll(async () => {
    await runtime?.dispose()
    await upstream?.stop()
  })

  it("answers 503, charges nothing, and the hold's credit returns when it expires", async () => {
    capturesDown = true
    const response = await fetch(`${base}/api/search?q=x`, { headers: { authorization: `Bearer ${key}` } })
    const body = await response.json() as Record<string, unknown>
    assert.strictEqual(response.status, 503)
    assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
    assert.strictEqual(body["code"], "dependency_unavailable")
    assert.notInclude(JSON.stringify(body), "connection lost")
    // the credit is still reserved by the hold, not spent
    const during = await balance()
    assert.strictEqual(during.balance, 100)
    assert.strictEqual(during.pending, 1)
    capturesDown = false
    // the worker's sweep, run past the hold's deadline
    await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.expireHolds(Date.now() + 3_600_000)))
    const after = await balance()
    assert.deepStrictEqual([after.balance, after.available, after.pending], [100, 100, 0])
    const trial = await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.trialBalance))
    assert.strictEqual([...trial.values()].reduce((a, b) => a + b, 0n), 0n)
  })
})
