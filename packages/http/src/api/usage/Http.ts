import { HttpApiBuilder } from "@effect/platform"
import type { DatasetId, ProjectId, RouteId, UsageFilter, UsageGrouping } from "@tollgate/core"
import { UsageLog } from "@tollgate/core"
import { Effect } from "effect"
import { ManagementApi } from "../Api.js"
import { CurrentPrincipal } from "../Authentication.js"
import { DEFAULT_LIMIT } from "../Params.js"
import { orUnavailable } from "../Problems.js"

interface Query {
  readonly projectId?: ProjectId | undefined
  readonly routeId?: RouteId | undefined
  readonly datasetId?: DatasetId | undefined
  readonly from?: number | undefined
  readonly to?: number | undefined
}

const filterOf = (query: Query): UsageFilter => ({
  projectId: query.projectId,
  routeId: query.routeId,
  datasetId: query.datasetId,
  from: query.from ?? 0,
  to: query.to ?? Number.MAX_SAFE_INTEGER
})

const makeUsage = Effect.gen(function*() {
  const usage = yield* UsageLog
  const list = (query: Query & { readonly cursor?: string | undefined; readonly limit?: number | undefined }) =>
    usage.list(filterOf(query), { cursor: query.cursor, limit: query.limit ?? DEFAULT_LIMIT }).pipe(
      Effect.map((page) => ({ data: page.records, nextCursor: page.nextCursor })),
      orUnavailable("usage_log")
    )
  const summary = (query: Query & { readonly groupBy?: UsageGrouping | undefined }) => {
    const groupBy = query.groupBy ?? "day"
    return usage.summarize(filterOf(query), groupBy).pipe(
      Effect.map((data) => ({ groupBy, data })),
      orUnavailable("usage_log")
    )
  }
  return { list, summary } as const
})

export const UsageLive = HttpApiBuilder.group(ManagementApi, "usage", (handlers) =>
  Effect.gen(function*() {
    const usage = yield* makeUsage
    return handlers
      .handle("list", ({ urlParams }) =>
        Effect.flatMap(CurrentPrincipal, ({ project }) =>
          usage.list({ ...urlParams, projectId: project.id })))
      .handle("summary", ({ urlParams }) =>
        Effect.flatMap(CurrentPrincipal, ({ project }) =>
          usage.summary({ ...urlParams, projectId: project.id })))
  }))

export const AdminUsageLive = HttpApiBuilder.group(ManagementApi, "adminUsage", (handlers) =>
  Effect.gen(function*() {
    const usage = yield* makeUsage
    return handlers
      .handle("list", ({ urlParams }) => usage.list(urlParams))
      .handle("summary", ({ urlParams }) => usage.summary(urlParams))
  }))
