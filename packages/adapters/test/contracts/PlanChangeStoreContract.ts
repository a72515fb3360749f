import { assert, describe, it } from "@effect/vitest"
import type { PendingPlanChange, PlanId, SubscriptionChange } from "@tollgate/core"
import { PlanChangeStore } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Option } from "effect"
import { projectId } from "./fixtures.js"

const plan = (id: string) => id as PlanId

const change = (fields: Partial<SubscriptionChange> = {}): SubscriptionChange => ({
  subscriptionId: "sub_1",
  planId: plan("pro"),
  version: 100,
  effectiveAt: 200_000,
  reason: "created",
  ended: false,
  ...fields
})

const pending = (fields: Partial<PendingPlanChange> = {}): PendingPlanChange => ({
  planId: plan("basic"),
  effectiveAt: 1_000,
  reason: "downgraded",
  ...fields
})

/**
 * The PlanChangeStore contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store.
 */
export const planChangeStoreContract = (name: string, layer: Layer.Layer<PlanChangeStore, unknown>) =>
  describe(`PlanChangeStore contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, PlanChangeStore>) => Effect.provide(body, layer)

    it.effect("a project without subscription events has no state", () =>
      run(Effect.gen(function*() {
        const store = yield* PlanChangeStore
        assert.isTrue(Option.isNone(yield* store.get(projectId())))
      })))

    it.effect("record keeps the first base plan and each distinct event once", () =>
      run(Effect.gen(function*() {
        const store = yield* PlanChangeStore
        const p = projectId()
        const first = yield* store.record(p, plan("free"), change())
        assert.deepStrictEqual(first, { projectId: p, basePlanId: plan("free"), changes: [change()] })
        yield* store.record(p, plan("pro"), change())
        const second = change({ version: 101, planId: plan("basic"), reason: "upgraded" })
        const after = yield* store.record(p, plan("pro"), second)
        assert.deepStrictEqual(after, { projectId: p, basePlanId: plan("free"), changes: [change(), second] })
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get(p)), after)
      })))

    it.effect("events differing in any field are distinct", () =>
      run(Effect.gen(function*() {
        const store = yield* PlanChangeStore
        const p = projectId()
        yield* store.record(p, plan("free"), change())
        yield* store.record(p, plan("free"), change({ ended: true, reason: "cancelled" }))
        const state = yield* store.record(p, plan("free"), change({ effectiveAt: 300_000 }))
        assert.strictEqual(state.changes.length, 3)
      })))

    it.effect("the pending change is set, replaced, cleared only when it is still the one applied", () =>
      run(Effect.gen(function*() {
        const store = yield* PlanChangeStore
        const p = projectId()
        yield* store.record(p, plan("free"), change())
        yield* store.setPending(p, pending())
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get(p)).pending, pending())
        yield* store.setPending(p, pending({ planId: plan("free"), reason: "cancelled" }))
        assert.isFalse(yield* store.clearPending(p, pending()))
        assert.isTrue(yield* store.clearPending(p, pending({ planId: plan("free"), reason: "cancelled" })))
        assert.isUndefined(Option.getOrThrow(yield* store.get(p)).pending)
        yield* store.setPending(p, pending())
        yield* store.setPending(p, undefined)
        assert.isUndefined(Option.getOrThrow(yield* store.get(p)).pending)
        assert.isFalse(yield* store.clearPending(projectId(), pending()))
      })))

    it.effect("due lists the pending changes whose time has come, earliest first, up to the limit", () =>
      run(Effect.gen(function*() {
        const store = yield* PlanChangeStore
        const [a, b, c, d] = [projectId(), projectId(), projectId(), projectId()]
        for (const [p, at] of [[a, 3_000], [b, 1_000], [c, 9_000]] as const) {
          yield* store.record(p, plan("pro"), change())
          yield* store.setPending(p, pending({ effectiveAt: at }))
        }
        yield* store.record(d, plan("pro"), change())
        const due = yield* store.due({ now: 3_000, limit: 10 })
        assert.deepStrictEqual(due.map((s) => s.projectId), [b, a])
        assert.deepStrictEqual(due[0]!.pending, pending({ effectiveAt: 1_000 }))
        assert.deepStrictEqual((yield* store.due({ now: 10_000, limit: 2 })).map((s) => s.projectId), [b, a])
        assert.deepStrictEqual(yield* store.due({ now: 999, limit: 10 }), [])
      })))
  })
