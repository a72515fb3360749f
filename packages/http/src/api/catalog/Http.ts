import { HttpApiBuilder } from "@effect/platform"
import { Catalog, Dataset, ProjectStore, Route } from "@tollgate/core"
import { Effect, Option } from "effect"
import { putPlanIfChanged } from "../../config/ConfigFile.js"
import { ManagementApi } from "../Api.js"
import { BadRequest, notFound, orUnavailable } from "../Problems.js"

export const AdminPlansLive = HttpApiBuilder.group(ManagementApi, "adminPlans", (handlers) =>
  Effect.gen(function*() {
    const catalog = yield* Catalog
    return handlers
      .handle("list", () => catalog.listPlans.pipe(Effect.map((data) => ({ data })), orUnavailable("catalog")))
      .handle("get", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const plan = yield* catalog.getPlan(path.id, urlParams.version).pipe(orUnavailable("catalog"))
          if (Option.isNone(plan)) {
            return yield* notFound(
              "plan_not_found",
              urlParams.version === undefined ? `No plan ${path.id}` : `No plan ${path.id} version ${urlParams.version}`
            )
          }
          return plan.value
        }))
      // the body was decoded with the Plan's own field schemas, so the draft is valid by construction;
      // an unchanged draft (a retried call) returns the latest version instead of making another
      .handle("put", ({ path, payload }) =>
        putPlanIfChanged(catalog, { ...payload, id: path.id }).pipe(
          Effect.map(({ plan }) => plan),
          orUnavailable("catalog")
        ))
  }))

export const AdminRoutesLive = HttpApiBuilder.group(ManagementApi, "adminRoutes", (handlers) =>
  Effect.gen(function*() {
    const catalog = yield* Catalog
    return handlers
      .handle("list", () => catalog.listRoutes.pipe(Effect.map((data) => ({ data })), orUnavailable("catalog")))
      .handle("put", ({ path, payload }) =>
        Effect.gen(function*() {
          const route = new Route({ ...payload, id: path.id })
          yield* catalog.putRoute(route).pipe(orUnavailable("catalog"))
          return route
        }))
      .handle("delete", ({ path }) =>
        Effect.gen(function*() {
          const deleted = yield* catalog.deleteRoute(path.id).pipe(orUnavailable("catalog"))
          if (!deleted) return yield* notFound("route_not_found", `No route ${path.id}`)
        }))
  }))

export const AdminDatasetsLive = HttpApiBuilder.group(
  ManagementApi,
  "adminDatasets",
  (handlers) =>
    Effect.gen(function*() {
      const catalog = yield* Catalog
      const projects = yield* ProjectStore
      return handlers
        .handle("list", () => catalog.listDatasets.pipe(Effect.map((data) => ({ data })), orUnavailable("catalog")))
        .handle("put", ({ path, payload }) =>
          Effect.gen(function*() {
            const contributor = yield* projects.get(payload.contributor).pipe(orUnavailable("project_store"))
            if (Option.isNone(contributor)) {
              return yield* new BadRequest({
                code: "contributor_not_found",
                detail: `The contributor ${payload.contributor} is not a project`
              })
            }
            const dataset = new Dataset({ ...payload, id: path.id })
            yield* catalog.putDataset(dataset).pipe(orUnavailable("catalog"))
            return dataset
          }))
    })
)
