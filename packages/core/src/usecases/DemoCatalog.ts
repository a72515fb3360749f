import { Effect } from "effect"
import { BasisPoints, Credits } from "../domain/Credits.js"
import { Dataset } from "../domain/Dataset.js"
import type { Category, DatasetId, PlanId, ProjectId, RouteId } from "../domain/Ids.js"
import type { Plan } from "../domain/Plan.js"
import { Project } from "../domain/Project.js"
import { RateLimitPolicy } from "../domain/RateLimitPolicy.js"
import { Route } from "../domain/Route.js"
import type { PlanDraft } from "../ports/Catalog.js"
import { Catalog } from "../ports/Catalog.js"
import { ProjectStore } from "../ports/ProjectStore.js"

const c = (n: number) => Credits.make(n)
const cat = (s: string) => s as Category
const limit = (name: string, scope: RateLimitPolicy["scope"], n: number, windowMs: number) =>
  new RateLimitPolicy({ name, scope, limit: n, windowMs, shadow: false })

/** Free, Basic and Pro as shipped: what a new installation offers until the operator changes it. */
export const defaultPlans: ReadonlyArray<PlanDraft> = [
  {
    id: "free" as PlanId,
    name: "Free",
    priceCents: 0,
    allowedCategories: [cat("search")],
    rateLimits: [limit("per_second", "key", 2, 1_000), limit("per_day", "project", 1_000, 86_400_000)],
    monthlyAllowance: c(100),
    prices: { [cat("search")]: c(1) },
    defaultPrice: c(1),
    concurrencyCap: 2,
    lowBalanceThreshold: c(20),
    public: true
  },
  {
    id: "basic" as PlanId,
    name: "Basic",
    priceCents: 1_900,
    allowedCategories: [cat("search"), cat("query")],
    rateLimits: [limit("per_second", "key", 10, 1_000), limit("per_day", "project", 50_000, 86_400_000)],
    monthlyAllowance: c(5_000),
    prices: { [cat("search")]: c(1), [cat("query")]: c(5) },
    defaultPrice: c(1),
    concurrencyCap: 10,
    lowBalanceThreshold: c(500),
    public: true
  },
  {
    id: "pro" as PlanId,
    name: "Pro",
    priceCents: 9_900,
    allowedCategories: [cat("search"), cat("query"), cat("export")],
    rateLimits: [limit("per_second", "key", 50, 1_000), limit("per_day", "project", 1_000_000, 86_400_000)],
    monthlyAllowance: c(50_000),
    prices: { [cat("search")]: c(1), [cat("query")]: c(4), [cat("export")]: c(20) },
    defaultPrice: c(1),
    concurrencyCap: 50,
    lowBalanceThreshold: c(5_000),
    public: true
  }
]

/** The demo's contributor and its dataset: contributors earn 30 % of each call that queries it. */
export const demoContributor = "contributor-acme" as ProjectId
export const demoDataset = new Dataset({
  id: "weather-eu" as DatasetId,
  name: "European weather observations",
  contributor: demoContributor,
  shareBps: BasisPoints.make(3_000)
})

/** Routes of the demo upstream: search (every plan), dataset queries (Basic and Pro), exports (Pro only). */
export const demoRoutes = (upstream: string): ReadonlyArray<Route> => [
  new Route({ id: "search" as RouteId, method: "GET", pathPrefix: "/api/search", upstream, category: cat("search") }),
  new Route({
    id: "dataset-query" as RouteId,
    method: "*",
    pathPrefix: "/api/datasets",
    upstream,
    category: cat("query"),
    datasetParam: { in: "path", index: 0 },
    costHeader: "x-units-used"
  }),
  new Route({
    id: "export" as RouteId,
    method: "POST",
    pathPrefix: "/api/export",
    upstream,
    category: cat("export"),
    failurePolicy: "closed",
    timeoutMs: 120_000
  })
]

/** Puts the default plans, the demo routes and dataset, the contributor and one project per plan. */
export const seedDemoCatalog = Effect.fn("seedDemoCatalog")(function*(upstream: string, now: number) {
  const catalog = yield* Catalog
  const projects = yield* ProjectStore
  const plans: Array<Plan> = []
  for (const draft of defaultPlans) plans.push(yield* catalog.putPlan(draft))
  for (const route of demoRoutes(upstream)) yield* catalog.putRoute(route)
  yield* catalog.putDataset(demoDataset)
  yield* projects.put(
    new Project({
      id: demoContributor,
      name: "Acme Data (contributor)",
      planId: "free" as PlanId,
      planVersion: 1,
      createdAt: now
    })
  )
  const demo: Array<{ readonly project: Project; readonly plan: Plan }> = []
  for (const plan of plans) {
    const project = new Project({
      id: `demo-${plan.id}` as ProjectId,
      name: `Demo ${plan.name}`,
      planId: plan.id,
      planVersion: plan.version,
      createdAt: now
    })
    yield* projects.put(project)
    demo.push({ project, plan })
  }
  return demo
})
