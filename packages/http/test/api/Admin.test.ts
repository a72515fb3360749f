import { assert, describe, layer } from "@effect/vitest"
import type { RequestId } from "@tollgate/core"
import { Catalog, Gateway, Ledger } from "@tollgate/core"
import { Effect } from "effect"
import { admin, call, Fixtures, makeTestServer } from "./support.js"

const sumsToZero = Effect.gen(function*() {
  const ledger = yield* Ledger
  const balances = yield* Effect.orDie(ledger.trialBalance)
  let sum = 0n
  for (const amount of balances.values()) sum += amount
  assert.strictEqual(sum, 0n)
})

const validPlanDraft = {
  name: "Team",
  priceCents: 4_900,
  allowedCategories: ["search", "query"],
  rateLimits: [{ name: "per_second", scope: "key", limit: 20, windowMs: 1_000 }],
  monthlyAllowance: 20_000,
  prices: { search: 1, query: 3 },
  defaultPrice: 1,
  concurrencyCap: 20,
  lowBalanceThreshold: 1_000
}

describe("admin API", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("projects: create, get, list, change plan", () =>
      Effect.gen(function*() {
        const created = yield* admin("POST", "/admin/projects", {
          json: { id: "acme-analytics", name: "Acme Analytics", planId: "free" }
        })
        assert.strictEqual(created.status, 201)
        assert.deepStrictEqual(
          { id: created.body.id, planId: created.body.planId, planVersion: created.body.planVersion },
          { id: "acme-analytics", planId: "free", planVersion: 1 }
        )
        const duplicate = yield* admin("POST", "/admin/projects", {
          json: { id: "acme-analytics", name: "Again", planId: "free" }
        })
        assert.strictEqual(duplicate.status, 409)
        assert.strictEqual(duplicate.body.code, "project_exists")
        const generated = yield* admin("POST", "/admin/projects", { json: { name: "No Id", planId: "pro" } })
        assert.strictEqual(generated.status, 201)
        assert.match(generated.body.id, /^prj_/)

        const tooLong = yield* admin("POST", "/admin/projects", {
          json: { id: "p".repeat(101), name: "Long", planId: "free" }
        })
        assert.strictEqual(tooLong.status, 400)
        const unknownPlan = yield* admin("POST", "/admin/projects", { json: { name: "X", planId: "platinum" } })
        assert.strictEqual(unknownPlan.status, 400)
        assert.strictEqual(unknownPlan.body.code, "plan_not_found")

        const got = yield* admin("GET", "/admin/projects/acme-analytics")
        assert.strictEqual(got.status, 200)
        assert.strictEqual(got.body.plan.id, "free")
        assert.deepStrictEqual(got.body.balance, { balance: 0, available: 0, pending: 0 })
        const missing = yield* admin("GET", "/admin/projects/nope")
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(missing.body.code, "project_not_found")

        const list = yield* admin("GET", "/admin/projects")
        const ids = list.body.data.map((p: any) => p.id)
        assert.includeMembers(ids, ["acme-analytics", "demo-basic", "contributor-acme", generated.body.id])

        const moved = yield* admin("PUT", "/admin/projects/acme-analytics/plan", {
          json: { planId: "pro", planVersion: 1 }
        })
        assert.strictEqual(moved.status, 200)
        assert.strictEqual(moved.body.planId, "pro")
        assert.strictEqual((yield* admin("GET", "/admin/projects/acme-analytics")).body.plan.id, "pro")
        const badVersion = yield* admin("PUT", "/admin/projects/acme-analytics/plan", {
          json: { planId: "pro", planVersion: 99 }
        })
        assert.strictEqual(badVersion.status, 400)
        assert.strictEqual(badVersion.body.code, "plan_not_found")
        const noProject = yield* admin("PUT", "/admin/projects/nope/plan", { json: { planId: "pro", planVersion: 1 } })
        assert.strictEqual(noProject.status, 404)
        const noBody = yield* admin("PUT", "/admin/projects/acme-analytics/plan", { json: { planId: "pro" } })
        assert.strictEqual(noBody.status, 400)
        assert.strictEqual(noBody.body.code, "invalid_request")
      }))

    it.effect("grants: credit arrives, shows in history, replays once, conflicts on a changed request", () =>
      Effect.gen(function*() {
        yield* admin("POST", "/admin/projects", { json: { id: "granted", name: "Granted", planId: "basic" } })
        const body = {
          credits: 250,
          reason: "launch promotion",
          source: "promotion",
          expiresAt: Date.now() + 86_400_000
        }
        const first = yield* admin("POST", "/admin/projects/granted/grants", {
          headers: { "idempotency-key": "grant-1" },
          json: body
        })
        assert.strictEqual(first.status, 201)
        assert.strictEqual(first.body.result, "created")
        assert.deepStrictEqual(
          { source: first.body.grant.source, amount: first.body.grant.amount },
          { source: "promotion", amount: 250 }
        )
        assert.strictEqual(first.body.transaction.reason, "launch promotion")
        const replay = yield* admin("POST", "/admin/projects/granted/grants", {
          headers: { "idempotency-key": "grant-1" },
          json: body
        })
        assert.strictEqual(replay.status, 201)
        assert.strictEqual(replay.body.result, "exists")
        assert.strictEqual(replay.body.grant.id, first.body.grant.id)
        const changed = yield* admin("POST", "/admin/projects/granted/grants", {
          headers: { "idempotency-key": "grant-1" },
          json: { ...body, credits: 251 }
        })
        assert.strictEqual(changed.status, 409)
        assert.strictEqual(changed.body.code, "idempotency_conflict")

        const overview = yield* admin("GET", "/admin/projects/granted")
        assert.deepStrictEqual(overview.body.balance, { balance: 250, available: 250, pending: 0 })
        yield* sumsToZero

        const noKey = yield* admin("POST", "/admin/projects/granted/grants", { json: body })
        assert.strictEqual(noKey.status, 400)
        assert.strictEqual(noKey.body.code, "invalid_request")
        assert.strictEqual(noKey.body.issues[0].path, "idempotency-key")
        const zero = yield* admin("POST", "/admin/projects/granted/grants", {
          headers: { "idempotency-key": "grant-0" },
          json: { ...body, credits: 0 }
        })
        assert.strictEqual(zero.status, 400)
        const badSource = yield* admin("POST", "/admin/projects/granted/grants", {
          headers: { "idempotency-key": "grant-src" },
          json: { ...body, source: "gift" }
        })
        assert.strictEqual(badSource.status, 400)
        const expired = yield* admin("POST", "/admin/projects/granted/grants", {
          headers: { "idempotency-key": "grant-past" },
          json: { ...body, expiresAt: 1_000 }
        })
        assert.strictEqual(expired.status, 400)
        assert.strictEqual(expired.body.code, "invalid_request")
        const noProject = yield* admin("POST", "/admin/projects/nope/grants", {
          headers: { "idempotency-key": "grant-nope" },
          json: body
        })
        assert.strictEqual(noProject.status, 404)
        assert.strictEqual(noProject.body.code, "project_not_found")
        const unchanged = yield* admin("GET", "/admin/projects/granted")
        assert.strictEqual(unchanged.body.balance.balance, 250)
      }))

    it.effect("adjustments: a debit is a ledger transaction with its reason; the trial balance stays zero", () =>
      Effect.gen(function*() {
        yield* admin("POST", "/admin/projects", { json: { id: "adjusted", name: "Adjusted", planId: "basic" } })
        yield* admin("POST", "/admin/projects/adjusted/grants", {
          headers: { "idempotency-key": "adjusted-seed" },
          json: { credits: 100, reason: "purchase", source: "purchase" }
        })
        const issued = yield* admin("POST", "/admin/projects/adjusted/keys", { json: {} })
        const debit = yield* admin("POST", "/admin/projects/adjusted/adjustments", {
          headers: { "idempotency-key": "adj-1" },
          json: { credits: 30, direction: "debit", reason: "duplicate grant on 2026-01-03" }
        })
        assert.strictEqual(debit.status, 201)
        assert.deepStrictEqual(
          { result: debit.body.result, direction: debit.body.direction, credits: debit.body.credits },
          { result: "created", direction: "debit", credits: 30 }
        )
        assert.deepStrictEqual(
          debit.body.transaction.entries,
          [{ account: "wallet:adjusted", amount: -30 }, { account: "promotions", amount: 30 }]
        )
        const replay = yield* admin("POST", "/admin/projects/adjusted/adjustments", {
          headers: { "idempotency-key": "adj-1" },
          json: { credits: 30, direction: "debit", reason: "duplicate grant on 2026-01-03" }
        })
        assert.strictEqual(replay.body.result, "exists")
        const credit = yield* admin("POST", "/admin/projects/adjusted/adjustments", {
          headers: { "idempotency-key": "adj-2" },
          json: { credits: 5, direction: "credit", reason: "goodwill" }
        })
        assert.strictEqual(credit.status, 201)
        assert.strictEqual(credit.body.credits, 5)

        const ledger = yield* call("GET", "/v1/ledger", { bearer: issued.body.secret })
        const reasons = ledger.body.transactions.map((t: any) => [t.kind, t.reason])
        assert.deepStrictEqual(reasons, [
          ["grant", "goodwill"],
          ["withdraw", "duplicate grant on 2026-01-03"],
          ["grant", "purchase"]
        ])
        const project = yield* call("GET", "/v1/project", { bearer: issued.body.secret })
        assert.strictEqual(project.body.balance.balance, 75)

        const tooMuch = yield* admin("POST", "/admin/projects/adjusted/adjustments", {
          headers: { "idempotency-key": "adj-3" },
          json: { credits: 1_000, direction: "debit", reason: "oops" }
        })
        assert.strictEqual(tooMuch.status, 409)
        assert.strictEqual(tooMuch.body.code, "insufficient_credit")
        assert.strictEqual(tooMuch.body.available, 75)
        const badDirection = yield* admin("POST", "/admin/projects/adjusted/adjustments", {
          headers: { "idempotency-key": "adj-4" },
          json: { credits: 1, direction: "sideways", reason: "?" }
        })
        assert.strictEqual(badDirection.status, 400)
        const noReason = yield* admin("POST", "/admin/projects/adjusted/adjustments", {
          headers: { "idempotency-key": "adj-5" },
          json: { credits: 1, direction: "debit", reason: "   " }
        })
        assert.strictEqual(noReason.status, 400)
        assert.strictEqual((yield* call("GET", "/v1/project", { bearer: issued.body.secret })).body.balance.balance, 75)
        yield* sumsToZero
      }))

    it.effect("plans: list latest, get a version, put a new version; an invalid draft never reaches the catalog", () =>
      Effect.gen(function*() {
        const list = yield* admin("GET", "/admin/plans")
        assert.deepStrictEqual(list.body.data.map((p: any) => p.id), ["free", "basic", "pro"])
        const v1 = yield* admin("PUT", "/admin/plans/team", { json: validPlanDraft })
        assert.strictEqual(v1.status, 200)
        assert.strictEqual(v1.body.version, 1)
        assert.strictEqual(v1.body.public, true)
        // the same draft again (a retried call) makes no version
        const again = yield* admin("PUT", "/admin/plans/team", { json: validPlanDraft })
        assert.strictEqual(again.status, 200)
        assert.strictEqual(again.body.version, 1)
        const v2 = yield* admin("PUT", "/admin/plans/team", { json: { ...validPlanDraft, concurrencyCap: 25 } })
        assert.strictEqual(v2.body.version, 2)
        assert.strictEqual((yield* admin("GET", "/admin/plans/team")).body.concurrencyCap, 25)
        const first = yield* admin("GET", "/admin/plans/team?version=1")
        assert.strictEqual(first.body.concurrencyCap, 20)
        const none = yield* admin("GET", "/admin/plans/team?version=7")
        assert.strictEqual(none.status, 404)
        assert.strictEqual(none.body.code, "plan_not_found")
        const badVersion = yield* admin("GET", "/admin/plans/team?version=zero")
        assert.strictEqual(badVersion.status, 400)

        const catalog = yield* Catalog
        const invalid = [
          { ...validPlanDraft, priceCents: -1 },
          { ...validPlanDraft, allowedCategories: ["Not A Category"] },
          { ...validPlanDraft, rateLimits: [{ name: "x", scope: "galaxy", limit: 1, windowMs: 1 }] },
          { ...validPlanDraft, prices: { search: 1.5 } },
          { ...validPlanDraft, concurrencyCap: 0 },
          { ...validPlanDraft, name: "" },
          { name: "Only a name" }
        ]
        for (const draft of invalid) {
          const answer = yield* admin("PUT", "/admin/plans/broken", { json: draft })
          assert.strictEqual(answer.status, 400, JSON.stringify(draft))
          assert.strictEqual(answer.body.code, "invalid_request")
        }
        const stored = yield* Effect.orDie(catalog.getPlan("broken" as any))
        assert.strictEqual(stored._tag, "None")
      }))

    it.effect("routes: list, put (validated by the Route schema), delete", () =>
      Effect.gen(function*() {
        const before = yield* admin("GET", "/admin/routes")
        assert.includeMembers(before.body.data.map((r: any) => r.id), ["search", "dataset-query", "export"])
        const put = yield* admin("PUT", "/admin/routes/geo", {
          json: { method: "GET", pathPrefix: "/api/geo", upstream: "http://geo.internal:8080", category: "search" }
        })
        assert.strictEqual(put.status, 200)
        assert.deepStrictEqual(
          { id: put.body.id, timeoutMs: put.body.timeoutMs, failurePolicy: put.body.failurePolicy },
          { id: "geo", timeoutMs: 30_000, failurePolicy: "open" }
        )
        const bad = yield* admin("PUT", "/admin/routes/geo2", {
          json: { method: "FETCH", pathPrefix: "api/geo", upstream: "ftp://x", category: "search" }
        })
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(bad.body.code, "invalid_request")
        assert.isAtLeast(bad.body.issues.length, 1)
        const deleted = yield* admin("DELETE", "/admin/routes/geo")
        assert.strictEqual(deleted.status, 204)
        assert.strictEqual(deleted.text, "")
        const again = yield* admin("DELETE", "/admin/routes/geo")
        assert.strictEqual(again.status, 404)
        assert.strictEqual(again.body.code, "route_not_found")
        const after = yield* admin("GET", "/admin/routes")
        assert.notInclude(after.body.data.map((r: any) => r.id), "geo")
      }))

    it.effect("datasets: list, put; the contributor must be a project", () =>
      Effect.gen(function*() {
        const put = yield* admin("PUT", "/admin/datasets/air-quality", {
          json: { name: "Air quality", contributor: "contributor-acme", shareBps: 2_500 }
        })
        assert.strictEqual(put.status, 200)
        assert.strictEqual(put.body.id, "air-quality")
        const list = yield* admin("GET", "/admin/datasets")
        assert.includeMembers(list.body.data.map((d: any) => d.id), ["weather-eu", "air-quality"])
        const orphan = yield* admin("PUT", "/admin/datasets/orphan", {
          json: { name: "Orphan", contributor: "nobody", shareBps: 100 }
        })
        assert.strictEqual(orphan.status, 400)
        assert.strictEqual(orphan.body.code, "contributor_not_found")
        const badShare = yield* admin("PUT", "/admin/datasets/greedy", {
          json: { name: "Greedy", contributor: "contributor-acme", shareBps: 10_001 }
        })
        assert.strictEqual(badShare.status, 400)
      }))

    it.effect("keys of any project: list, issue, revoke", () =>
      Effect.gen(function*() {
        const { pro } = yield* Fixtures
        const list = yield* admin("GET", "/admin/projects/demo-pro/keys")
        assert.strictEqual(list.status, 200)
        assert.include(list.body.data.map((k: any) => k.id), pro.keyId)
        assert.isFalse(list.text.includes("\"hash\""))
        const issued = yield* admin("POST", "/admin/projects/demo-pro/keys", {
          json: { name: "ops", environment: "live" }
        })
        assert.strictEqual(issued.status, 201)
        assert.match(issued.body.secret, /^tg_live_/)
        assert.strictEqual(
          (yield* call("GET", "/v1/project", { bearer: issued.body.secret })).body.project.id,
          "demo-pro"
        )
        const revoked = yield* admin("DELETE", `/admin/keys/${issued.body.key.id}`)
        assert.strictEqual(revoked.status, 200)
        assert.strictEqual(revoked.body.key.status, "revoked")
        assert.strictEqual((yield* call("GET", "/v1/project", { bearer: issued.body.secret })).status, 401)
        assert.strictEqual((yield* admin("GET", "/admin/projects/nope/keys")).status, 404)
        assert.strictEqual((yield* admin("POST", "/admin/projects/nope/keys", { json: {} })).status, 404)
        assert.strictEqual((yield* admin("DELETE", "/admin/keys/key_nope")).status, 404)
      }))

    it.effect("usage across projects, filtered and summed", () =>
      Effect.gen(function*() {
        const { basic, pro } = yield* Fixtures
        const gateway = yield* Gateway
        const run = (secret: string, path: string, n: number) =>
          Effect.gen(function*() {
            const ticket = yield* gateway.admit({
              requestId: `req_admin_usage_${path}_${n}_${secret.slice(-6)}` as RequestId,
              credential: secret,
              method: "GET",
              path,
              query: new URLSearchParams()
            })
            yield* gateway.settle(ticket, { status: 200, latencyMs: 1 })
          }).pipe(Effect.orDie)
        yield* run(basic.secret, "/api/search", 1)
        yield* run(basic.secret, "/api/search", 2)
        yield* admin("POST", "/admin/projects/demo-pro/grants", {
          headers: { "idempotency-key": "pro-usage-credit" },
          json: { credits: 10, reason: "usage test", source: "promotion" }
        })
        yield* run(pro.secret, "/api/search", 3)

        const all = yield* admin("GET", "/admin/usage")
        const projects = new Set(all.body.data.map((r: any) => r.projectId))
        assert.isTrue(projects.has("demo-basic") && projects.has("demo-pro"))
        const onlyPro = yield* admin("GET", "/admin/usage?projectId=demo-pro")
        assert.isTrue(onlyPro.body.data.every((r: any) => r.projectId === "demo-pro"))
        assert.isAtLeast(onlyPro.body.data.length, 1)
        const summary = yield* admin("GET", "/admin/usage/summary?groupBy=project")
        assert.strictEqual(summary.body.groupBy, "project")
        const groups = Object.fromEntries(summary.body.data.map((r: any) => [r.group, r.calls]))
        assert.isAtLeast(groups["demo-basic"], 2)
        assert.isAtLeast(groups["demo-pro"], 1)
        const proByRoute = yield* admin("GET", "/admin/usage/summary?groupBy=route&projectId=demo-pro")
        assert.deepStrictEqual(proByRoute.body.data, [{ group: "search", calls: 1, credits: 1 }])
      }))
  })
})
