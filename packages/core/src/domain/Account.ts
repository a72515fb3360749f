import { Schema } from "effect"
import type { GrantSource } from "./Grant.js"
import type { ProjectId } from "./Ids.js"

/**
 * Ledger accounts. Per project: `wallet:<project>` (a customer's credit) and
 * `earnings:<project>` (a contributor's share). System: `revenue` (the platform's share),
 * `funding` (money paid through the payment provider), `allowance` (plan allowances),
 * `promotions` (promotional credit and manual adjustments), `expired` (credit that lapsed).
 */
export const AccountId = Schema.String.pipe(
  Schema.pattern(/^((wallet|earnings):[^\s:]+|revenue|funding|allowance|promotions|expired)$/),
  Schema.brand("AccountId")
)
export type AccountId = typeof AccountId.Type

export type AccountKind = "wallet" | "earnings" | "revenue" | "funding" | "allowance" | "promotions" | "expired"

export const walletAccount = (project: ProjectId): AccountId => `wallet:${project}` as AccountId
export const earningsAccount = (project: ProjectId): AccountId => `earnings:${project}` as AccountId
export const revenueAccount = "revenue" as AccountId
export const fundingAccount = "funding" as AccountId
export const allowanceAccount = "allowance" as AccountId
export const promotionsAccount = "promotions" as AccountId
export const expiredAccount = "expired" as AccountId

export const accountKind = (account: AccountId): AccountKind => account.split(":")[0] as AccountKind

/** The system account a lot of each source is funded from. */
export const sourceAccount = (source: GrantSource): AccountId => {
  switch (source) {
    case "purchase":
      return fundingAccount
    case "plan_allowance":
      return allowanceAccount
    case "promotion":
    case "adjustment":
      return promotionsAccount
  }
}
