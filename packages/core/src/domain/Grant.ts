import { Schema } from "effect"
import { Credits, EpochMillis } from "./Credits.js"
import { GrantId, ProjectId } from "./Ids.js"

export const GrantSource = Schema.Literal("purchase", "plan_allowance", "promotion", "adjustment")
export type GrantSource = typeof GrantSource.Type

/**
 * A lot of credit on a wallet. Spending draws from the lot that expires first; a lot without
 * expiry (a purchase) is spent last. `remaining` excludes what pending holds have reserved.
 */
export class Grant extends Schema.Class<Grant>("Grant")({
  id: GrantId,
  projectId: ProjectId,
  source: GrantSource,
  amount: Credits,
  remaining: Credits,
  expiresAt: Schema.optional(EpochMillis),
  createdAt: EpochMillis
}) {}
