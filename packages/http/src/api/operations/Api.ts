/** Liveness, readiness and metrics, for orchestrators and scrapers. */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { ServiceUnavailableProblem } from "../Problems.js"

export const prometheusContentType = "text/plain; version=0.0.4"

export const Health = Schema.Struct({ status: Schema.Literal("ok") }).annotations({ identifier: "Health" })

export const Readiness = Schema.Struct({
  status: Schema.Literal("ready"),
  checks: Schema.Record({ key: Schema.String, value: Schema.Literal("ok", "failed", "degraded") })
}).annotations({ identifier: "Readiness" })

export class OperationsApi extends HttpApiGroup.make("operations")
  .add(
    HttpApiEndpoint.get("health", "/healthz")
      .addSuccess(Health)
      .annotate(OpenApi.Summary, "Liveness: the process answers")
  )
  .add(
    HttpApiEndpoint.get("ready", "/readyz")
      .addSuccess(Readiness)
      .addError(ServiceUnavailableProblem)
      .annotate(OpenApi.Summary, "Readiness: every store answers a cheap query in time")
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: prometheusContentType }))
      .annotate(OpenApi.Summary, "Prometheus metrics (text exposition format 0.0.4)")
  )
  .annotateContext(OpenApi.annotations({ title: "Operations", description: "Health and metrics (no authentication)" }))
{}
