/**
 * The operator's catalog: plans (versioned), routes and datasets. Bodies are the core models'
 * own fields, so whatever reaches the catalog has passed the same validation as the models.
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Dataset, DatasetId, Plan, PlanId, Route, RouteId } from "@tollgate/core"
import { Schema, Struct } from "effect"
import { AdminAuthentication } from "../Authentication.js"
import { IntegerParam } from "../Params.js"
import { BadRequestProblem, NotFoundProblem, ServiceUnavailableProblem } from "../Problems.js"

/** A plan's fields without id (from the path) and version (assigned by the catalog). */
export const PlanDraftBody = Schema.Struct(Struct.omit(Plan.fields, "id", "version")).annotations({
  identifier: "PlanDraft",
  description: "A plan version's contents; storing it creates the plan's next version"
})

export const RouteBody = Schema.Struct(Struct.omit(Route.fields, "id")).annotations({
  identifier: "RouteDefinition",
  examples: [{
    method: "GET",
    pathPrefix: "/api/search",
    upstream: "http://search.internal:8080",
    category: "search" as Route["category"],
    timeoutMs: 30_000,
    failurePolicy: "open",
    rateLimits: []
  }]
})

export const DatasetBody = Schema.Struct(Struct.omit(Dataset.fields, "id")).annotations({
  identifier: "DatasetDefinition"
})

export const PlanList = Schema.Struct({ data: Schema.Array(Plan) }).annotations({ identifier: "PlanList" })
export const RouteList = Schema.Struct({ data: Schema.Array(Route) }).annotations({ identifier: "RouteList" })
export const DatasetList = Schema.Struct({ data: Schema.Array(Dataset) }).annotations({ identifier: "DatasetList" })

const PlanIdPath = Schema.Struct({ id: PlanId.annotations({ description: "The plan's id" }) })
const RouteIdPath = Schema.Struct({ id: RouteId.annotations({ description: "The route's id" }) })
const DatasetIdPath = Schema.Struct({ id: DatasetId.annotations({ description: "The dataset's id" }) })

export class AdminPlansApi extends HttpApiGroup.make("adminPlans")
  .add(
    HttpApiEndpoint.get("list", "/plans")
      .addSuccess(PlanList)
      .annotate(OpenApi.Summary, "The latest version of every plan, cheapest first")
  )
  .add(
    HttpApiEndpoint.get("get", "/plans/:id")
      .setPath(PlanIdPath)
      .setUrlParams(Schema.Struct({
        version: Schema.optional(IntegerParam({ minimum: 1, description: "The version (default: the latest)" }))
      }))
      .addSuccess(Plan)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "A plan version")
  )
  .add(
    HttpApiEndpoint.put("put", "/plans/:id")
      .setPath(PlanIdPath)
      .setPayload(PlanDraftBody)
      .addSuccess(Plan)
      .annotate(OpenApi.Summary, "Store a new version of a plan (version 1 for a new plan)")
      .annotate(OpenApi.Description, "Projects stay on the version they are on until moved.")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({ title: "Admin: plans", description: "Versioned plans" }))
{}

export class AdminRoutesApi extends HttpApiGroup.make("adminRoutes")
  .add(
    HttpApiEndpoint.get("list", "/routes")
      .addSuccess(RouteList)
      .annotate(OpenApi.Summary, "Every route")
  )
  .add(
    HttpApiEndpoint.put("put", "/routes/:id")
      .setPath(RouteIdPath)
      .setPayload(RouteBody)
      .addSuccess(Route)
      .annotate(OpenApi.Summary, "Create or replace a route")
  )
  .add(
    HttpApiEndpoint.del("delete", "/routes/:id")
      .setPath(RouteIdPath)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "Delete a route")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({ title: "Admin: routes", description: "What the proxy serves" }))
{}

export class AdminDatasetsApi extends HttpApiGroup.make("adminDatasets")
  .add(
    HttpApiEndpoint.get("list", "/datasets")
      .addSuccess(DatasetList)
      .annotate(OpenApi.Summary, "Every dataset")
  )
  .add(
    HttpApiEndpoint.put("put", "/datasets/:id")
      .setPath(DatasetIdPath)
      .setPayload(DatasetBody)
      .addSuccess(Dataset)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Create or replace a dataset (its contributor must be a project)")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({ title: "Admin: datasets", description: "Datasets and their contributors" }))
{}
