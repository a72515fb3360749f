import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { Dataset } from "../domain/Dataset.js"
import type { DatasetId, PlanId, RouteId } from "../domain/Ids.js"
import type { Plan } from "../domain/Plan.js"
import type { Route } from "../domain/Route.js"

export class CatalogUnavailable extends Schema.TaggedError<CatalogUnavailable>()("CatalogUnavailable", {
  message: Schema.String
}) {}

/** A plan's fields without its version: `putPlan` assigns the next version. */
export type PlanDraft = Omit<ConstructorParameters<typeof Plan>[0], "version">

/** Plans (versioned), routes and datasets: what the operator configures. */
export class Catalog extends Context.Tag("@tollgate/core/Catalog")<Catalog, {
  /** The given version, or the latest when no version is given. */
  readonly getPlan: (id: PlanId, version?: number) => Effect.Effect<Option.Option<Plan>, CatalogUnavailable>
  /** The latest version of every plan. */
  readonly listPlans: Effect.Effect<ReadonlyArray<Plan>, CatalogUnavailable>
  /** Stores a new version (1 for a new plan); earlier versions stay readable. */
  readonly putPlan: (draft: PlanDraft) => Effect.Effect<Plan, CatalogUnavailable>
  readonly listRoutes: Effect.Effect<ReadonlyArray<Route>, CatalogUnavailable>
  readonly getRoute: (id: RouteId) => Effect.Effect<Option.Option<Route>, CatalogUnavailable>
  readonly putRoute: (route: Route) => Effect.Effect<void, CatalogUnavailable>
  readonly deleteRoute: (id: RouteId) => Effect.Effect<boolean, CatalogUnavailable>
  readonly getDataset: (id: DatasetId) => Effect.Effect<Option.Option<Dataset>, CatalogUnavailable>
  readonly listDatasets: Effect.Effect<ReadonlyArray<Dataset>, CatalogUnavailable>
  readonly putDataset: (dataset: Dataset) => Effect.Effect<void, CatalogUnavailable>
}>() {}
