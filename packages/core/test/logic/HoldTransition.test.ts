import { assert, describe, it } from "@effect/vitest"
import type { Credits, HoldId, ProjectId } from "@tollgate/core"
import { Hold, HoldTransition } from "@tollgate/core"
import { Either, FastCheck as fc } from "effect"

const hold = (status: Hold["status"] = "pending", amount = 10, expiresAt = 1_000) =>
  new Hold({
    id: "h" as HoldId,
    projectId: "p" as ProjectId,
    amount: amount as Credits,
    status,
    allocations: [],
    createdAt: 0,
    expiresAt
  })

const actionArb = fc.oneof(
  fc.record({ _tag: fc.constant("capture" as const), amount: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ _tag: fc.constant("void" as const) }),
  fc.record({ _tag: fc.constant("expire" as const) })
)

const apply = (h: Hold, action: HoldTransition.HoldAction, now: number) =>
  action._tag === "capture" ? HoldTransition.transition(h, action, now) : HoldTransition.transition(h, action, now)

describe("HoldTransition", () => {
  it("pending resolves to captured, voided or expired; every other state refuses with its name", () => {
    assert.deepStrictEqual(
      HoldTransition.transition(hold(), { _tag: "capture", amount: 10 }, 0),
      Either.right("captured")
    )
    assert.deepStrictEqual(HoldTransition.transition(hold(), { _tag: "void" }, 0), Either.right("voided"))
    assert.deepStrictEqual(HoldTransition.transition(hold(), { _tag: "expire" }, 1_000), Either.right("expired"))
    const codes = (["captured", "voided", "expired"] as const).map((s) => {
      const r = HoldTransition.transition(hold(s), { _tag: "void" }, 0)
      return Either.isLeft(r) ? r.left.code : "ok"
    })
    assert.deepStrictEqual(codes, ["hold_already_captured", "hold_already_voided", "hold_expired"])
  })

  it("a capture above the hold is refused; past the deadline only expiry applies", () => {
    const over = HoldTransition.transition(hold(), { _tag: "capture", amount: 11 }, 0)
    assert.strictEqual(Either.isLeft(over) && over.left.code, "exceeds_hold")
    const late = HoldTransition.transition(hold(), { _tag: "capture", amount: 1 }, 1_000)
    assert.strictEqual(Either.isLeft(late) && late.left.code, "hold_expired")
    const early = HoldTransition.transition(hold(), { _tag: "expire" }, 999)
    assert.isTrue(Either.isLeft(early))
  })

  it.prop(
    "over any sequence of actions a hold resolves at most once, and a capture never exceeds the hold",
    { actions: fc.array(fc.record({ action: actionArb, at: fc.integer({ min: 0, max: 2_000 }) }), { maxLength: 12 }) },
    ({ actions }) => {
      let h = hold()
      let resolutions = 0
      for (const { action, at } of actions) {
        const r = apply(h, action, at)
        if (Either.isRight(r)) {
          resolutions++
          if (action._tag === "capture") assert.isAtMost(action.amount, h.amount)
          if (r.right === "expired") assert.isAtLeast(at, h.expiresAt)
          else assert.isBelow(at, h.expiresAt)
          h = new Hold({ ...h, status: r.right })
        }
      }
      assert.isAtMost(resolutions, 1)
      assert.strictEqual(h.status === "pending", resolutions === 0)
    },
    { fastCheck: { numRuns: 1_000 } }
  )
})
