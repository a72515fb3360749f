import { assert, describe, layer } from "@effect/vitest"
import type { EventId } from "@tollgate/core"
import { BillingInbox } from "@tollgate/core"
import { Effect, Option } from "effect"
import { call, makeTestServer, SANDBOX_SECRET, signed, STRIPE_SECRET, stripeEvent } from "./support.js"

const stored = (id: string) => Effect.flatMap(BillingInbox, (inbox) => Effect.orDie(inbox.get(id as EventId)))

describe("webhook intake", () => {
  layer(makeTestServer(), { excludeTestServices: true })("with both secrets", (it) => {
    it.effect("a correctly signed Stripe event is stored once, by id", () =>
      Effect.gen(function*() {
        const event = stripeEvent("evt_good_1")
        const first = yield* call("POST", "/webhooks/stripe", signed(event, STRIPE_SECRET))
        assert.strictEqual(first.status, 200, first.text)
        assert.deepStrictEqual(first.body, { received: true, duplicate: false })
        const saved = yield* stored("evt_good_1")
        assert.isTrue(Option.isSome(saved))
        const row = Option.getOrThrow(saved)
        assert.deepStrictEqual(
          { provider: row.provider, type: row.type, createdAt: row.createdAt, status: row.status },
          { provider: "stripe", type: "checkout.session.completed", createdAt: 1_767_225_600_000, status: "pending" }
        )
        assert.strictEqual((row.payload as any).data.object.id, "cs_evt_good_1")

        // Stripe retries: the same event again, even freshly signed, is acknowledged and not stored again
        const again = yield* call("POST", "/webhooks/stripe", signed(event, STRIPE_SECRET))
        assert.strictEqual(again.status, 200)
        assert.deepStrictEqual(again.body, { received: true, duplicate: true })
        const inbox = yield* BillingInbox
        const claimed = yield* Effect.orDie(inbox.claim({ now: Date.now(), limit: 100, leaseMs: 60_000 }))
        assert.strictEqual(claimed.filter((e) => e.id === "evt_good_1").length, 1)
      }))

    it.effect("the signature covers the exact bytes: a re-serialized body is refused", () =>
      Effect.gen(function*() {
        const delivery = signed(stripeEvent("evt_bytes"), STRIPE_SECRET)
        const reformatted = JSON.stringify(JSON.parse(delivery.text), null, 2)
        const answer = yield* call("POST", "/webhooks/stripe", { ...delivery, text: reformatted })
        assert.strictEqual(answer.status, 400)
        assert.strictEqual(answer.headers["content-type"], "application/problem+json")
        assert.strictEqual(answer.body.code, "invalid_signature")
        assert.isTrue(Option.isNone(yield* stored("evt_bytes")))
      }))

    it.effect("a bad, stale or missing signature is a 400 problem and nothing is stored", () =>
      Effect.gen(function*() {
        const wrongSecret = yield* call("POST", "/webhooks/stripe", signed(stripeEvent("evt_bad"), "whsec_wrong"))
        assert.strictEqual(wrongSecret.status, 400)
        assert.strictEqual(wrongSecret.body.code, "invalid_signature")
        const stale = yield* call(
          "POST",
          "/webhooks/stripe",
          signed(stripeEvent("evt_stale"), STRIPE_SECRET, Math.floor(Date.now() / 1000) - 3_600)
        )
        assert.strictEqual(stale.status, 400)
        assert.strictEqual(stale.body.code, "invalid_signature")
        const unsigned = yield* call("POST", "/webhooks/stripe", { text: JSON.stringify(stripeEvent("evt_unsigned")) })
        assert.strictEqual(unsigned.status, 400)
        assert.strictEqual(unsigned.body.code, "invalid_signature")
        const garbage = yield* call("POST", "/webhooks/stripe", {
          text: JSON.stringify(stripeEvent("evt_garbage")),
          headers: { "stripe-signature": "t=1,v1=deadbeef" }
        })
        assert.strictEqual(garbage.status, 400)
        for (const id of ["evt_bad", "evt_stale", "evt_unsigned", "evt_garbage"]) {
          assert.isTrue(Option.isNone(yield* stored(id)), id)
        }
      }))

    it.effect("a signed body that is not an event is a 400 problem", () =>
      Effect.gen(function*() {
        const notJson = yield* call("POST", "/webhooks/stripe", signed({ nope: true }, STRIPE_SECRET))
        assert.strictEqual(notJson.status, 400)
        assert.strictEqual(notJson.body.code, "invalid_request")
      }))

    it.effect("/webhooks/sandbox verifies with the sandbox secret and stores as provider sandbox", () =>
      Effect.gen(function*() {
        const event = stripeEvent("evt_sandbox_1", "sandbox.topup")
        const ok = yield* call("POST", "/webhooks/sandbox", signed(event, SANDBOX_SECRET))
        assert.strictEqual(ok.status, 200)
        assert.deepStrictEqual(ok.body, { received: true, duplicate: false })
        const row = Option.getOrThrow(yield* stored("evt_sandbox_1"))
        assert.strictEqual(row.provider, "sandbox")
        const withStripeSecret = yield* call("POST", "/webhooks/sandbox", signed(stripeEvent("evt_x"), STRIPE_SECRET))
        assert.strictEqual(withStripeSecret.status, 400)
        assert.strictEqual(withStripeSecret.body.code, "invalid_signature")
        const withSandboxSecret = yield* call("POST", "/webhooks/stripe", signed(stripeEvent("evt_y"), SANDBOX_SECRET))
        assert.strictEqual(withSandboxSecret.status, 400)
      }))
  })

  layer(makeTestServer({ stripe: false }), { excludeTestServices: true })("without a Stripe secret", (it) => {
    it.effect("without a Stripe secret, /webhooks/stripe is 503 webhook_not_configured", () =>
      Effect.gen(function*() {
        const answer = yield* call("POST", "/webhooks/stripe", signed(stripeEvent("evt_nc"), STRIPE_SECRET))
        assert.strictEqual(answer.status, 503)
        assert.strictEqual(answer.headers["content-type"], "application/problem+json")
        assert.strictEqual(answer.body.code, "webhook_not_configured")
        assert.isTrue(Option.isNone(yield* stored("evt_nc")))
        const sandbox = yield* call("POST", "/webhooks/sandbox", signed(stripeEvent("evt_sb"), SANDBOX_SECRET))
        assert.strictEqual(sandbox.status, 200)
      }))
  })
})
