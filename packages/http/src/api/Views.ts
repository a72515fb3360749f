/** Response bodies shared by several endpoints. */
import type { ApiKey, Balance } from "@tollgate/core"
import { ApiKey as ApiKeySchema, Credits, Plan, Project } from "@tollgate/core"
import { Schema, Struct } from "effect"

/** A wallet: ledger balance, what new holds can take, and what pending holds reserve. */
export const BalanceView = Schema.Struct({
  balance: Credits,
  available: Credits,
  pending: Credits
}).annotations({ identifier: "Balance" })

export const balanceView = (b: Balance): typeof BalanceView.Type => ({
  balance: b.balance,
  available: b.available,
  pending: b.pending
})

/** A key as it may be shown: never its hash, never its secret. */
export const KeyView = Schema.Struct(Struct.omit(ApiKeySchema.fields, "hash")).annotations({
  identifier: "Key",
  description: "An API key's record; `prefix` identifies it, the secret is never shown again"
})
export type KeyView = typeof KeyView.Type

export const keyView = (key: ApiKey): KeyView => {
  const { hash: _hash, ...view } = key
  return view
}

export const KeyList = Schema.Struct({ data: Schema.Array(KeyView) }).annotations({ identifier: "KeyList" })

/** A project with the plan version it is on and its wallet. */
export const ProjectOverview = Schema.Struct({
  project: Project,
  plan: Plan,
  balance: BalanceView
}).annotations({ identifier: "ProjectOverview" })
