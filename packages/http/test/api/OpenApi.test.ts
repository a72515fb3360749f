import { assert, describe, layer } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import type { EventId } from "@tollgate/core"
import { BillingInbox } from "@tollgate/core"
import { Effect, Metric, Option } from "effect"
import { proxyRequests } from "../../src/Metrics.js"
import type { CallOptions } from "./support.js"
import {
  admin,
  ADMIN_TOKEN,
  call,
  Fixtures,
  makeTestServer,
  SANDBOX_SECRET,
  signed,
  STRIPE_SECRET,
  stripeEvent
} from "./support.js"

const problemJson = "application/problem+json"

type Method = "GET" | "POST" | "PUT" | "DELETE"

interface Sample {
  readonly path: string
  readonly options: CallOptions
}

/** Objects the walk needs, made before it starts, so each sample is valid on its own. */
const walkFixtures = Effect.gen(function*() {
  const project = yield* admin("POST", "/admin/projects", { json: { id: "walker", name: "Walker", planId: "basic" } })
  assert.strictEqual(project.status, 201)
  yield* admin("POST", "/admin/projects/walker/grants", {
    headers: { "idempotency-key": "walker-seed" },
    json: { credits: 1_000, reason: "walk", source: "purchase" }
  })
  const key = (name: string) =>
    Effect.map(admin("POST", "/admin/projects/walker/keys", { json: { name } }), (a) => ({
      id: a.body.key.id as string,
      secret: a.body.secret as string
    }))
  const main = yield* key("main")
  const toRotate = yield* key("to-rotate")
  const toRevoke = yield* key("to-revoke")
  const toRevokeByAdmin = yield* key("to-revoke-by-admin")
  const route = yield* admin("PUT", "/admin/routes/walk-delete", {
    json: { method: "GET", pathPrefix: "/api/walk", upstream: "http://127.0.0.1:9", category: "search" }
  })
  assert.strictEqual(route.status, 200)
  const reconciliation = yield* admin("POST", "/admin/reconciliations", { json: { from: 0, to: 1_000 } })
  assert.strictEqual(reconciliation.status, 201)
  // an event the worker gave up on, for the operator to requeue
  const inbox = yield* BillingInbox
  const deadEvent = "evt_walk_dead" as EventId
  yield* inbox.store({ id: deadEvent, provider: "sandbox", type: "walk", createdAt: 0, payload: {} }, 0)
  const leased = Option.getOrThrow(yield* inbox.claimEvent(deadEvent, { now: 0, leaseMs: 60_000 }))
  yield* inbox.deadLetter(deadEvent, leased.leaseToken, "walk")
  return {
    main,
    toRotate,
    toRevoke,
    toRevokeByAdmin,
    reconciliationId: reconciliation.body.id as string,
    deadEvent
  }
})

const plan = {
  name: "Walk",
  priceCents: 0,
  allowedCategories: ["search"],
  rateLimits: [],
  monthlyAllowance: 0,
  prices: {},
  defaultPrice: 1,
  concurrencyCap: 1,
  lowBalanceThreshold: 0
}

