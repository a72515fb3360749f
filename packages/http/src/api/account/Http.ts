import { HttpApiBuilder } from "@effect/platform"
import { Catalog, earningsAccount, Ids, Ledger, PaymentProvider } from "@tollgate/core"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { ManagementApi } from "../Api.js"
import { CurrentPrincipal } from "../Authentication.js"
import { BillingSettings } from "../BillingSettings.js"
import { DEFAULT_LIMIT } from "../Params.js"
import { BadGateway, BadRequest, orUnavailable } from "../Problems.js"
import { balanceView } from "../Views.js"

/** Per project, bounded in length whatever the client sent: tenants choose keys independently. */
const providerIdempotencyKey = (projectId: string, key: string) =>
  `topup_${createHash("sha256").update(`${projectId}\n${key}`).digest("hex")}`

export const AccountLive = HttpApiBuilder.group(ManagementApi, "account", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const catalog = yield* Catalog
    const payments = yield* PaymentProvider
    const settings = yield* BillingSettings
    const ids = yield* Ids

    return handlers
      .handle("project", () =>
        Effect.gen(function*() {
          const { plan, project } = yield* CurrentPrincipal
          const balance = yield* ledger.balance(project.id).pipe(orUnavailable("ledger"))
          return { project, plan, balance: balanceView(balance) }
        }))
      .handle("ledger", ({ urlParams }) =>
        Effect.gen(function*() {
          const { project } = yield* CurrentPrincipal
          const [page, grants] = yield* Effect.all([
            ledger.history(project.id, { cursor: urlParams.cursor, limit: urlParams.limit ?? DEFAULT_LIMIT }),
            ledger.grants(project.id)
          ]).pipe(orUnavailable("ledger"))
          return { transactions: page.transactions, nextCursor: page.nextCursor, grants }
        }))
      .handle("topUp", ({ headers, payload }) =>
        Effect.gen(function*() {
          const { project } = yield* CurrentPrincipal
          const credits = payload.credits
          const amountCents = Math.ceil(credits * settings.creditPriceCents)
          if (
            credits < settings.minTopUpCredits || credits > settings.maxTopUpCredits ||
            !Number.isSafeInteger(amountCents) || amountCents <= 0
          ) {
            return yield* new BadRequest({
              code: "top_up_out_of_range",
              detail: `A top-up buys between ${settings.minTopUpCredits} and ${settings.maxTopUpCredits} credits`,
              extensions: { minCredits: settings.minTopUpCredits, maxCredits: settings.maxTopUpCredits }
            })
          }
          const key = headers["idempotency-key"] ?? (yield* ids.next("topup"))
          const session = yield* payments.createTopUpCheckout({
            projectId: project.id,
            credits,
            amountCents,
            idempotencyKey: providerIdempotencyKey(project.id, key),
            saveCard: false
          }).pipe(
            Effect.catchTag("PaymentProviderError", (e) =>
              Effect.zipRight(
                Effect.logWarning("top-up checkout failed", e.message),
                Effect.fail(
                  new BadGateway({
                    code: "payment_provider_error",
                    detail: "The payment provider did not open a checkout; retry with the same Idempotency-Key"
                  })
                )
              ))
          )
          return { sessionId: session.sessionId, url: session.url, credits, amountCents }
        }))
      .handle("earnings", () =>
        Effect.gen(function*() {
          const { project } = yield* CurrentPrincipal
          const account = earningsAccount(project.id)
          const balance = yield* ledger.accountBalance(account).pipe(orUnavailable("ledger"))
          const datasets = yield* catalog.listDatasets.pipe(orUnavailable("catalog"))
          return {
            projectId: project.id,
            account,
            balance: Number(balance),
            datasets: datasets.filter((d) => d.contributor === project.id)
          }
        }))
  }))
