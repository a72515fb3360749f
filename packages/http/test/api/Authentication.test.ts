import { assert, describe, layer } from "@effect/vitest"
import { ApiKeyFormat } from "@tollgate/core"
import { Effect } from "effect"
import type { Answer } from "./support.js"
import { admin, ADMIN_TOKEN, call, Fixtures, makeTestServer } from "./support.js"

const assertProblem = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, answer.text)
  assert.strictEqual(answer.headers["content-type"], "application/problem+json")
  assert.strictEqual(answer.body.status, status)
  assert.strictEqual(answer.body.code, code)
  assert.strictEqual(answer.body.type, `urn:tollgate:problem:${code}`)
  assert.isString(answer.body.title)
  assert.isString(answer.body.detail)
}

describe("authentication", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("a missing key is 401 missing_key, with a challenge", () =>
      Effect.gen(function*() {
        const answer = yield* call("GET", "/v1/project")
        assertProblem(answer, 401, "missing_key")
        assert.strictEqual(answer.headers["www-authenticate"], "Bearer realm=\"tollgate\"")
        assertProblem(yield* call("GET", "/v1/keys", { headers: { "x-api-key": "" } }), 401, "missing_key")
      }))

    it.effect("malformed credentials are 401 malformed_key before any lookup", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        // a valid key under the wrong scheme
        assertProblem(
          yield* call("GET", "/v1/project", { headers: { authorization: `Basic ${basic.secret}` } }),
          401,
          "malformed_key"
        )
        assertProblem(
          yield* call("GET", "/v1/project", { headers: { authorization: "Bearer" } }),
          401,
          "malformed_key"
        )
        // one character off: the checksum catches it
        const typo = basic.secret.slice(0, -1) + (basic.secret.endsWith("A") ? "B" : "A")
        assertProblem(yield* call("GET", "/v1/project", { bearer: typo }), 401, "malformed_key")
        assertProblem(yield* call("GET", "/v1/project", { headers: { "x-api-key": "hello" } }), 401, "malformed_key")
      }))

    it.effect("a well-formed unknown key is 401 unknown_key", () =>
      Effect.gen(function*() {
        const forged = ApiKeyFormat.formatApiKey("live", new Uint8Array(16).fill(7))
        assertProblem(yield* call("GET", "/v1/project", { bearer: forged }), 401, "unknown_key")
        assertProblem(yield* call("GET", "/v1/project", { headers: { "x-api-key": forged } }), 401, "unknown_key")
      }))

    it.effect("the bearer header wins over x-api-key, and its failure is reported as itself", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const forged = ApiKeyFormat.formatApiKey("live", new Uint8Array(16).fill(9))
        assertProblem(
          yield* call("GET", "/v1/project", { bearer: forged, headers: { "x-api-key": basic.secret } }),
          401,
          "unknown_key"
        )
      }))

    it.effect("a revoked key is 401 revoked_key; a key past its grace period is 401 expired_key", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const issued = yield* call("POST", "/v1/keys", { bearer: basic.secret, json: { name: "short-lived" } })
        assert.strictEqual((yield* call("GET", "/v1/project", { bearer: issued.body.secret })).status, 200)
        const rotated = yield* call("POST", `/v1/keys/${issued.body.key.id}/rotate`, {
          bearer: basic.secret,
          json: { graceSeconds: 0 }
        })
        assert.strictEqual(rotated.status, 200)
        assertProblem(yield* call("GET", "/v1/project", { bearer: issued.body.secret }), 401, "expired_key")
        yield* call("DELETE", `/v1/keys/${rotated.body.key.id}`, { bearer: basic.secret })
        assertProblem(
          yield* call("GET", "/v1/project", { headers: { "x-api-key": rotated.body.secret } }),
          401,
          "revoked_key"
        )
      }))

    it.effect("the admin surface wants the admin token", () =>
      Effect.gen(function*() {
        assertProblem(yield* call("GET", "/admin/projects"), 401, "missing_admin_token")
        assertProblem(yield* call("GET", "/admin/projects", { bearer: "not-the-token" }), 401, "invalid_admin_token")
        assertProblem(
          yield* call("GET", "/admin/projects", { bearer: `${ADMIN_TOKEN}x` }),
          401,
          "invalid_admin_token"
        )
        assertProblem(
          yield* call("GET", "/admin/projects", { headers: { authorization: `Token ${ADMIN_TOKEN}` } }),
          401,
          "invalid_admin_token"
        )
        const ok = yield* admin("GET", "/admin/projects")
        assert.strictEqual(ok.status, 200)
      }))

    it.effect("an API key never opens the admin surface, and the admin token never opens /v1", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const withKey = yield* call("GET", "/admin/projects", { bearer: basic.secret })
        assertProblem(withKey, 401, "invalid_admin_token")
        assert.match(withKey.body.detail, /API keys cannot call the admin API/)
        assertProblem(
          yield* call("GET", "/admin/projects", { headers: { "x-api-key": basic.secret } }),
          401,
          "missing_admin_token"
        )
        assertProblem(
          yield* call("POST", "/admin/projects/demo-basic/grants", {
            bearer: basic.secret,
            headers: { "idempotency-key": "sneaky" },
            json: { credits: 1_000_000, reason: "free money", source: "promotion" }
          }),
          401,
          "invalid_admin_token"
        )
        assertProblem(yield* call("GET", "/v1/project", { bearer: ADMIN_TOKEN }), 401, "malformed_key")
        const project = yield* call("GET", "/v1/project", { bearer: basic.secret })
        assert.strictEqual(project.body.balance.balance, 1_000)
      }))

    it.effect("authentication runs before the body is looked at", () =>
      Effect.gen(function*() {
        assertProblem(yield* call("POST", "/v1/topups", { text: "{not json" }), 401, "missing_key")
      }))
  })
})
