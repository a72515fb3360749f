import { assert, describe, layer } from "@effect/vitest"
import { SandboxPaymentControl } from "@tollgate/adapters"
import type { Credits, ProjectId } from "@tollgate/core"
import { PaymentProvider } from "@tollgate/core"
import { Clock, Effect, Option } from "effect"
import { admin, call, makeTestServer } from "./support.js"

const problemJson = "application/problem+json"

/** A sandbox checkout for `credits`, paid: the provider lists it from now on; nothing granted it. */
const paidWithoutGrant = (credits: number) =>
  Effect.gen(function*() {
    const provider = yield* PaymentProvider
    const control = yield* SandboxPaymentControl
    const { sessionId } = yield* Effect.orDie(provider.createTopUpCheckout({
      projectId: "demo-basic" as ProjectId,
      credits: credits as Credits,
      amountCents: credits * 2,
      idempotencyKey: `reconcile-http-${credits}`,
      saveCard: false
    }))
    return Option.getOrThrow(yield* control.completeCheckout(sessionId))
  })

describe("admin API: reconciliation", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("POST runs one now (201) and finds an ungranted payment; GET lists runs and reads one whole", () =>
      Effect.gen(function*() {
        const payment = yield* paidWithoutGrant(100)
        const now = yield* Clock.currentTimeMillis
        const window = { from: now - 3_600_000, to: now + 1_000 }

        const ran = yield* admin("POST", "/admin/reconciliations", { json: window })
        assert.strictEqual(ran.status, 201, ran.text)
        assert.strictEqual(ran.body.status, "differences")
        assert.deepStrictEqual([ran.body.from, ran.body.to], [window.from, window.to])
        assert.deepStrictEqual(ran.body.counts, { payments: 1, refunds: 0, disputes: 0, differences: 1 })
        assert.deepStrictEqual(ran.body.differences, [{
          kind: "missing_grant",
          providerObjectId: payment.paymentId,
          projectId: "demo-basic",
          expectedCredits: 100,
          ledgerCredits: 0,
          detail: `payment ${payment.paymentId} succeeded; no grant under purchase:${payment.paymentId}`
        }])

        const earlier = yield* admin("POST", "/admin/reconciliations", { json: { from: 0, to: 1_000 } })
        assert.strictEqual(earlier.body.status, "clean")

        const one = yield* admin("GET", `/admin/reconciliations/${ran.body.id}`)
        assert.strictEqual(one.status, 200)
        assert.deepStrictEqual(one.body, ran.body)

        const first = yield* admin("GET", "/admin/reconciliations?limit=1")
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.body.data.length, 1)
        assert.notProperty(first.body.data[0], "differences")
        assert.isString(first.body.nextCursor)
        const rest = yield* admin("GET", `/admin/reconciliations?limit=10&cursor=${first.body.nextCursor}`)
        const ids = [...first.body.data, ...rest.body.data].map((r: { id: string }) => r.id)
        assert.includeMembers(ids, [ran.body.id, earlier.body.id])
        assert.strictEqual(new Set(ids).size, ids.length)
        assert.isUndefined(rest.body.nextCursor)
      }))

    it.effect("a bad window, an unknown report and a missing token are problem documents", () =>
      Effect.gen(function*() {
        const backwards = yield* admin("POST", "/admin/reconciliations", { json: { from: 2_000, to: 1_000 } })
        assert.strictEqual(backwards.status, 400)
        assert.strictEqual(backwards.headers["content-type"], problemJson)
        assert.strictEqual(backwards.body.code, "invalid_window")

        const malformed = yield* admin("POST", "/admin/reconciliations", { json: { from: -1, to: "x" } })
        assert.deepStrictEqual([malformed.status, malformed.body.code], [400, "invalid_request"])

        const unknown = yield* admin("GET", "/admin/reconciliations/rec_nope")
        assert.deepStrictEqual([unknown.status, unknown.body.code], [404, "not_found"])
        assert.strictEqual(unknown.headers["content-type"], problemJson)

        const anonymous = yield* call("GET", "/admin/reconciliations")
        assert.strictEqual(anonymous.status, 401)
        const anonymousRun = yield* call("POST", "/admin/reconciliations", { json: { from: 0, to: 1 } })
        assert.strictEqual(anonymousRun.status, 401)
      }))
  })
})
