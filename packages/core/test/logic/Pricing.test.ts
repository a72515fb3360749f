import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Credits } from "../../src/domain/Credits.js"
import { Category, PlanId, RouteId } from "../../src/domain/Ids.js"
import { Plan } from "../../src/domain/Plan.js"
import { Route } from "../../src/domain/Route.js"
import { priceOf } from "../../src/logic/Pricing.js"

const makePlan = (prices: Record<string, number>, defaultPrice: number) =>
  Plan.make({
    id: PlanId.make("pro"),
    version: 1,
    name: "Pro",
    priceCents: 0,
    allowedCategories: [],
    rateLimits: [],
    monthlyAllowance: Credits.make(0),
    prices: Object.fromEntries(Object.entries(prices).map(([k, v]) => [Category.make(k), Credits.make(v)])),
    defaultPrice: Credits.make(defaultPrice),
    concurrencyCap: 1,
    lowBalanceThreshold: Credits.make(0)
  })

const makeRoute = (category: string, price: number | undefined) =>
  Route.make({
    id: RouteId.make("r"),
    method: "GET",
    pathPrefix: "/v1",
    upstream: "http://upstream",
    category: Category.make(category),
    ...(price === undefined ? {} : { price: Credits.make(price) })
  })

describe("Pricing", () => {
  const plan = makePlan({ search: 3, export: 0 }, 5)

  it("prefers the route's price, then the plan's price for the category, then its default", () => {
    assert.strictEqual(priceOf(makeRoute("search", 9), plan), 9)
    assert.strictEqual(priceOf(makeRoute("search", undefined), plan), 3)
    assert.strictEqual(priceOf(makeRoute("query", undefined), plan), 5)
  })

  it("treats zero as a price, not as missing", () => {
    assert.strictEqual(priceOf(makeRoute("search", 0), plan), 0)
    assert.strictEqual(priceOf(makeRoute("export", undefined), plan), 0)
  })

  it("does not read inherited properties as prices", () => {
    assert.strictEqual(priceOf(makeRoute("constructor", undefined), plan), 5)
    assert.strictEqual(priceOf(makeRoute("constructor", undefined), makePlan({ constructor: 2 }, 5)), 2)
  })

  const categories = ["search", "query", "export", "constructor"]
  it.prop(
    "matches the precedence rule",
    [
      fc.dictionary(fc.constantFrom(...categories), fc.nat({ max: 100 })),
      fc.nat({ max: 100 }),
      fc.constantFrom(...categories),
      fc.option(fc.nat({ max: 100 }), { nil: undefined })
    ],
    ([prices, defaultPrice, category, routePrice]) => {
      const expected = routePrice ?? (Object.keys(prices).includes(category) ? prices[category] : defaultPrice)
      assert.strictEqual(priceOf(makeRoute(category, routePrice), makePlan(prices, defaultPrice)), expected)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
