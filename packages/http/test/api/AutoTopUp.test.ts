import { assert, describe, layer } from "@effect/vitest"
import { AutoTopUpStore } from "@tollgate/core"
import type { ProjectId } from "@tollgate/core"
import { Effect } from "effect"
import { call, Fixtures, makeTestServer } from "./support.js"

const problemJson = "application/problem+json"

describe("consumer API: auto top-up and notifications", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("GET /v1/auto-top-up: off until configured", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const answer = yield* call("GET", "/v1/auto-top-up", { bearer: basic.secret })
        assert.strictEqual(answer.status, 200)
        assert.deepStrictEqual(
          { ...answer.body, month: undefined },
          {
            enabled: false,
            thresholdCredits: 0,
            amountCredits: 0,
            monthlyCapCredits: 0,
            state: "idle",
            month: undefined,
            monthToDateCredits: 0
          }
        )
        assert.match(answer.body.month, /^\d{4}-\d{2}$/)
      }))

    it.effect("PUT /v1/auto-top-up stores the settings; GET shows them with the state and month to date", () =>
      Effect.gen(function*() {
        const { pro } = yield* Fixtures
        const settings = { enabled: true, thresholdCredits: 200, amountCredits: 1_000, monthlyCapCredits: 5_000 }
        const put = yield* call("PUT", "/v1/auto-top-up", { bearer: pro.secret, json: settings })
        assert.strictEqual(put.status, 200, put.text)
        assert.deepStrictEqual(
          { ...put.body, month: undefined },
          { ...settings, state: "idle", month: undefined, monthToDateCredits: 0 }
        )
        const got = yield* call("GET", "/v1/auto-top-up", { bearer: pro.secret })
        assert.deepStrictEqual(got.body, put.body)
        const stored = yield* Effect.flatMap(AutoTopUpStore, (s) => s.get(pro.projectId as ProjectId))
        assert.deepStrictEqual(stored.settings, settings)
      }))

    it.effect("PUT /v1/auto-top-up refuses bad settings with 400 invalid_request, changing nothing", () =>
      Effect.gen(function*() {
        const { basic } = yield* Fixtures
        const bad = [
          { enabled: true, thresholdCredits: 100, amountCredits: -5, monthlyCapCredits: 1_000 },
          { enabled: true, thresholdCredits: 100, amountCredits: 1.5, monthlyCapCredits: 1_000 },
          { enabled: "yes", thresholdCredits: 100, amountCredits: 500, monthlyCapCredits: 1_000 },
          { enabled: true, thresholdCredits: 100, amountCredits: 500 },
          { enabled: true, thresholdCredits: 100, amountCredits: 5, monthlyCapCredits: 1_000 },
          { enabled: true, thresholdCredits: 100, amountCredits: 500_000, monthlyCapCredits: 1_000_000 },
          { enabled: true, thresholdCredits: 0, amountCredits: 500, monthlyCapCredits: 1_000 },
          { enabled: true, thresholdCredits: 100, amountCredits: 500, monthlyCapCredits: 400 }
        ]
        for (const json of bad) {
          const answer = yield* call("PUT", "/v1/auto-top-up", { bearer: basic.secret, json })
          assert.strictEqual(answer.status, 400, JSON.stringify(json))
          assert.strictEqual(answer.headers["content-type"], problemJson)
          assert.strictEqual(answer.body.code, "invalid_request")
        }
        const got = yield* call("GET", "/v1/auto-top-up", { bearer: basic.secret })
        assert.isFalse(got.body.enabled)
        assert.strictEqual(got.body.amountCredits, 0)
      }))

    it.effect("PUT /v1/notifications returns a new signing secret each time, shown once", () =>
      Effect.gen(function*() {
        const { contributor } = yield* Fixtures
        const first = yield* call("PUT", "/v1/notifications", {
          bearer: contributor.secret,
          json: { url: "https://example.com/hooks" }
        })
        assert.strictEqual(first.status, 200, first.text)
        assert.strictEqual(first.body.url, "https://example.com/hooks")
        assert.match(first.body.secret, /^whsec_[A-Za-z0-9_-]{32}$/)
        const second = yield* call("PUT", "/v1/notifications", {
          bearer: contributor.secret,
          json: { url: "https://example.com/hooks" }
        })
        assert.notStrictEqual(second.body.secret, first.body.secret)
        const got = yield* call("GET", "/v1/auto-top-up", { bearer: contributor.secret })
        assert.strictEqual(got.body.notificationUrl, "https://example.com/hooks")
        assert.notInclude(got.text, second.body.secret)
        const stored = yield* Effect.flatMap(AutoTopUpStore, (s) => s.get(contributor.projectId))
        assert.strictEqual(stored.endpoint?.secret, second.body.secret)
        for (const url of ["ftp://example.com/x", "not a url", ""]) {
          const answer = yield* call("PUT", "/v1/notifications", { bearer: contributor.secret, json: { url } })
          assert.strictEqual(answer.status, 400, url)
          assert.strictEqual(answer.body.code, "invalid_request")
        }
      }))

    it.effect("without a key: 401", () =>
      Effect.gen(function*() {
        const answer = yield* call("GET", "/v1/auto-top-up")
        assert.strictEqual(answer.status, 401)
        assert.strictEqual(answer.headers["content-type"], problemJson)
      }))
  })
})
