/** Projects as the operator sees them: create, inspect, move between plans, grant and adjust credit. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Credits, EpochMillis, Grant, GrantSource, PlanId, Project, ProjectId, Transaction } from "@tollgate/core"
import { Schema } from "effect"
import { AdminAuthentication } from "../Authentication.js"
import { ProjectIdPath, RequiredIdempotencyKey } from "../Params.js"
import { BadRequestProblem, ConflictProblem, NotFoundProblem, ServiceUnavailableProblem } from "../Problems.js"
import { ProjectOverview } from "../Views.js"

const PlanVersion = Schema.Int.pipe(Schema.positive())
const PositiveCredits = Credits.pipe(Schema.positive())
const Reason = Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(500)).annotations({
  description: "Why; recorded on the ledger transaction"
})

export const ProjectList = Schema.Struct({ data: Schema.Array(Project) }).annotations({ identifier: "ProjectList" })

export const CreateProjectRequest = Schema.Struct({
  // the router matches path parameters of at most 100 characters: a longer id could not be addressed
  id: Schema.optional(ProjectId.pipe(Schema.maxLength(100)).annotations({ description: "Default: a generated id" })),
  name: Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(200)),
  planId: PlanId,
  planVersion: Schema.optional(PlanVersion.annotations({ description: "Default: the plan's latest version" }))
}).annotations({
  identifier: "CreateProjectRequest",
  examples: [{ name: "Acme Analytics", planId: "basic" as PlanId }]
})

export const ChangePlanRequest = Schema.Struct({
  planId: PlanId,
  planVersion: PlanVersion
}).annotations({ identifier: "ChangePlanRequest", examples: [{ planId: "pro" as PlanId, planVersion: 1 }] })

export const GrantCreditsRequest = Schema.Struct({
  credits: PositiveCredits,
  reason: Reason,
  source: GrantSource,
  expiresAt: Schema.optional(EpochMillis.annotations({ description: "When the lot expires; epoch ms" }))
}).annotations({
  identifier: "GrantCreditsRequest",
  examples: [{ credits: 500 as Credits, reason: "launch promotion", source: "promotion" }]
})

export const GrantCreditsResponse = Schema.Struct({
  result: Schema.Literal("created", "exists").annotations({
    description: "`exists`: this idempotency key was already used for this same grant; nothing new happened"
  }),
  grant: Grant,
  transaction: Transaction
}).annotations({ identifier: "GrantCreditsResponse" })

export const AdjustmentRequest = Schema.Struct({
  credits: PositiveCredits,
  direction: Schema.Literal("debit", "credit").annotations({
    description:
      "`debit` takes credit out of the wallet (earliest-expiring lots first); `credit` grants an adjustment lot"
  }),
  reason: Reason
}).annotations({
  identifier: "AdjustmentRequest",
  examples: [{ credits: 20 as Credits, direction: "debit", reason: "duplicate grant on 2026-01-03" }]
})

export const AdjustmentResponse = Schema.Struct({
  result: Schema.Literal("created", "exists"),
  direction: Schema.Literal("debit", "credit"),
  credits: Schema.Int,
  transaction: Schema.optional(Transaction)
}).annotations({ identifier: "AdjustmentResponse" })

export class AdminProjectsApi extends HttpApiGroup.make("adminProjects")
  .add(
    HttpApiEndpoint.get("list", "/projects")
      .addSuccess(ProjectList)
      .annotate(OpenApi.Summary, "Every project")
  )
  .add(
    HttpApiEndpoint.get("get", "/projects/:id")
      .setPath(ProjectIdPath)
      .addSuccess(ProjectOverview)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "A project, its plan and its balance")
  )
  .add(
    HttpApiEndpoint.post("create", "/projects")
      .setPayload(CreateProjectRequest)
      .addSuccess(Project, { status: 201 })
      .addError(BadRequestProblem)
      .addError(ConflictProblem)
      .annotate(OpenApi.Summary, "Create a project on a plan")
  )
  .add(
    HttpApiEndpoint.put("changePlan", "/projects/:id/plan")
      .setPath(ProjectIdPath)
      .setPayload(ChangePlanRequest)
      .addSuccess(Project)
      .addError(NotFoundProblem)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Move a project to a plan version (applies at once)")
  )
  .add(
    HttpApiEndpoint.post("grant", "/projects/:id/grants")
      .setPath(ProjectIdPath)
      .setHeaders(RequiredIdempotencyKey)
      .setPayload(GrantCreditsRequest)
      .addSuccess(GrantCreditsResponse, { status: 201 })
      .addError(NotFoundProblem)
      .addError(ConflictProblem)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Grant credits (a new lot)")
      .annotate(OpenApi.Description, "Requires an `Idempotency-Key`: a retry with the same key grants once.")
  )
  .add(
    HttpApiEndpoint.post("adjust", "/projects/:id/adjustments")
      .setPath(ProjectIdPath)
      .setHeaders(RequiredIdempotencyKey)
      .setPayload(AdjustmentRequest)
      .addSuccess(AdjustmentResponse, { status: 201 })
      .addError(NotFoundProblem)
      .addError(ConflictProblem)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Correct a wallet by a ledger transaction")
      .annotate(
        OpenApi.Description,
        "A debit moves credit from the wallet to the promotions account; a credit grants an `adjustment` lot from " +
          "it. Requires an `Idempotency-Key`."
      )
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({ title: "Admin: projects", description: "Tenants, their plans and credit" }))
{}
