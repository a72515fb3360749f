import { assert, describe, it } from "@effect/vitest"
import type { Credits, GrantId, ProjectId } from "@tollgate/core"
import { DrawDown, Grant } from "@tollgate/core"
import { FastCheck as fc, Option } from "effect"

const lot = (id: string, remaining: number, expiresAt?: number, createdAt = 0) =>
  new Grant({
    id: id as GrantId,
    projectId: "p" as ProjectId,
    source: expiresAt === undefined ? "purchase" : "promotion",
    amount: remaining as Credits,
    remaining: remaining as Credits,
    createdAt,
    ...(expiresAt === undefined ? {} : { expiresAt })
  })

const lotArb = fc.record({
  remaining: fc.integer({ min: 0, max: 100 }),
  expiresAt: fc.option(fc.integer({ min: 1, max: 1_000 }), { nil: undefined }),
  createdAt: fc.integer({ min: 0, max: 50 })
})

describe("DrawDown", () => {
  it("draws from the lot that expires first, purchases last, and skips expired lots", () => {
    const lots = [lot("buy", 100), lot("late", 10, 900), lot("soon", 10, 500), lot("gone", 50, 100)]
    const taken = DrawDown.allocate(lots, 15, 200)
    assert.deepStrictEqual(Option.getOrThrow(taken).map((a) => [a.grantId, a.amount]), [["soon", 10], ["late", 5]])
    assert.strictEqual(DrawDown.available(lots, 200), 120)
    assert.isTrue(Option.isNone(DrawDown.allocate(lots, 121, 200)))
    assert.deepStrictEqual(
      Option.getOrThrow(DrawDown.allocate(lots, 500, 200, true)).map((a) => a.amount),
      [10, 10, 100]
    )
  })

  it("a capture consumes allocations in drawing order and releases the rest", () => {
    const allocations = [{ grantId: "a" as GrantId, amount: 4 as Credits }, {
      grantId: "b" as GrantId,
      amount: 6 as Credits
    }]
    const { consumed, released } = DrawDown.splitAllocations(allocations, 7)
    assert.deepStrictEqual(consumed.map((a) => [a.grantId, a.amount]), [["a", 4], ["b", 3]])
    assert.deepStrictEqual(released.map((a) => [a.grantId, a.amount]), [["b", 3]])
  })

  it.prop(
    "an allocation takes exactly the amount from live lots, never more than a lot holds, earliest expiry first",
    {
      lots: fc.array(lotArb, { maxLength: 8 }),
      amount: fc.integer({ min: 1, max: 400 }),
      now: fc.integer({ min: 0, max: 1_000 })
    },
    ({ amount, lots, now }) => {
      const grants = lots.map((l, i) => lot(`g${i}`, l.remaining, l.expiresAt, l.createdAt))
      const available = DrawDown.available(grants, now)
      const taken = DrawDown.allocate(grants, amount, now)
      assert.strictEqual(Option.isSome(taken), amount <= available)
      if (Option.isNone(taken)) return
      assert.strictEqual(DrawDown.sumAllocations(taken.value), amount)
      const byId = new Map(grants.map((g) => [g.id, g]))
      for (const a of taken.value) {
        const g = byId.get(a.grantId)!
        assert.isTrue(DrawDown.isLive(g, now))
        assert.isAtMost(a.amount, g.remaining)
      }
      // every lot drawn before the last one was emptied: no later-expiring lot is touched while an earlier one has credit
      taken.value.slice(0, -1).forEach((a) => assert.strictEqual(a.amount, byId.get(a.grantId)!.remaining))
      for (let i = 1; i < taken.value.length; i++) {
        assert.isAtMost(
          DrawDown.drawOrder(byId.get(taken.value[i - 1]!.grantId)!, byId.get(taken.value[i]!.grantId)!),
          0
        )
      }
    },
    { fastCheck: { numRuns: 1_000 } }
  )

  it.prop(
    "consumed plus released is exactly what was held",
    {
      parts: fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 6 }),
      permille: fc.integer({ min: 0, max: 1_000 })
    },
    ({ parts, permille }) => {
      const allocations = parts.map((amount, i) => ({ grantId: `g${i}` as GrantId, amount: amount as Credits }))
      const held = DrawDown.sumAllocations(allocations)
      const capture = Math.floor((held * permille) / 1_000)
      const { consumed, released } = DrawDown.splitAllocations(allocations, capture)
      assert.strictEqual(DrawDown.sumAllocations(consumed), capture)
      assert.strictEqual(DrawDown.sumAllocations(released), held - capture)
    },
    { fastCheck: { numRuns: 1_000 } }
  )
})
