import { Schema } from "effect"
import { AccountId } from "./Account.js"
import { EpochMillis, SignedCredits } from "./Credits.js"
import { IdempotencyKey, ProjectId, TransactionId } from "./Ids.js"

export const TransactionKind = Schema.Literal("grant", "capture", "expire_grant", "withdraw")
export type TransactionKind = typeof TransactionKind.Type

/** One leg of a transaction: positive credits the account, negative debits it. */
export const Entry = Schema.Struct({ account: AccountId, amount: SignedCredits })
export type Entry = typeof Entry.Type

/** Immutable and balanced: its entries sum to zero. Corrections are new transactions. */
export class Transaction extends Schema.Class<Transaction>("Transaction")({
  id: TransactionId,
  idempotencyKey: IdempotencyKey,
  kind: TransactionKind,
  projectId: ProjectId,
  createdAt: EpochMillis,
  reason: Schema.optional(Schema.String),
  entries: Schema.Array(Entry)
}) {}

export const isBalanced = (entries: ReadonlyArray<Entry>): boolean =>
  entries.reduce((sum, e) => sum + BigInt(e.amount), 0n) === 0n
