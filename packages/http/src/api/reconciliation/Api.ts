/** Reconciliation reports: what the payment provider recorded against what the ledger did, difference by difference. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { EpochMillis, ReconciliationId, ReconciliationReport, ReconciliationRun } from "@tollgate/core"
import { Schema } from "effect"
import { AdminAuthentication } from "../Authentication.js"
import { PageParams } from "../Params.js"
import { BadRequestProblem, NotFoundProblem, ServiceUnavailableProblem } from "../Problems.js"

export const RunReconciliationRequest = Schema.Struct({
  from: EpochMillis.annotations({ description: "Inclusive start of the window; epoch ms" }),
  to: EpochMillis.annotations({ description: "Exclusive end of the window; epoch ms; after `from`" })
}).annotations({
  identifier: "RunReconciliationRequest",
  examples: [{ from: 1_767_225_600_000, to: 1_767_312_000_000 }]
})

export const ReconciliationPage = Schema.Struct({
  data: Schema.Array(ReconciliationRun).annotations({ description: "Latest first; without their differences" }),
  nextCursor: Schema.optional(Schema.String)
}).annotations({ identifier: "ReconciliationPage" })

const ReconciliationIdPath = Schema.Struct({
  // the router matches path parameters of at most 100 characters
  id: ReconciliationId.pipe(Schema.maxLength(100)).annotations({ description: "The report's id" })
})

export class AdminReconciliationsApi extends HttpApiGroup.make("adminReconciliations")
  .add(
    HttpApiEndpoint.post("run", "/reconciliations")
      .setPayload(RunReconciliationRequest)
      .addSuccess(ReconciliationReport, { status: 201 })
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Reconcile a window now")
      .annotate(
        OpenApi.Description,
        "Compares the payment provider's payments, refunds and disputes in `[from, to)` with the ledger's grants " +
          "and reversals, stores the report and returns it with every difference. It never changes a balance. A " +
          "provider that cannot list its records (or a store that is down while comparing) gives a report with " +
          "status `failed` and the reason in `detail`; `from` not before `to` is `invalid_window`."
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/reconciliations")
      .setUrlParams(PageParams)
      .addSuccess(ReconciliationPage)
      .annotate(OpenApi.Summary, "Reconciliation runs, latest first")
  )
  .add(
    HttpApiEndpoint.get("get", "/reconciliations/:id")
      .setPath(ReconciliationIdPath)
      .addSuccess(ReconciliationReport)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "A reconciliation report and its differences")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({
    title: "Admin: reconciliation",
    description: "The provider's payments, refunds and disputes against the ledger's grants and reversals"
  }))
{}
