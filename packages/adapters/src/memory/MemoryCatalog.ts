import type { Dataset, DatasetId, PlanDraft, PlanId, Route, RouteId } from "@tollgate/core"
import { Catalog, Plan } from "@tollgate/core"
import { Effect, Layer, Option } from "effect"

const byId = <A extends { readonly id: string }>(a: A, b: A): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Cheapest first, so the upsell can take the first plan that allows a category. */
const byPrice = (a: Plan, b: Plan): number => a.priceCents - b.priceCents || byId(a, b)

/**
 * The catalog in process memory. A plan keeps every version it was given; `putPlan` reads the
 * latest version and appends the next in one synchronous block, so two concurrent puts of one
 * plan get distinct versions.
 */
export const makeMemoryCatalog = Effect.sync(() => {
  /** Each plan's versions in order: index `v - 1` holds version `v`. */
  const plans = new Map<PlanId, Array<Plan>>()
  const routes = new Map<RouteId, Route>()
  const datasets = new Map<DatasetId, Dataset>()

  const getPlan = Effect.fnUntraced(function*(id: PlanId, version?: number) {
    const versions = plans.get(id) ?? []
    return Option.fromNullable(version === undefined ? versions.at(-1) : versions.find((p) => p.version === version))
  })

  const putPlan = Effect.fnUntraced(function*(draft: PlanDraft) {
    const versions = plans.get(draft.id) ?? []
    const plan = new Plan({ ...draft, version: versions.length + 1 })
    plans.set(draft.id, [...versions, plan])
    return plan
  })

  const getRoute = Effect.fnUntraced(function*(id: RouteId) {
    return Option.fromNullable(routes.get(id))
  })

  const putRoute = Effect.fnUntraced(function*(route: Route) {
    routes.set(route.id, route)
  })

  const deleteRoute = Effect.fnUntraced(function*(id: RouteId) {
    return routes.delete(id)
  })

  const getDataset = Effect.fnUntraced(function*(id: DatasetId) {
    return Option.fromNullable(datasets.get(id))
  })

  const putDataset = Effect.fnUntraced(function*(dataset: Dataset) {
    datasets.set(dataset.id, dataset)
  })

  return Catalog.of({
    getPlan,
    listPlans: Effect.sync(() => [...plans.values()].map((versions) => versions.at(-1)!).sort(byPrice)).pipe(
      Effect.withSpan("Catalog.listPlans")
    ),
    putPlan,
    listRoutes: Effect.sync(() => [...routes.values()].sort(byId)),
    getRoute,
    putRoute,
    deleteRoute,
    getDataset,
    listDatasets: Effect.sync(() => [...datasets.values()].sort(byId)),
    putDataset
  })
})

export const MemoryCatalogLive = Layer.effect(Catalog, makeMemoryCatalog)
