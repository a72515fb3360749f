import { Schema } from "effect"
import { Credits, EpochMillis } from "./Credits.js"
import { GrantId, HoldId, ProjectId, TransactionId } from "./Ids.js"

/** pending → captured | voided | expired, exactly once. */
export const HoldStatus = Schema.Literal("pending", "captured", "voided", "expired")
export type HoldStatus = typeof HoldStatus.Type

/** The part of one lot a hold reserved. */
export const Allocation = Schema.Struct({ grantId: GrantId, amount: Credits })
export type Allocation = typeof Allocation.Type

/**
 * Credit reserved before a call is served. The reservation is taken from the wallet's lots
 * when the hold is created (earliest expiry first), so a lot expiring under a pending hold
 * cannot make the capture overspend.
 */
export class Hold extends Schema.Class<Hold>("Hold")({
  id: HoldId,
  projectId: ProjectId,
  amount: Credits,
  status: HoldStatus,
  allocations: Schema.Array(Allocation),
  createdAt: EpochMillis,
  expiresAt: EpochMillis,
  captured: Schema.optional(Credits),
  resolvedAt: Schema.optional(EpochMillis),
  transactionId: Schema.optional(TransactionId)
}) {}
