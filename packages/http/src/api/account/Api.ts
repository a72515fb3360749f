/** The caller's own project: plan, wallet, ledger, top-ups and contributor earnings. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { AccountId, Credits, Dataset, Grant, ProjectId, Transaction } from "@tollgate/core"
import { Schema } from "effect"
import { ApiKeyAuthentication } from "../Authentication.js"
import { OptionalIdempotencyKey, PageParams } from "../Params.js"
import { BadGatewayProblem, BadRequestProblem, ServiceUnavailableProblem } from "../Problems.js"
import { ProjectOverview } from "../Views.js"

export const LedgerPage = Schema.Struct({
  transactions: Schema.Array(Transaction).annotations({ description: "Newest first" }),
  nextCursor: Schema.optional(Schema.String),
  grants: Schema.Array(Grant).annotations({ description: "The wallet's lots, in the order they are spent" })
}).annotations({ identifier: "LedgerPage" })

export const TopUpRequest = Schema.Struct({
  credits: Credits.pipe(Schema.positive()).annotations({ description: "Credits to buy", examples: [1_000 as Credits] })
}).annotations({ identifier: "TopUpRequest" })

export const TopUpSession = Schema.Struct({
  sessionId: Schema.String,
  url: Schema.String.annotations({
    description: "Where the customer pays; the credits arrive with the provider's event"
  }),
  credits: Credits,
  amountCents: Schema.Int
}).annotations({ identifier: "TopUpSession" })

export const Earnings = Schema.Struct({
  projectId: ProjectId,
  account: AccountId,
  balance: Schema.Int.annotations({ description: "Credits earned and not yet paid out" }),
  datasets: Schema.Array(Dataset).annotations({ description: "The datasets this project contributes" })
}).annotations({ identifier: "Earnings" })

export class AccountApi extends HttpApiGroup.make("account")
  .add(
    HttpApiEndpoint.get("project", "/project")
      .addSuccess(ProjectOverview)
      .annotate(OpenApi.Summary, "My project, its plan and its balance")
  )
  .add(
    HttpApiEndpoint.get("ledger", "/ledger")
      .setUrlParams(PageParams)
      .addSuccess(LedgerPage)
      .annotate(OpenApi.Summary, "Ledger history and credit lots")
  )
  .add(
    HttpApiEndpoint.post("topUp", "/topups")
      .setHeaders(OptionalIdempotencyKey)
      .setPayload(TopUpRequest)
      .addSuccess(TopUpSession, { status: 201 })
      .addError(BadRequestProblem)
      .addError(BadGatewayProblem)
      .annotate(OpenApi.Summary, "Start a top-up")
      .annotate(
        OpenApi.Description,
        "Opens a checkout with the payment provider. Credits are granted only when the provider reports the " +
          "payment, never by this call. Send an `Idempotency-Key` to retry safely."
      )
  )
  .add(
    HttpApiEndpoint.get("earnings", "/earnings")
      .addSuccess(Earnings)
      .annotate(OpenApi.Summary, "Contributor earnings and contributed datasets")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(ApiKeyAuthentication)
  .prefix("/v1")
  .annotateContext(OpenApi.annotations({
    title: "Account",
    description: "The calling project (API key authentication)"
  }))
{}
