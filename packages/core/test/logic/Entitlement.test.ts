import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc, Option } from "effect"
import { Credits } from "../../src/domain/Credits.js"
import { Category, PlanId } from "../../src/domain/Ids.js"
import { Plan } from "../../src/domain/Plan.js"
import { entitle } from "../../src/logic/Entitlement.js"

interface PlanSpec {
  readonly id: string
  readonly version: number
  readonly priceCents: number
  readonly allowedCategories: ReadonlyArray<string>
  readonly public: boolean
}

const makePlan = (spec: PlanSpec) =>
  Plan.make({
    id: PlanId.make(spec.id),
    version: spec.version,
    name: spec.id,
    priceCents: spec.priceCents,
    allowedCategories: spec.allowedCategories.map((c) => Category.make(c)),
    rateLimits: [],
    monthlyAllowance: Credits.make(0),
    prices: {},
    defaultPrice: Credits.make(1),
    concurrencyCap: 1,
    lowBalanceThreshold: Credits.make(0),
    public: spec.public
  })

const search = Category.make("search")
const exportCategory = Category.make("export")

const suggestion = (
  plan: Plan,
  category: Category,
  catalogue: ReadonlyArray<Plan>
): Option.Option<Plan> | "allowed" => {
  const result = entitle(plan, category, catalogue)
  return result._tag === "Allowed" ? "allowed" : result.cheapest
}

describe("Entitlement", () => {
  const free = makePlan({ id: "free", version: 1, priceCents: 0, allowedCategories: ["search"], public: true })
  const pro = makePlan({
    id: "pro",
    version: 1,
    priceCents: 2900,
    allowedCategories: ["search", "export"],
    public: true
  })
  const team = makePlan({
    id: "team",
    version: 1,
    priceCents: 9900,
    allowedCategories: ["search", "export"],
    public: true
  })

  it("allows the plan's categories", () => {
    assert.deepStrictEqual(entitle(free, search, [free, pro]), { _tag: "Allowed" })
  })

  it("suggests the cheapest public plan that allows the category", () => {
    const result = entitle(free, exportCategory, [team, free, pro])
    assert.strictEqual(result._tag, "NotEntitled")
    if (result._tag !== "NotEntitled") return
    assert.strictEqual(result.category, exportCategory)
    assert.deepStrictEqual(result.cheapest, Option.some(pro))
  })

  it("breaks price ties by the lowest id", () => {
    const alpha = makePlan({ id: "alpha", version: 1, priceCents: 2900, allowedCategories: ["export"], public: true })
    assert.deepStrictEqual(suggestion(free, exportCategory, [pro, alpha]), Option.some(alpha))
    assert.deepStrictEqual(suggestion(free, exportCategory, [alpha, pro]), Option.some(alpha))
  })

  it("skips private plans and superseded versions", () => {
    const hidden = makePlan({ id: "hidden", version: 1, priceCents: 0, allowedCategories: ["export"], public: false })
    // pro v2 dropped export: its cheaper v1 must not be suggested any more.
    const pro2 = makePlan({ id: "pro", version: 2, priceCents: 1900, allowedCategories: ["search"], public: true })
    assert.deepStrictEqual(suggestion(free, exportCategory, [hidden, pro, pro2, team]), Option.some(team))
    // team v2 is dearer: the suggestion carries the latest version.
    const team2 = makePlan({ id: "team", version: 2, priceCents: 12900, allowedCategories: ["export"], public: true })
    assert.deepStrictEqual(suggestion(free, exportCategory, [team2, hidden, pro, pro2, team]), Option.some(team2))
    // A private latest version hides the plan.
    const team3 = makePlan({ id: "team", version: 3, priceCents: 100, allowedCategories: ["export"], public: false })
    assert.deepStrictEqual(suggestion(free, exportCategory, [team3, team2, pro2]), Option.none())
  })

  it("suggests nothing when no public plan allows the category", () => {
    assert.deepStrictEqual(suggestion(free, exportCategory, []), Option.none())
    assert.deepStrictEqual(suggestion(free, exportCategory, [free]), Option.none())
  })

  const categories = ["search", "query", "export", "admin"]
  const specArb = fc.record({
    id: fc.constantFrom("a", "b", "c", "d"),
    version: fc.integer({ min: 1, max: 3 }),
    priceCents: fc.integer({ min: 0, max: 5 }),
    allowedCategories: fc.subarray(categories),
    public: fc.boolean()
  })
  const catalogueArb = fc.uniqueArray(specArb, { selector: (s) => `${s.id}@${s.version}`, maxLength: 12 }).map((
    specs
  ) => specs.map(makePlan))

  it.prop(
    "Allowed iff the plan allows the category; otherwise the cheapest latest public plan allowing it",
    [specArb.map(makePlan), fc.constantFrom(...categories).map((c) => Category.make(c)), catalogueArb],
    ([plan, category, catalogue]) => {
      const result = entitle(plan, category, catalogue)
      assert.strictEqual(result._tag === "Allowed", plan.allowedCategories.includes(category))
      if (result._tag === "Allowed") return
      assert.strictEqual(result.category, category)
      const latest = catalogue.filter((p) => catalogue.every((q) => q.id !== p.id || q.version <= p.version))
      const eligible = latest.filter((p) => p.public && p.allowedCategories.includes(category))
      if (Option.isNone(result.cheapest)) return assert.strictEqual(eligible.length, 0)
      const cheapest = result.cheapest.value
      assert.include(eligible, cheapest)
      for (const other of eligible) {
        assert.isTrue(
          other.priceCents > cheapest.priceCents ||
            (other.priceCents === cheapest.priceCents && other.id >= cheapest.id)
        )
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
