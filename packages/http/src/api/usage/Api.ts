/** Usage rows (one per call through the gateway) and their roll-ups, for a project or across projects. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { DatasetId, ProjectId, RouteId, UsageRecord } from "@tollgate/core"
import { Schema } from "effect"
import { AdminAuthentication, ApiKeyAuthentication } from "../Authentication.js"
import { Cursor, EpochMillisParam, Limit } from "../Params.js"
import { ServiceUnavailableProblem } from "../Problems.js"

const window = {
  from: Schema.optional(EpochMillisParam("Inclusive start, in milliseconds since the Unix epoch (default: 0)")),
  to: Schema.optional(EpochMillisParam("Exclusive end, in milliseconds since the Unix epoch (default: no end)"))
}

const UsageListParams = Schema.Struct({
  ...window,
  routeId: Schema.optional(RouteId),
  datasetId: Schema.optional(DatasetId),
  cursor: Schema.optional(Cursor),
  limit: Schema.optional(Limit)
})

export const UsagePage = Schema.Struct({
  data: Schema.Array(UsageRecord).annotations({ description: "Newest first" }),
  nextCursor: Schema.optional(Schema.String)
}).annotations({ identifier: "UsagePage" })

export const UsageSummaryRow = Schema.Struct({
  group: Schema.String.annotations({
    description: "The day (YYYY-MM-DD), route, dataset (\"none\" if none) or project"
  }),
  calls: Schema.Int,
  credits: Schema.Int
}).annotations({ identifier: "UsageSummaryRow" })

export const UsageSummary = Schema.Struct({
  groupBy: Schema.Literal("day", "route", "dataset", "project"),
  data: Schema.Array(UsageSummaryRow)
}).annotations({ identifier: "UsageSummary" })

const ConsumerGrouping = Schema.Literal("day", "route", "dataset").annotations({ description: "Default: day" })
const AdminGrouping = Schema.Literal("day", "route", "dataset", "project").annotations({ description: "Default: day" })

export class UsageApi extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("list", "/usage")
      .setUrlParams(UsageListParams)
      .addSuccess(UsagePage)
      .annotate(OpenApi.Summary, "My usage rows")
  )
  .add(
    HttpApiEndpoint.get("summary", "/usage/summary")
      .setUrlParams(Schema.Struct({ ...window, groupBy: Schema.optional(ConsumerGrouping) }))
      .addSuccess(UsageSummary)
      .annotate(OpenApi.Summary, "My usage, summed by day, route or dataset")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(ApiKeyAuthentication)
  .prefix("/v1")
  .annotateContext(OpenApi.annotations({ title: "Usage", description: "The calling project's usage" }))
{}

export class AdminUsageApi extends HttpApiGroup.make("adminUsage")
  .add(
    HttpApiEndpoint.get("list", "/usage")
      .setUrlParams(Schema.Struct({ ...UsageListParams.fields, projectId: Schema.optional(ProjectId) }))
      .addSuccess(UsagePage)
      .annotate(OpenApi.Summary, "Usage rows of every project, or of one")
  )
  .add(
    HttpApiEndpoint.get("summary", "/usage/summary")
      .setUrlParams(
        Schema.Struct({ ...window, projectId: Schema.optional(ProjectId), groupBy: Schema.optional(AdminGrouping) })
      )
      .addSuccess(UsageSummary)
      .annotate(OpenApi.Summary, "Usage summed by day, route, dataset or project")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({ title: "Admin: usage", description: "Usage across projects" }))
{}
