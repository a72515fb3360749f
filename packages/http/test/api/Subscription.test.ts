import { assert, describe, layer } from "@effect/vitest"
import { SandboxPaymentControl } from "@tollgate/adapters"
import type { PlanId } from "@tollgate/core"
import { Catalog } from "@tollgate/core"
import { Effect, Option } from "effect"
import { call, Fixtures, makeTestServer } from "./support.js"

const problemJson = "application/problem+json"

describe("subscription API", () => {
  layer(makeTestServer(), { excludeTestServices: true })("with the sandbox", (it) => {
    it.effect("POST /v1/subscription: a sandbox checkout for a public plan, idempotent by key", () =>
      Effect.gen(function*() {
        const { basic, pro } = yield* Fixtures
        const control = yield* SandboxPaymentControl
        const first = yield* call("POST", "/v1/subscription", {
          bearer: basic.secret,
          headers: { "idempotency-key": "sub-1" },
          json: { planId: "pro" }
        })
        assert.strictEqual(first.status, 201)
        assert.deepStrictEqual(Object.keys(first.body).sort(), ["sessionId", "url"])
        assert.match(first.body.url, /\/sandbox\/checkout\//)
        const recorded = (yield* control.subscriptionSessions()).find((s) => s.sessionId === first.body.sessionId)
        assert.deepStrictEqual([recorded?.projectId, recorded?.planId], [basic.projectId, "pro"])
        const replay = yield* call("POST", "/v1/subscription", {
          bearer: basic.secret,
          headers: { "idempotency-key": "sub-1" },
          json: { planId: "pro" }
        })
        assert.strictEqual(replay.status, 201)
        assert.strictEqual(replay.body.sessionId, first.body.sessionId)
        const fresh = yield* call("POST", "/v1/subscription", { bearer: basic.secret, json: { planId: "pro" } })
        assert.strictEqual(fresh.status, 201)
        assert.notStrictEqual(fresh.body.sessionId, first.body.sessionId)
        // the same key for another plan: the provider refuses it
        const reused = yield* call("POST", "/v1/subscription", {
          bearer: basic.secret,
          headers: { "idempotency-key": "sub-1" },
          json: { planId: "free" }
        })
        assert.strictEqual(reused.status, 502)
        assert.strictEqual(reused.headers["content-type"], problemJson)
        assert.strictEqual(reused.body.code, "payment_provider_error")
        // another tenant's same key is its own checkout
        const other = yield* call("POST", "/v1/subscription", {
          bearer: pro.secret,
          headers: { "idempotency-key": "sub-1" },
          json: { planId: "free" }
        })
        assert.strictEqual(other.status, 201)
        // the call changes no plan
        const project = yield* call("GET", "/v1/project", { bearer: basic.secret })
        assert.strictEqual(project.body.plan.id, "basic")
      }))

    it.effect("POST /v1/subscription: an unknown or non-public plan is 400 invalid_request", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const catalog = yield* Catalog
        const pro = Option.getOrThrow(yield* catalog.getPlan("pro" as PlanId))
        const { version: _version, ...draft } = pro
        yield* catalog.putPlan({ ...draft, id: "internal" as PlanId, public: false })
        for (const planId of ["enterprise", "internal"]) {
          const answer = yield* call("POST", "/v1/subscription", { bearer: basic.secret, json: { planId } })
          assert.strictEqual(answer.status, 400, planId)
          assert.strictEqual(answer.headers["content-type"], problemJson)
          assert.strictEqual(answer.body.code, "invalid_request")
        }
        const missing = yield* call("POST", "/v1/subscription", { bearer: basic.secret, json: {} })
        assert.strictEqual(missing.status, 400)
        assert.strictEqual(missing.body.code, "invalid_request")
      }))

    it.effect("POST /v1/billing-portal: a sandbox portal URL; the return URL must be http(s)", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const answer = yield* call("POST", "/v1/billing-portal", {
          bearer: basic.secret,
          json: { returnUrl: "https://app.example/account" }
        })
        assert.strictEqual(answer.status, 200)
        assert.deepStrictEqual(Object.keys(answer.body), ["url"])
        assert.match(answer.body.url, /\/sandbox\/billing-portal\/demo-basic\?return_url=/)
        const bad = yield* call("POST", "/v1/billing-portal", {
          bearer: basic.secret,
          json: { returnUrl: "javascript:alert(1)" }
        })
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(bad.body.code, "invalid_request")
      }))

    it.effect("both need an API key", () =>
      Effect.gen(function*() {
        for (
          const [path, json] of [
            ["/v1/subscription", { planId: "pro" }],
            ["/v1/billing-portal", { returnUrl: "https://app.example" }]
          ] as const
        ) {
          const none = yield* call("POST", path, { json })
          assert.strictEqual(none.status, 401, path)
          assert.strictEqual(none.headers["content-type"], problemJson)
          const wrong = yield* call("POST", path, { bearer: "tg_live_not_a_key", json })
          assert.strictEqual(wrong.status, 401, path)
        }
      }))
  })

  layer(makeTestServer({ subscriptions: false }), { excludeTestServices: true })("without subscriptions", (it) => {
    it.effect("a provider without the methods answers 502 not_supported", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const checkout = yield* call("POST", "/v1/subscription", { bearer: basic.secret, json: { planId: "pro" } })
        assert.strictEqual(checkout.status, 502)
        assert.strictEqual(checkout.body.code, "not_supported")
        const portal = yield* call("POST", "/v1/billing-portal", {
          bearer: basic.secret,
          json: { returnUrl: "https://app.example/account" }
        })
        assert.strictEqual(portal.status, 502)
        assert.strictEqual(portal.body.code, "not_supported")
      }))
  })
})