const samplesFor = (f: Effect.Effect.Success<typeof walkFixtures>): Record<string, Sample> => {
  const key = { bearer: f.main.secret }
  const root = { bearer: ADMIN_TOKEN }
  return {
    "GET /v1/project": { path: "/v1/project", options: key },
    "GET /v1/ledger": { path: "/v1/ledger?limit=5", options: key },
    "POST /v1/topups": { path: "/v1/topups", options: { ...key, json: { credits: 100 } } },
    "POST /v1/subscription": { path: "/v1/subscription", options: { ...key, json: { planId: "pro" } } },
    "POST /v1/billing-portal": {
      path: "/v1/billing-portal",
      options: { ...key, json: { returnUrl: "https://example.com/account" } }
    },
    "GET /v1/earnings": { path: "/v1/earnings", options: key },
    "GET /v1/auto-top-up": { path: "/v1/auto-top-up", options: key },
    "PUT /v1/auto-top-up": {
      path: "/v1/auto-top-up",
      options: { ...key, json: { enabled: true, thresholdCredits: 100, amountCredits: 500, monthlyCapCredits: 2_000 } }
    },
    "PUT /v1/notifications": {
      path: "/v1/notifications",
      options: { ...key, json: { url: "https://example.com/hooks" } }
    },
    "GET /v1/usage": { path: "/v1/usage?from=0&limit=10", options: key },
    "GET /v1/usage/summary": { path: "/v1/usage/summary?groupBy=dataset", options: key },
    "GET /v1/keys": { path: "/v1/keys", options: key },
    "POST /v1/keys": { path: "/v1/keys", options: { ...key, json: { name: "walk" } } },
    "POST /v1/keys/{id}/rotate": { path: `/v1/keys/${f.toRotate.id}/rotate`, options: { ...key, json: {} } },
    "DELETE /v1/keys/{id}": { path: `/v1/keys/${f.toRevoke.id}`, options: key },
    "GET /admin/projects": { path: "/admin/projects", options: root },
    "POST /admin/projects": { path: "/admin/projects", options: { ...root, json: { name: "Walked", planId: "free" } } },
    "GET /admin/projects/{id}": { path: "/admin/projects/walker", options: root },
    "PUT /admin/projects/{id}/plan": {
      path: "/admin/projects/walker/plan",
      options: { ...root, json: { planId: "basic", planVersion: 1 } }
    },
    "POST /admin/projects/{id}/grants": {
      path: "/admin/projects/walker/grants",
      options: {
        ...root,
        headers: { "idempotency-key": "walk-grant" },
        json: { credits: 5, reason: "walk", source: "promotion" }
      }
    },
    "POST /admin/projects/{id}/adjustments": {
      path: "/admin/projects/walker/adjustments",
      options: {
        ...root,
        headers: { "idempotency-key": "walk-adjust" },
        json: { credits: 1, direction: "debit", reason: "walk" }
      }
    },
    "GET /admin/projects/{id}/keys": { path: "/admin/projects/walker/keys", options: root },
    "POST /admin/projects/{id}/keys": { path: "/admin/projects/walker/keys", options: { ...root, json: {} } },
    "DELETE /admin/keys/{id}": { path: `/admin/keys/${f.toRevokeByAdmin.id}`, options: root },
    "GET /admin/plans": { path: "/admin/plans", options: root },
    "GET /admin/plans/{id}": { path: "/admin/plans/basic?version=1", options: root },
    "PUT /admin/plans/{id}": { path: "/admin/plans/walk", options: { ...root, json: plan } },
    "GET /admin/routes": { path: "/admin/routes", options: root },
    "PUT /admin/routes/{id}": {
      path: "/admin/routes/walk-put",
      options: {
        ...root,
        json: { method: "*", pathPrefix: "/api/walk-put", upstream: "https://example.test", category: "search" }
      }
    },
    "DELETE /admin/routes/{id}": { path: "/admin/routes/walk-delete", options: root },
    "GET /admin/datasets": { path: "/admin/datasets", options: root },
    "PUT /admin/datasets/{id}": {
      path: "/admin/datasets/walk-data",
      options: { ...root, json: { name: "Walk data", contributor: "walker", shareBps: 1_000 } }
    },
    "GET /admin/usage": { path: "/admin/usage?projectId=walker", options: root },
    "GET /admin/usage/summary": { path: "/admin/usage/summary?groupBy=project", options: root },
    "POST /admin/reconciliations": {
      path: "/admin/reconciliations",
      options: { ...root, json: { from: 0, to: 86_400_000 } }
    },
    "GET /admin/reconciliations": { path: "/admin/reconciliations?limit=10", options: root },
    "GET /admin/reconciliations/{id}": { path: `/admin/reconciliations/${f.reconciliationId}`, options: root },
    "GET /admin/billing-events": { path: "/admin/billing-events?status=dead&limit=10", options: root },
    "POST /admin/billing-events/{id}/retry": { path: `/admin/billing-events/${f.deadEvent}/retry`, options: root },
    "POST /webhooks/stripe": {
      path: "/webhooks/stripe",
      options: signed(stripeEvent("evt_walk_stripe"), STRIPE_SECRET)
    },
    "POST /webhooks/sandbox": {
      path: "/webhooks/sandbox",
      options: signed(stripeEvent("evt_walk_sandbox"), SANDBOX_SECRET)
    },
    "GET /healthz": { path: "/healthz", options: {} },
    "GET /readyz": { path: "/readyz", options: {} },
    "GET /metrics": { path: "/metrics", options: {} }
  }
}

