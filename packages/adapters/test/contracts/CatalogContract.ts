import { assert, describe, it } from "@effect/vitest"
import type { Category, Credits, DatasetId, PlanDraft, PlanId, RouteId } from "@tollgate/core"
import { Catalog, Dataset, Plan, Route } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Option } from "effect"
import { cr, projectId, unique } from "./fixtures.js"

const search = "search" as Category

const draft = (id: PlanId, fields: Partial<PlanDraft> = {}): PlanDraft => ({
  id,
  name: "Starter",
  priceCents: 1_000,
  allowedCategories: [search],
  rateLimits: [],
  monthlyAllowance: cr(1_000),
  prices: { [search]: cr(2) } as Record<Category, Credits>,
  defaultPrice: cr(1),
  concurrencyCap: 4,
  lowBalanceThreshold: cr(100),
  ...fields
})

const route = (id: RouteId, fields: Partial<ConstructorParameters<typeof Route>[0]> = {}): Route =>
  new Route({
    id,
    method: "GET",
    pathPrefix: "/v1/search",
    upstream: "https://upstream.example.com",
    category: search,
    ...fields
  })

const dataset = (id: DatasetId, fields: Partial<ConstructorParameters<typeof Dataset>[0]> = {}): Dataset =>
  new Dataset({ id, name: "Weather", contributor: projectId(), shareBps: 2_000 as Dataset["shareBps"], ...fields })

/** Ids that sort as their suffixes do: `ids("plan", "b", "a")` lists as a, b. */
const ids = <I extends string>(prefix: string, ...suffixes: ReadonlyArray<string>): Array<I> => {
  const base = unique(prefix)
  return suffixes.map((s) => `${base}_${s}` as I)
}

/**
 * The Catalog contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store.
 */
