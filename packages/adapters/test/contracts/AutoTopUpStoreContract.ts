import { assert, describe, it } from "@effect/vitest"
import type { AutoTopUpSettings, BeginRequest, Credits } from "@tollgate/core"
import { AutoTopUpStore, emptyAutoTopUpState } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect } from "effect"
import { cr, projectId, unique } from "./fixtures.js"

const settings = (fields: Partial<AutoTopUpSettings> = {}): AutoTopUpSettings => ({
  enabled: true,
  thresholdCredits: cr(100),
  amountCredits: cr(500),
  monthlyCapCredits: cr(1_200),
  ...fields
})

const MARCH = Date.UTC(2026, 2, 10)
const APRIL = Date.UTC(2026, 3, 1)

const request = (now: number, credits: Credits = cr(500)): BeginRequest => ({
  trigger: unique("msg"),
  credits,
  amountCents: credits * 2,
  now
})

/**
 * The AutoTopUpStore contract: every adapter must pass it. Each test provides `layer` itself
 * and expects an empty store.
 */
export const autoTopUpStoreContract = (name: string, layer: Layer.Layer<AutoTopUpStore, unknown>) =>
  describe(`AutoTopUpStore contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, AutoTopUpStore>) => Effect.provide(body, layer)

    it.effect("a project never configured has the empty state and starts nothing", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const p = projectId()
        assert.deepStrictEqual(yield* store.get(p), emptyAutoTopUpState(p))
        assert.deepStrictEqual(yield* store.begin(p, request(MARCH)), { _tag: "Disabled" })
        assert.deepStrictEqual(yield* store.get(p), emptyAutoTopUpState(p))
      })))

    it.effect("settings and the endpoint are stored independently and read back", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const p = projectId()
        yield* store.setEndpoint(p, { url: "https://example.test/hook", secret: "whsec_1" })
        const configured = yield* store.configure(p, settings())
        assert.deepStrictEqual(configured.settings, settings())
        assert.deepStrictEqual(configured.endpoint, { url: "https://example.test/hook", secret: "whsec_1" })
        yield* store.setEndpoint(p, { url: "https://example.test/other", secret: "whsec_2" })
        const read = yield* store.get(p)
        assert.deepStrictEqual(read.settings, settings())
        assert.deepStrictEqual(read.endpoint, { url: "https://example.test/other", secret: "whsec_2" })
        assert.strictEqual(read.phase, "idle")
      })))

    it.effect("begin starts attempt 1, then reports it in flight until it finishes, once", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const p = projectId()
        yield* store.configure(p, settings())
        const first = request(MARCH)
        const started = yield* store.begin(p, first)
        assert.strictEqual(started._tag, "Started")
        if (started._tag !== "Started") return
        assert.deepStrictEqual(started.charge, {
          attempt: 1,
          trigger: first.trigger,
          credits: first.credits,
          amountCents: first.amountCents,
          startedAt: MARCH
        })
        const again = yield* store.begin(p, request(MARCH + 1))
        assert.deepStrictEqual(again, { _tag: "InFlight", charge: started.charge })
        const state = yield* store.get(p)
        assert.strictEqual(state.phase, "charging")
        assert.strictEqual(state.monthCharged, 500)
        assert.strictEqual(state.month, "2026-03")

        assert.isFalse(yield* store.finish(p, 2, "succeeded"))
        assert.isTrue(yield* store.finish(p, 1, "succeeded"))
        assert.isFalse(yield* store.finish(p, 1, "succeeded"))
        const done = yield* store.get(p)
        assert.strictEqual(done.phase, "idle")
        assert.strictEqual(done.lastResult, "succeeded")
        assert.deepStrictEqual(yield* store.begin(p, first), {
          _tag: "Handled",
          charge: started.charge,
          result: "succeeded"
        })
        const next = yield* store.begin(p, request(MARCH + 2))
        assert.strictEqual(next._tag === "Started" ? next.charge.attempt : -1, 2)
      })))

    it.effect("the monthly cap is never exceeded; needs_customer gives its credits back; a new month starts at zero", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const p = projectId()
        yield* store.configure(p, settings())
        const cycle = (now: number, result: "succeeded" | "needs_customer" | "failed") =>
          Effect.gen(function*() {
            const begun = yield* store.begin(p, request(now))
            if (begun._tag !== "Started") return begun._tag
            yield* store.finish(p, begun.charge.attempt, result)
            return "Started" as const
          })
        assert.strictEqual(yield* cycle(MARCH, "succeeded"), "Started")
        assert.strictEqual(yield* cycle(MARCH, "needs_customer"), "Started")
        assert.strictEqual((yield* store.get(p)).phase, "needs_customer")
        assert.strictEqual((yield* store.get(p)).monthCharged, 500)
        assert.strictEqual(yield* cycle(MARCH, "failed"), "Started")
        assert.strictEqual((yield* store.get(p)).monthCharged, 1_000)
        const capped = yield* store.begin(p, request(MARCH))
        assert.deepStrictEqual(capped, { _tag: "CapReached", monthCharged: cr(1_000), monthlyCapCredits: cr(1_200) })
        assert.strictEqual((yield* store.begin(p, request(MARCH, cr(200))))._tag, "Started")
        assert.strictEqual((yield* store.get(p)).monthCharged, 1_200)
        yield* store.finish(p, 4, "succeeded")
        const april = yield* store.begin(p, request(APRIL))
        assert.strictEqual(april._tag, "Started")
        const state = yield* store.get(p)
        assert.strictEqual(state.month, "2026-04")
        assert.strictEqual(state.monthCharged, 500)
      })))

    it.effect("disabled settings start nothing, and settings changes keep the attempt in flight", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const p = projectId()
        yield* store.configure(p, settings({ enabled: false }))
        assert.deepStrictEqual(yield* store.begin(p, request(MARCH)), { _tag: "Disabled" })
        yield* store.configure(p, settings())
        const started = yield* store.begin(p, request(MARCH))
        assert.strictEqual(started._tag, "Started")
        yield* store.configure(p, settings({ enabled: false, amountCredits: cr(10) }))
        const state = yield* store.get(p)
        assert.strictEqual(state.phase, "charging")
        assert.strictEqual(state.current?.credits, 500)
      })))

    it.effect("concurrent begins for one wallet: exactly one starts", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const p = projectId()
        yield* store.configure(p, settings({ monthlyCapCredits: cr(100_000) }))
        const results = yield* Effect.all(
          Array.from({ length: 12 }, (_, i) => store.begin(p, request(MARCH + i))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((r) => r._tag === "Started").length, 1)
        assert.isTrue(results.every((r) => r._tag === "Started" || r._tag === "InFlight"))
        assert.strictEqual((yield* store.get(p)).current?.attempt, 1)
      })))

    it.effect("stalled lists attempts in flight since before a time, oldest first, up to the limit", () =>
      run(Effect.gen(function*() {
        const store = yield* AutoTopUpStore
        const [a, b, c, d] = [projectId(), projectId(), projectId(), projectId()]
        for (const p of [a, b, c, d]) yield* store.configure(p, settings())
        yield* store.begin(b, request(MARCH + 20))
        yield* store.begin(a, request(MARCH + 10))
        yield* store.begin(c, request(MARCH + 30))
        yield* store.begin(d, request(MARCH + 5))
        yield* store.finish(d, 1, "succeeded")
        const ids = (states: ReadonlyArray<{ readonly projectId: string }>) => states.map((s) => s.projectId)
        assert.deepStrictEqual(ids(yield* store.stalled({ startedBefore: MARCH + 30, limit: 10 })), [a, b])
        assert.deepStrictEqual(ids(yield* store.stalled({ startedBefore: MARCH + 31, limit: 2 })), [a, b])
        assert.deepStrictEqual(yield* store.stalled({ startedBefore: MARCH + 31, limit: 0 }), [])
      })))
  })