const fetchSpec = Effect.map(call("GET", "/openapi.json"), (answer) => {
  assert.strictEqual(answer.status, 200)
  return answer.body as Record<string, any>
})

const operations = (spec: Record<string, any>) =>
  Object.entries<Record<string, any>>(spec.paths).flatMap(([path, methods]) =>
    Object.entries<Record<string, any>>(methods).map(([method, operation]) => ({
      path,
      method: method.toUpperCase() as Method,
      operation
    }))
  )

describe("OpenAPI document and docs", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("/openapi.json is a valid OpenAPI 3.1 document", () =>
      Effect.gen(function*() {
        const spec = yield* fetchSpec
        assert.strictEqual(spec.openapi, "3.1.0")
        assert.strictEqual(spec.info.title, "Tollgate management API")
        assert.isString(spec.info.description)
        const result = yield* Effect.promise(() => new Validator().validate(spec))
        assert.isTrue(result.valid, JSON.stringify(result.errors))
        assert.deepStrictEqual(Object.keys(spec.components.securitySchemes).sort(), [
          "adminToken",
          "apiKeyBearer",
          "apiKeyHeader"
        ])
        assert.deepStrictEqual(spec.components.securitySchemes.apiKeyHeader, {
          description: "An API key in the `x-api-key` header",
          type: "apiKey",
          name: "x-api-key",
          in: "header"
        })
      }))

    it.effect("every error response is documented as a problem document; each surface names its security", () =>
      Effect.gen(function*() {
        const spec = yield* fetchSpec
        for (const { method, operation, path } of operations(spec)) {
          const where = `${method} ${path}`
          const statuses = Object.keys(operation.responses).map(Number)
          assert.isTrue(statuses.some((s) => s < 300), `${where} documents a success`)
          for (const status of statuses.filter((s) => s >= 400)) {
            assert.deepStrictEqual(
              Object.keys(operation.responses[status].content),
              [problemJson],
              `${where} ${status}`
            )
          }
          assert.include(statuses, 500, where)
          const schemes = operation.security.flatMap((s: Record<string, unknown>) => Object.keys(s)).sort()
          if (path.startsWith("/v1/")) {
            assert.deepStrictEqual(schemes, ["apiKeyBearer", "apiKeyHeader"], where)
            assert.include(statuses, 401, where)
          } else if (path.startsWith("/admin/")) {
            assert.deepStrictEqual(schemes, ["adminToken"], where)
            assert.include(statuses, 401, where)
          } else {
            assert.deepStrictEqual(schemes, [], where)
          }
          if (operation.requestBody !== undefined || operation.parameters.length > 0) {
            assert.include(statuses, 400, where)
          }
        }
        assert.strictEqual(spec.components.schemas.Problem.required.join(","), "type,title,status,code,detail")
      }))

    it.effect("every documented operation answers, with a status it documents", () =>
      Effect.gen(function*() {
        const spec = yield* fetchSpec
        const samples = samplesFor(yield* walkFixtures)
        const seen = new Set<string>()
        for (const { method, operation, path } of operations(spec)) {
          const name = `${method} ${path}`
          const sample = samples[name]
          assert.isDefined(sample, `no sample for ${name}`)
          seen.add(name)
          const answer = yield* call(method, sample!.path, sample!.options)
          assert.notInclude([404, 405, 500], answer.status, `${name}: ${answer.text}`)
          assert.include(Object.keys(operation.responses), String(answer.status), `${name}: ${answer.text}`)
          assert.isBelow(answer.status, 300, `${name}: ${answer.text}`)
          const documented = operation.responses[answer.status].content
          if (documented === undefined) {
            assert.strictEqual(answer.text, "", name)
          } else {
            assert.include(Object.keys(documented), answer.headers["content-type"], name)
          }
        }
        assert.deepStrictEqual([...seen].sort(), Object.keys(samples).sort(), "every sample is documented")
      }))

    it.effect("/docs renders the reference with an inline script, nothing from a CDN", () =>
      Effect.gen(function*() {
        const answer = yield* call("GET", "/docs")
        assert.strictEqual(answer.status, 200)
        assert.match(answer.headers["content-type"] ?? "", /^text\/html/)
        assert.include(answer.text, "<title>Tollgate management API</title>")
        assert.include(answer.text, "id=\"api-reference\"")
        assert.notMatch(answer.text, /<script[^>]*\ssrc\s*=\s*["']?https?:/i)
        assert.notMatch(answer.text, /<link[^>]*\shref\s*=\s*["']?https?:/i)
        assert.isAbove(answer.text.length, 100_000, "the reference's script is inlined")
      }))

    it.effect("/metrics is Prometheus text", () =>
      Effect.gen(function*() {
        yield* Metric.increment(Metric.tagged(Metric.tagged(proxyRequests, "route", "search"), "status", "200"))
        const answer = yield* call("GET", "/metrics")
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.headers["content-type"], "text/plain; version=0.0.4")
        assert.include(answer.text, "# TYPE tollgate_proxy_requests_total counter")
        assert.match(answer.text, /tollgate_proxy_requests_total\{route="search",status="200"\} \d+/)
      }))

    it.effect("/healthz and /readyz", () =>
      Effect.gen(function*() {
        const health = yield* call("GET", "/healthz")
        assert.deepStrictEqual([health.status, health.body], [200, { status: "ok" }])
        const ready = yield* call("GET", "/readyz")
        assert.strictEqual(ready.status, 200)
        assert.deepStrictEqual(ready.body, {
          status: "ready",
          checks: {
            catalog: "ok",
            ledger: "ok",
            key_store: "ok",
            project_store: "ok",
            billing_inbox: "ok",
            usage_log: "ok"
          }
        })
      }))

    it.effect("unknown paths under /v1 and /admin are 404 problems, whatever the method", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        for (
          const [method, path] of [
            ["GET", "/v1/nothing-here"],
            ["POST", "/v1/project/extra"],
            ["GET", "/admin/nothing"],
            ["PUT", "/admin/projects"],
            ["DELETE", "/v1/project"]
          ] as const
        ) {
          const answer = yield* call(method, path, { bearer: basic.secret })
          assert.strictEqual(answer.status, 404, `${method} ${path}`)
          assert.strictEqual(answer.headers["content-type"], problemJson)
          assert.strictEqual(answer.body.code, "not_found")
        }
      }))

    it.effect("a bad path parameter is a 400 problem", () =>
      Effect.gen(function*() {
        const answer = yield* admin("GET", "/admin/projects/%20padded%20")
        assert.strictEqual(answer.status, 400)
        assert.strictEqual(answer.headers["content-type"], problemJson)
        assert.strictEqual(answer.body.code, "invalid_request")
        assert.strictEqual(answer.body.issues[0].path, "id")
      }))
  })

  layer(makeTestServer({ catalogDown: true }), { excludeTestServices: true })("with the catalog down", (it) => {
    it.effect("/readyz is 503 and names the failing check; /healthz is still 200", () =>
      Effect.gen(function*() {
        const ready = yield* call("GET", "/readyz")
        assert.strictEqual(ready.status, 503)
        assert.strictEqual(ready.headers["content-type"], problemJson)
        assert.strictEqual(ready.body.code, "not_ready")
        assert.strictEqual(ready.body.checks.catalog, "failed")
        assert.strictEqual(ready.body.checks.ledger, "ok")
        assert.strictEqual((yield* call("GET", "/healthz")).status, 200)
        const plans = yield* admin("GET", "/admin/plans")
        assert.strictEqual(plans.status, 503)
        assert.strictEqual(plans.body.code, "dependency_unavailable")
        assert.strictEqual(plans.body.dependency, "catalog")
        assert.notInclude(plans.text, "connection refused")
      }))
  })
})
