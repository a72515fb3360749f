import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { BasisPoints, Credits } from "../../src/domain/Credits.js"
import { prorate, splitRevenue } from "../../src/logic/RevenueSplit.js"

const runs = { fastCheck: { numRuns: 1000 } }
const amountArb = fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.maxSafeNat()).map(Credits.make)
const bpsArb = fc.integer({ min: 0, max: 10_000 }).map(BasisPoints.make)

describe("RevenueSplit", () => {
  it("splits by basis points, rounding the contributor down", () => {
    assert.deepStrictEqual(splitRevenue(Credits.make(1000), BasisPoints.make(2500)), {
      contributor: 250,
      platform: 750
    })
    assert.deepStrictEqual(splitRevenue(Credits.make(3), BasisPoints.make(5000)), { contributor: 1, platform: 2 })
    assert.deepStrictEqual(splitRevenue(Credits.make(9), BasisPoints.make(1)), { contributor: 0, platform: 9 })
    assert.deepStrictEqual(splitRevenue(Credits.make(10), undefined), { contributor: 0, platform: 10 })
    assert.deepStrictEqual(splitRevenue(Credits.make(10), BasisPoints.make(10_000)), { contributor: 10, platform: 0 })
  })

  it("is exact where floating point is not", () => {
    // Math.floor(9007198441575536 * 4902 / 10000) is 4415328676060328.
    assert.strictEqual(
      splitRevenue(Credits.make(9007198441575536), BasisPoints.make(4902)).contributor,
      4415328676060327
    )
    const max = Credits.make(Number.MAX_SAFE_INTEGER)
    assert.deepStrictEqual(splitRevenue(max, BasisPoints.make(10_000)), { contributor: max, platform: 0 })
  })

  it.prop("the parts add up, and the contributor's is the floor of its share", [amountArb, bpsArb], ([amount, bps]) => {
    const { contributor, platform } = splitRevenue(amount, bps)
    assert.strictEqual(contributor + platform, amount)
    assert.isAtMost(contributor, amount)
    assert.isAtLeast(platform, 0)
    const share = BigInt(amount) * BigInt(bps)
    assert.isTrue(BigInt(contributor) * 10_000n <= share && share < BigInt(contributor + 1) * 10_000n)
  }, runs)

  it.prop("no share means the platform keeps everything", [amountArb], ([amount]) => {
    assert.deepStrictEqual(splitRevenue(amount, undefined), { contributor: 0, platform: amount })
  }, runs)

  it.prop("the contributor's part grows with the share", [amountArb, bpsArb, bpsArb], ([amount, a, b]) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a]
    assert.isAtMost(splitRevenue(amount, lo).contributor, splitRevenue(amount, hi).contributor)
  }, runs)

  it("prorates rounding down", () => {
    assert.strictEqual(prorate(Credits.make(100), Credits.make(1), Credits.make(3)), 33)
    assert.strictEqual(prorate(Credits.make(100), Credits.make(3), Credits.make(3)), 100)
    assert.strictEqual(prorate(Credits.make(100), Credits.make(0), Credits.make(3)), 0)
    assert.strictEqual(prorate(Credits.make(5), Credits.make(0), Credits.make(0)), 0)
    const max = Credits.make(Number.MAX_SAFE_INTEGER)
    assert.strictEqual(prorate(max, Credits.make(Number.MAX_SAFE_INTEGER - 1), max), Number.MAX_SAFE_INTEGER - 1)
  })

  const partOfWhole = fc.tuple(amountArb, fc.maxSafeNat().filter((n) => n > 0)).chain(([amount, whole]) =>
    fc.tuple(
      fc.constant(amount),
      fc.integer({ min: 0, max: whole }),
      fc.integer({ min: 0, max: whole }),
      fc.constant(whole)
    )
  )

  it.prop(
    "prorate is the floor of amount * part / whole, at most amount and monotone",
    [partOfWhole],
    ([[amount, a, b, whole]]) => {
      const [lo, hi] = [Credits.make(Math.min(a, b)), Credits.make(Math.max(a, b))]
      const w = Credits.make(whole)
      const r = prorate(amount, hi, w)
      const exact = BigInt(amount) * BigInt(hi)
      assert.isTrue(BigInt(r) * BigInt(whole) <= exact && exact < BigInt(r + 1) * BigInt(whole))
      assert.isAtMost(r, amount)
      assert.isAtMost(prorate(amount, lo, w), r)
      assert.strictEqual(prorate(amount, w, w), amount)
    },
    runs
  )

  it.prop("refunds in parts never reverse more than the whole", [
    amountArb,
    fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 10 })
  ], ([amount, parts]) => {
    const whole = Credits.make(parts.reduce((a, b) => a + b, 0))
    const reversed = parts.reduce((sum, part) => sum + prorate(amount, Credits.make(part), whole), 0)
    assert.isAtMost(reversed, amount)
    assert.isAbove(reversed, amount - parts.length)
  }, runs)
})
