/**
 * The embedded default's top-up, end to end over real HTTP: a project starts a top-up, the sandbox
 * checkout page is opened and paid (twice), the signed event goes through the real webhook
 * endpoint into the inbox, and the worker grants the credits exactly once.
 */
import { HttpServer } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { ProjectId } from "@tollgate/core"
import type { Credits } from "@tollgate/core"
import { KeyIssuer, Ledger, PaymentProvider, seedDemoCatalog } from "@tollgate/core"
import { EventTranslator, WorkerLive } from "@tollgate/worker"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { AdminToken } from "../../src/api/AdminToken.js"
import { BillingSettings } from "../../src/api/BillingSettings.js"
import { ManagementApiRoutes } from "../../src/api/ManagementApi.js"
import { WebhookSecrets } from "../../src/api/WebhookSecrets.js"
import { gatewayServer, serverUrl, UseCasesLive } from "../../src/GatewayServer.js"
import { sandboxWithChargeEvents } from "../../src/sandbox/SandboxChargeEvents.js"
import { SandboxCheckoutRoutes } from "../../src/sandbox/SandboxCheckout.js"
import { memoryStack } from "../../src/Stack.js"

describe("sandbox top-up through the webhook path", () => {
  let runtime: ManagedRuntime.ManagedRuntime<any, any>
  let base = ""
  let key = ""
  const project = "demo-basic" as ProjectId
  const available = () =>
    runtime.runPromise(Effect.map(Effect.flatMap(Ledger, (l) => l.balance(project)), (b) => b.available))

  beforeAll(async () => {
    runtime = ManagedRuntime.make(
      gatewayServer(Layer.merge(ManagementApiRoutes, SandboxCheckoutRoutes), { port: 0, host: "127.0.0.1" }).pipe(
        Layer.provide(Layer.mergeAll(
          AdminToken.layer(Redacted.make("admin-token-for-the-sandbox-test")),
          WebhookSecrets.layer({ stripe: Option.none(), sandbox: Redacted.make("whsec_sandbox_test_secret") }),
          BillingSettings.layer()
        )),
        Layer.provideMerge(WorkerLive.pipe(Layer.provideMerge(UseCasesLive))),
        Layer.provideMerge(Layer.mergeAll(EventTranslator.Sandbox, sandboxWithChargeEvents())),
        Layer.provideMerge(memoryStack)
      )
    )
    base = serverUrl((await runtime.runPromise(HttpServer.HttpServer)).address)
    key = await runtime.runPromise(Effect.gen(function*() {
      yield* seedDemoCatalog("http://127.0.0.1:9", Date.now())
      return (yield* (yield* KeyIssuer).issue(project, "test")).secret
    }))
  })
  afterAll(() => runtime?.dispose())

  it("pays once, however often Pay is pressed; the credits come from the event, not the page", async () => {
    assert.strictEqual(await available(), 0)
    const started = await fetch(`${base}/v1/topups`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ credits: 500 })
    })
    assert.strictEqual(started.status, 201)
    const { url } = await started.json() as { url: string }
    assert.match(url, /\/sandbox\/checkout\/sbx_cs_/)
    const checkoutUrl = `${base}${new URL(url).pathname}`

    const page = await fetch(checkoutUrl)
    const html = await page.text()
    assert.strictEqual(page.status, 200)
    assert.include(html, "SANDBOX")
    assert.include(html, "500 credits")
    // opening the page grants nothing
    assert.strictEqual(await available(), 0)

    for (let i = 0; i < 2; i++) {
      const paid = await fetch(`${checkoutUrl}/pay`, { method: "POST", headers: { accept: "application/json" } })
      assert.strictEqual(paid.status, 200)
      assert.deepInclude(await paid.json() as object, { delivered: true })
    }
    const deadline = Date.now() + 10_000
    while (await available() < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    assert.strictEqual(await available(), 500)
    // the worker keeps running: a second delivery stays applied once
    await new Promise((r) => setTimeout(r, 1_500))
    assert.strictEqual(await available(), 500)
    const trial = await runtime.runPromise(Effect.flatMap(Ledger, (l) => l.trialBalance))
    assert.strictEqual([...trial.values()].reduce((a, b) => a + b, 0n), 0n)
  })

  it("a sandbox off-session charge (an auto top-up) is credited from its event, once however often it is replayed", async () => {
    const before = await available()
    const charge = (key: string) =>
      runtime.runPromise(
        Effect.flatMap(PaymentProvider, (p) =>
          p.chargeOffSession({ projectId: project, credits: 300 as Credits, amountCents: 300, idempotencyKey: key }))
      )
    const first = await charge("autotopup:demo-basic:1")
    assert.strictEqual(first.status, "succeeded")
    // a crashed worker's replay asks again under the same key
    assert.deepStrictEqual(await charge("autotopup:demo-basic:1"), first)
    const deadline = Date.now() + 10_000
    while (await available() < before + 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    await new Promise((r) => setTimeout(r, 1_200))
    assert.strictEqual(await available(), before + 300)
  })

  it("an unknown checkout is a 404 problem", async () => {
    const response = await fetch(`${base}/sandbox/checkout/sbx_cs_nope`)
    assert.strictEqual(response.status, 404)
    assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
    assert.strictEqual((await response.json() as { code: string }).code, "checkout_not_found")
  })
})