export const catalogContract = (name: string, layer: Layer.Layer<Catalog, unknown>) =>
  describe(`Catalog contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, Catalog>) => Effect.provide(body, layer)

    it.effect("a new plan is version 1; each put adds the next version and earlier ones stay readable", () =>
      run(Effect.gen(function*() {
        const catalog = yield* Catalog
        const id = unique("plan") as PlanId
        const v1 = yield* catalog.putPlan(draft(id, { priceCents: 1_000 }))
        assert.instanceOf(v1, Plan)
        assert.strictEqual(v1.version, 1)
        assert.isTrue(v1.public)
        const v2 = yield* catalog.putPlan(draft(id, { priceCents: 1_500, name: "Starter+" }))
        const v3 = yield* catalog.putPlan(draft(id, { priceCents: 1_200, public: false }))
        assert.deepStrictEqual([v2.version, v3.version], [2, 3])
        assert.deepStrictEqual(yield* catalog.getPlan(id), Option.some(v3))
        assert.deepStrictEqual(yield* catalog.getPlan(id, 1), Option.some(v1))
        assert.deepStrictEqual(yield* catalog.getPlan(id, 2), Option.some(v2))
        assert.strictEqual(Option.getOrThrow(yield* catalog.getPlan(id, 1)).priceCents, 1_000)
        assert.isFalse(Option.getOrThrow(yield* catalog.getPlan(id)).public)
        assert.isTrue(Option.isNone(yield* catalog.getPlan(id, 4)))
        assert.isTrue(Option.isNone(yield* catalog.getPlan(unique("plan") as PlanId)))
        assert.isTrue(Option.isNone(yield* catalog.getPlan(unique("plan") as PlanId, 1)))
      })))

    it.effect("the versions of one plan are distinct even when put concurrently", () =>
      run(Effect.gen(function*() {
        const catalog = yield* Catalog
        const id = unique("plan") as PlanId
        const plans = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => catalog.putPlan(draft(id, { priceCents: i }))),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(plans.map((p) => p.version).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        assert.strictEqual(Option.getOrThrow(yield* catalog.getPlan(id)).version, 10)
        for (const plan of plans) assert.deepStrictEqual(yield* catalog.getPlan(id, plan.version), Option.some(plan))
      })))

    it.effect("plans are listed at their latest version, cheapest first, equal prices by id", () =>
      run(Effect.gen(function*() {
        const catalog = yield* Catalog
        const [a, b, c, d] = ids<PlanId>("plan", "a", "b", "c", "d")
        yield* catalog.putPlan(draft(d!, { priceCents: 300 }))
        yield* catalog.putPlan(draft(b!, { priceCents: 100 }))
        yield* catalog.putPlan(draft(a!, { priceCents: 500 }))
        yield* catalog.putPlan(draft(c!, { priceCents: 300 }))
        const bLatest = yield* catalog.putPlan(draft(b!, { priceCents: 900 }))
        const listed = yield* catalog.listPlans
        assert.deepStrictEqual(listed.map((p) => [p.id, p.version, p.priceCents]), [
          [c, 1, 300],
          [d, 1, 300],
          [a, 1, 500],
          [b, 2, 900]
        ])
        assert.deepStrictEqual(listed[3], bLatest)
      })))

    it.effect("a route is put, replaced by id, listed by id and deleted once", () =>
      run(Effect.gen(function*() {
        const catalog = yield* Catalog
        assert.deepStrictEqual(yield* catalog.listRoutes, [])
        const [a, b, c] = ids<RouteId>("route", "a", "b", "c")
        const routeC = route(c!)
        const routeA = route(a!, { pathPrefix: "/v1/a" })
        yield* catalog.putRoute(routeC)
        yield* catalog.putRoute(routeA)
        yield* catalog.putRoute(route(b!))
        const replaced = route(a!, { pathPrefix: "/v2/a", upstream: "https://other.example.com", price: cr(7) })
        yield* catalog.putRoute(replaced)
        assert.deepStrictEqual(yield* catalog.getRoute(a!), Option.some(replaced))
        assert.deepStrictEqual((yield* catalog.listRoutes).map((r) => r.id), [a, b, c])
        assert.deepStrictEqual((yield* catalog.listRoutes)[0], replaced)
        assert.isTrue(yield* catalog.deleteRoute(b!))
        assert.isFalse(yield* catalog.deleteRoute(b!))
        assert.isFalse(yield* catalog.deleteRoute(unique("route") as RouteId))
        assert.isTrue(Option.isNone(yield* catalog.getRoute(b!)))
        assert.deepStrictEqual(yield* catalog.listRoutes, [replaced, routeC])
      })))

    it.effect("a route keeps every field it was put with", () =>
      run(Effect.gen(function*() {
        const catalog = yield* Catalog
        const full = route(unique("route") as RouteId, {
          method: "POST",
          price: cr(3),
          datasetParam: { in: "path", index: 0 },
          timeoutMs: 5_000,
          failurePolicy: "closed",
          rateLimits: [],
          costHeader: "x-cost"
        })
        yield* catalog.putRoute(full)
        assert.deepStrictEqual(yield* catalog.getRoute(full.id), Option.some(full))
      })))

    it.effect("a dataset is put, replaced by id and listed by id", () =>
      run(Effect.gen(function*() {
        const catalog = yield* Catalog
        assert.deepStrictEqual(yield* catalog.listDatasets, [])
        const [a, b] = ids<DatasetId>("ds", "a", "b")
        const dsB = dataset(b!)
        yield* catalog.putDataset(dsB)
        yield* catalog.putDataset(dataset(a!))
        const replaced = dataset(a!, { name: "Weather v2", shareBps: 3_500 as Dataset["shareBps"] })
        yield* catalog.putDataset(replaced)
        assert.deepStrictEqual(yield* catalog.getDataset(a!), Option.some(replaced))
        assert.deepStrictEqual(yield* catalog.listDatasets, [replaced, dsB])
        assert.isTrue(Option.isNone(yield* catalog.getDataset(unique("ds") as DatasetId)))
      })))
  })
