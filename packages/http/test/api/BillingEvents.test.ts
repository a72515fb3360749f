import { assert, describe, layer } from "@effect/vitest"
import type { EventId } from "@tollgate/core"
import { BillingInbox } from "@tollgate/core"
import { Effect } from "effect"
import { admin, makeTestServer } from "./support.js"

const problemJson = "application/problem+json"

describe("admin API: billing events", () => {
  layer(makeTestServer(), { excludeTestServices: true })("over memory stores", (it) => {
    it.effect("GET lists the dead events with their last error; POST …/retry requeues one, once", () =>
      Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const id = "evt_http_dead" as EventId
        yield* inbox.store({ id, provider: "sandbox", type: "unknown", createdAt: 1_000, payload: {} }, 2_000)
        const [claimed] = yield* inbox.claim({ now: 2_000, limit: 100, leaseMs: 60_000 })
        assert.strictEqual(claimed!.id, id)
        yield* inbox.deadLetter(id, claimed!.leaseToken, "ledger unavailable")

        const listed = yield* admin("GET", "/admin/billing-events?status=dead")
        assert.strictEqual(listed.status, 200, listed.text)
        assert.deepStrictEqual(listed.body.data.map((e: { id: string }) => e.id), [id])
        assert.deepStrictEqual(
          [listed.body.data[0].status, listed.body.data[0].lastError, listed.body.data[0].attempts],
          ["dead", "ledger unavailable", 1]
        )

        const retried = yield* admin("POST", `/admin/billing-events/${id}/retry`)
        assert.strictEqual(retried.status, 200, retried.text)
        assert.deepStrictEqual([retried.body.id, retried.body.status, retried.body.attempts], [id, "pending", 0])
        assert.deepStrictEqual((yield* admin("GET", "/admin/billing-events?status=dead")).body.data, [])

        const again = yield* admin("POST", `/admin/billing-events/${id}/retry`)
        assert.strictEqual(again.status, 409)
        assert.strictEqual(again.headers["content-type"], problemJson)
        assert.strictEqual(again.body.code, "not_dead")
        const missing = yield* admin("POST", "/admin/billing-events/evt_nowhere/retry")
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(missing.body.code, "not_found")
        const bad = yield* admin("GET", "/admin/billing-events?status=buried")
        assert.strictEqual(bad.status, 400)
      }))
  })
})
