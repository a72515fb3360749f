import { assert, describe, layer } from "@effect/vitest"
import { SandboxPaymentControl } from "@tollgate/adapters"
import type { RequestId } from "@tollgate/core"
import { Gateway } from "@tollgate/core"
import { Effect, Option } from "effect"
import { admin, call, Fixtures, makeTestServer } from "./support.js"

const problemJson = "application/problem+json"

let requests = 0

/** One metered call through the request path (admit, then settle as if the upstream answered 200). */
const meteredCall = (secret: string, method: string, url: string) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const parsed = new URL(url, "http://gateway.local")
    const ticket = yield* gateway.admit({
      requestId: `req_consumer_${++requests}` as RequestId,
      credential: secret,
      method,
      path: parsed.pathname,
      query: parsed.searchParams
    })
    return yield* gateway.settle(ticket, { status: 200, latencyMs: 5 })
  }).pipe(Effect.orDie)

/** A fresh project with a key and some credit, through the admin API. */
const newTenant = (name: string, credits: number) =>
  Effect.gen(function*() {
    const created = yield* admin("POST", "/admin/projects", { json: { name, planId: "basic" } })
    assert.strictEqual(created.status, 201)
    const id: string = created.body.id
    const issued = yield* admin("POST", `/admin/projects/${id}/keys`, { json: { name: "main" } })
    assert.strictEqual(issued.status, 201)
    if (credits > 0) {
      const granted = yield* admin("POST", `/admin/projects/${id}/grants`, {
        headers: { "idempotency-key": `seed-${id}` },
        json: { credits, reason: "test credit", source: "purchase" }
      })
      assert.strictEqual(granted.status, 201)
    }
    return { id, secret: issued.body.secret as string, keyId: issued.body.key.id as string }
  })

describe("consumer API", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("GET /v1/project: the project, its plan version and its wallet", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const answer = yield* call("GET", "/v1/project", { bearer: basic.secret })
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.headers["content-type"], "application/json")
        assert.strictEqual(answer.body.project.id, "demo-basic")
        assert.deepStrictEqual(
          {
            id: answer.body.plan.id,
            version: answer.body.plan.version,
            name: answer.body.plan.name,
            allowedCategories: answer.body.plan.allowedCategories,
            concurrencyCap: answer.body.plan.concurrencyCap
          },
          { id: "basic", version: 1, name: "Basic", allowedCategories: ["search", "query"], concurrencyCap: 10 }
        )
        assert.deepStrictEqual(answer.body.plan.prices, { search: 1, query: 5 })
        assert.strictEqual(answer.body.plan.rateLimits.length, 2)
        assert.deepStrictEqual(answer.body.balance, { balance: 1_000, available: 1_000, pending: 0 })
      }))

    it.effect("x-api-key works as well as the bearer header", () =>
      Effect.gen(function*() {
        const { pro } = yield* Fixtures
        const answer = yield* call("GET", "/v1/project", { headers: { "x-api-key": pro.secret } })
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.body.project.id, "demo-pro")
      }))

    it.effect("GET /v1/usage and /v1/usage/summary: my rows only, paginated, summed", () =>
      Effect.gen(function*() {
        const tenant = yield* newTenant("Usage Co", 100)
        const other = yield* newTenant("Other Co", 100)
        for (let i = 0; i < 3; i++) yield* meteredCall(tenant.secret, "GET", "/api/search?q=x")
        yield* meteredCall(tenant.secret, "GET", "/api/datasets/weather-eu/rows")
        yield* meteredCall(other.secret, "GET", "/api/search?q=y")

        const first = yield* call("GET", "/v1/usage?limit=3", { bearer: tenant.secret })
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.body.data.length, 3)
        assert.isString(first.body.nextCursor)
        const second = yield* call("GET", `/v1/usage?limit=3&cursor=${encodeURIComponent(first.body.nextCursor)}`, {
          bearer: tenant.secret
        })
        assert.strictEqual(second.body.data.length, 1)
        assert.isUndefined(second.body.nextCursor)
        const rows = [...first.body.data, ...second.body.data]
        assert.isTrue(rows.every((r: any) => r.projectId === tenant.id))
        assert.strictEqual(new Set(rows.map((r: any) => r.requestId)).size, 4)

        const byRoute = yield* call("GET", "/v1/usage/summary?groupBy=route", { bearer: tenant.secret })
        assert.strictEqual(byRoute.status, 200)
        assert.strictEqual(byRoute.body.groupBy, "route")
        const sorted = [...byRoute.body.data].sort((a: any, b: any) => a.group.localeCompare(b.group))
        assert.deepStrictEqual(sorted, [
          { group: "dataset-query", calls: 1, credits: 5 },
          { group: "search", calls: 3, credits: 3 }
        ])
        const byDay = yield* call("GET", "/v1/usage/summary", { bearer: tenant.secret })
        assert.strictEqual(byDay.body.groupBy, "day")
        assert.strictEqual(byDay.body.data[0].calls, 4)

        const nothing = yield* call("GET", `/v1/usage?from=0&to=1`, { bearer: tenant.secret })
        assert.deepStrictEqual(nothing.body.data, [])

        const badGroup = yield* call("GET", "/v1/usage/summary?groupBy=project", { bearer: tenant.secret })
        assert.strictEqual(badGroup.status, 400)
        assert.strictEqual(badGroup.body.code, "invalid_request")
        const badLimit = yield* call("GET", "/v1/usage?limit=0", { bearer: tenant.secret })
        assert.strictEqual(badLimit.status, 400)
        assert.strictEqual(badLimit.headers["content-type"], problemJson)
        const badFrom = yield* call("GET", "/v1/usage?from=yesterday", { bearer: tenant.secret })
        assert.strictEqual(badFrom.status, 400)
        assert.strictEqual(badFrom.body.code, "invalid_request")
      }))

    it.effect("GET /v1/ledger: history with reasons, newest first, and the lots", () =>
      Effect.gen(function*() {
        const tenant = yield* newTenant("Ledger Co", 50)
        yield* meteredCall(tenant.secret, "GET", "/api/search")
        const answer = yield* call("GET", "/v1/ledger?limit=10", { bearer: tenant.secret })
        assert.strictEqual(answer.status, 200)
        const kinds = answer.body.transactions.map((t: any) => t.kind)
        assert.deepStrictEqual(kinds, ["capture", "grant"])
        assert.strictEqual(answer.body.transactions[1].reason, "test credit")
        for (const t of answer.body.transactions) {
          assert.strictEqual(t.entries.reduce((s: number, e: any) => s + e.amount, 0), 0)
        }
        assert.strictEqual(answer.body.grants.length, 1)
        assert.deepStrictEqual(
          { source: answer.body.grants[0].source, amount: answer.body.grants[0].amount },
          { source: "purchase", amount: 50 }
        )
        const paged = yield* call("GET", "/v1/ledger?limit=1", { bearer: tenant.secret })
        assert.strictEqual(paged.body.transactions.length, 1)
        assert.isString(paged.body.nextCursor)
      }))

    it.effect("GET /v1/earnings: a contributor's share and datasets", () =>
      Effect.gen(function*() {
        const { contributor } = yield* Fixtures
        const before = yield* call("GET", "/v1/earnings", { bearer: contributor.secret })
        assert.strictEqual(before.status, 200)
        assert.strictEqual(before.body.account, "earnings:contributor-acme")
        assert.deepStrictEqual(before.body.datasets.map((d: any) => d.id), ["weather-eu"])
        const tenant = yield* newTenant("Weather Fan", 100)
        yield* meteredCall(tenant.secret, "GET", "/api/datasets/weather-eu/rows")
        const after = yield* call("GET", "/v1/earnings", { bearer: contributor.secret })
        // 30 % of a 5-credit query, in whole credits
        assert.strictEqual(after.body.balance - before.body.balance, 1)

        const notContributor = yield* call("GET", "/v1/earnings", { bearer: tenant.secret })
        assert.strictEqual(notContributor.status, 200)
        assert.deepStrictEqual({ balance: notContributor.body.balance, datasets: notContributor.body.datasets }, {
          balance: 0,
          datasets: []
        })
      }))

    it.effect("POST /v1/topups: a sandbox checkout, priced by the settings, idempotent by key", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const control = yield* SandboxPaymentControl
        const first = yield* call("POST", "/v1/topups", {
          bearer: basic.secret,
          headers: { "idempotency-key": "topup-1" },
          json: { credits: 500 }
        })
        assert.strictEqual(first.status, 201)
        assert.strictEqual(first.body.credits, 500)
        assert.strictEqual(first.body.amountCents, 1_000)
        assert.match(first.body.url, /\/sandbox\/checkout\//)
        const session = yield* control.session(first.body.sessionId)
        assert.isTrue(Option.isSome(session))
        assert.deepStrictEqual(
          Option.map(session, (s) => [s.projectId, s.credits, s.saveCard]),
          Option.some(["demo-basic", 500, false])
        )

        const replay = yield* call("POST", "/v1/topups", {
          bearer: basic.secret,
          headers: { "idempotency-key": "topup-1" },
          json: { credits: 500 }
        })
        assert.strictEqual(replay.body.sessionId, first.body.sessionId)
        const fresh = yield* call("POST", "/v1/topups", { bearer: basic.secret, json: { credits: 500 } })
        assert.notStrictEqual(fresh.body.sessionId, first.body.sessionId)
        const reused = yield* call("POST", "/v1/topups", {
          bearer: basic.secret,
          headers: { "idempotency-key": "topup-1" },
          json: { credits: 600 }
        })
        assert.strictEqual(reused.status, 502)
        assert.strictEqual(reused.body.code, "payment_provider_error")

        // the same client key from another tenant is another checkout
        const { pro } = yield* Fixtures
        const otherTenant = yield* call("POST", "/v1/topups", {
          bearer: pro.secret,
          headers: { "idempotency-key": "topup-1" },
          json: { credits: 600 }
        })
        assert.strictEqual(otherTenant.status, 201)

        const tooSmall = yield* call("POST", "/v1/topups", { bearer: basic.secret, json: { credits: 5 } })
        assert.strictEqual(tooSmall.status, 400)
        assert.strictEqual(tooSmall.body.code, "top_up_out_of_range")
        assert.strictEqual(tooSmall.body.minCredits, 10)
        const fractional = yield* call("POST", "/v1/topups", { bearer: basic.secret, json: { credits: 10.5 } })
        assert.strictEqual(fractional.status, 400)
        assert.strictEqual(fractional.body.code, "invalid_request")
        const notJson = yield* call("POST", "/v1/topups", { bearer: basic.secret, text: "{\"credits\":" })
        assert.strictEqual(notJson.status, 400)
        assert.strictEqual(notJson.headers["content-type"], problemJson)
        assert.strictEqual(notJson.body.code, "invalid_request")
        // no credit arrives from the call itself
        const project = yield* call("GET", "/v1/project", { bearer: basic.secret })
        assert.strictEqual(project.body.balance.balance, 1_000)
      }))

    it.effect("keys: list, issue (secret once), rotate with grace, revoke; never a hash", () =>
      Effect.gen(function*() {
        const tenant = yield* newTenant("Keys Co", 0)
        const listed = yield* call("GET", "/v1/keys", { bearer: tenant.secret })
        assert.strictEqual(listed.status, 200)
        assert.deepStrictEqual(listed.body.data.map((k: any) => k.id), [tenant.keyId])
        assert.isFalse("hash" in listed.body.data[0])
        assert.isFalse(listed.text.includes(tenant.secret))

        const issued = yield* call("POST", "/v1/keys", {
          bearer: tenant.secret,
          json: { name: "ci", environment: "test" }
        })
        assert.strictEqual(issued.status, 201)
        assert.match(issued.body.secret, /^tg_test_/)
        assert.strictEqual(issued.body.key.name, "ci")
        assert.isFalse("hash" in issued.body.key)
        assert.isTrue(issued.body.secret.startsWith(issued.body.key.prefix))
        const viaNew = yield* call("GET", "/v1/project", { bearer: issued.body.secret })
        assert.strictEqual(viaNew.status, 200)

        const rotated = yield* call("POST", `/v1/keys/${issued.body.key.id}/rotate`, {
          bearer: tenant.secret,
          json: { graceSeconds: 3_600 }
        })
        assert.strictEqual(rotated.status, 200)
        assert.strictEqual(rotated.body.previous.id, issued.body.key.id)
        assert.strictEqual(rotated.body.previous.rotatedTo, rotated.body.key.id)
        assert.isNumber(rotated.body.previous.expiresAt)
        assert.notStrictEqual(rotated.body.secret, issued.body.secret)
        // both work during the grace period
        assert.strictEqual((yield* call("GET", "/v1/project", { bearer: issued.body.secret })).status, 200)
        assert.strictEqual((yield* call("GET", "/v1/project", { bearer: rotated.body.secret })).status, 200)
        const again = yield* call("POST", `/v1/keys/${issued.body.key.id}/rotate`, { bearer: tenant.secret, json: {} })
        assert.strictEqual(again.status, 409)
        assert.strictEqual(again.body.code, "key_not_rotatable")

        const revoked = yield* call("DELETE", `/v1/keys/${rotated.body.key.id}`, { bearer: tenant.secret })
        assert.strictEqual(revoked.status, 200)
        assert.strictEqual(revoked.body.key.status, "revoked")
        const refused = yield* call("GET", "/v1/project", { bearer: rotated.body.secret })
        assert.strictEqual(refused.status, 401)
        assert.strictEqual(refused.body.code, "revoked_key")

        const all = yield* call("GET", "/v1/keys", { bearer: tenant.secret })
        assert.strictEqual(all.body.data.length, 3)
        assert.isFalse(all.text.includes("\"hash\""))
      }))

    it.effect("a project cannot see or touch another project's keys", () =>
      Effect.gen(function*() {
        const { basic, pro } = yield* Fixtures
        const mine = yield* call("GET", "/v1/keys", { bearer: basic.secret })
        assert.isFalse(mine.body.data.some((k: any) => k.id === pro.keyId))
        const rotate = yield* call("POST", `/v1/keys/${pro.keyId}/rotate`, { bearer: basic.secret, json: {} })
        assert.strictEqual(rotate.status, 404)
        assert.strictEqual(rotate.body.code, "key_not_found")
        assert.strictEqual(rotate.headers["content-type"], problemJson)
        const revoke = yield* call("DELETE", `/v1/keys/${pro.keyId}`, { bearer: basic.secret })
        assert.strictEqual(revoke.status, 404)
        assert.strictEqual(revoke.body.code, "key_not_found")
        // and nothing happened to it
        assert.strictEqual((yield* call("GET", "/v1/project", { bearer: pro.secret })).status, 200)
        const missing = yield* call("DELETE", "/v1/keys/key_nope", { bearer: basic.secret })
        assert.strictEqual(missing.status, 404)
      }))

    it.effect("bad key bodies are 400 problems", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const badEnv = yield* call("POST", "/v1/keys", { bearer: basic.secret, json: { environment: "prod" } })
        assert.strictEqual(badEnv.status, 400)
        assert.strictEqual(badEnv.body.code, "invalid_request")
        assert.strictEqual(badEnv.body.issues[0].path, "environment")
        const past = yield* call("POST", "/v1/keys", { bearer: basic.secret, json: { expiresAt: 1 } })
        assert.strictEqual(past.status, 400)
        assert.strictEqual(past.body.code, "invalid_request")
        const badGrace = yield* call("POST", `/v1/keys/${basic.keyId}/rotate`, {
          bearer: basic.secret,
          json: { graceSeconds: -1 }
        })
        assert.strictEqual(badGrace.status, 400)
        const array = yield* call("POST", "/v1/keys", { bearer: basic.secret, json: [1, 2] })
        assert.strictEqual(array.status, 400)
        assert.strictEqual(array.body.code, "invalid_request")
        const empty = yield* call("POST", `/v1/keys/${basic.keyId}/rotate`, { bearer: basic.secret })
        assert.strictEqual(empty.status, 400)
        assert.strictEqual(empty.body.code, "invalid_request")
      }))

    it.effect("bodies must be JSON: forms, multipart and bytes are 400 problems and change nothing", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const before = (yield* call("GET", "/v1/keys", { bearer: basic.secret })).body.data.length
        for (
          const contentType of [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "application/octet-stream",
            "text/plain"
          ]
        ) {
          const answer = yield* call("POST", "/v1/keys", { bearer: basic.secret, text: "name=x", contentType })
          assert.strictEqual(answer.status, 400, contentType)
          assert.strictEqual(answer.headers["content-type"], problemJson)
          assert.strictEqual(answer.body.code, "invalid_request")
        }
        const charset = yield* call("POST", "/v1/keys", {
          bearer: basic.secret,
          text: "{\"name\":\"utf8\"}",
          contentType: "application/json; charset=utf-8"
        })
        assert.strictEqual(charset.status, 201)
        const after = (yield* call("GET", "/v1/keys", { bearer: basic.secret })).body.data.length
        assert.strictEqual(after, before + 1)
      }))
  })
})
