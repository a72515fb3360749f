import type { AccountId } from "../domain/Account.js"
import { Credits } from "../domain/Credits.js"
import type { Allocation } from "../domain/Hold.js"
import type { GrantId } from "../domain/Ids.js"
import { splitAllocations } from "./DrawDown.js"
import { prorate } from "./RevenueSplit.js"

/**
 * Taking back the spent credit of a refunded purchase from the accounts it paid.
 *
 * A refund takes back first what the wallet still holds. What it cannot (the customer already
 * spent that credit on calls) is reclaimed from the payees of those calls, contributors and the
 * platform alike, each in proportion to what the purchase's credit paid them: a refund that
 * reclaims half of what the purchase's calls spent takes back half of each payee's share of them.
 */

/** A captured call: the lots its hold drew from (in drawing order), what was captured, and who was paid. */
export interface CapturedCall {
  readonly allocations: ReadonlyArray<Allocation>
  readonly captured: number
  readonly payees: ReadonlyArray<{ readonly account: AccountId; readonly amount: number }>
}

/** What a lot's credit paid for: credits spent from it on calls, and what each payee received of them. */
export interface LotSpending {
  readonly spent: number
  readonly paid: ReadonlyMap<AccountId, number>
}

/**
 * The credit of lot `lotId` the captured calls spent, and each payee's part of it. A capture
 * consumes its hold's allocations in drawing order; a payee's part of a call funded by the lot is
 * `floor(payee amount × spent from the lot / captured)`.
 */
export const lotSpending = (lotId: GrantId, calls: Iterable<CapturedCall>): LotSpending => {
  let spent = 0
  const paid = new Map<AccountId, number>()
  for (const call of calls) {
    if (call.captured <= 0) continue
    let fromLot = 0
    for (const a of splitAllocations(call.allocations, call.captured).consumed) {
      if (a.grantId === lotId) fromLot += a.amount
    }
    if (fromLot === 0) continue
    spent += fromLot
    for (const payee of call.payees) {
      const part = prorate(Credits.make(payee.amount), Credits.make(fromLot), Credits.make(call.captured))
      if (part > 0) paid.set(payee.account, (paid.get(payee.account) ?? 0) + part)
    }
  }
  return { spent, paid }
}

/** What earlier refunds of a lot already accounted for: refunded credit covered, and what each payee gave back. */
export interface Reclaimed {
  readonly covered: number
  readonly taken: ReadonlyMap<AccountId, number>
}

export const nothingReclaimed: Reclaimed = { covered: 0, taken: new Map() }

/** What one refund takes back from payees; `covered` is the refunded credit it accounts for. */
export interface Reclaim {
  readonly covered: number
  readonly legs: ReadonlyArray<{ readonly account: AccountId; readonly amount: number }>
}

/**
 * A refund of `shortfall` credits the wallet could not cover, against a lot whose spending is
 * `spending`, after earlier refunds took `before`. It covers what is left of the spent credit, up
 * to the shortfall, and takes from each payee `floor(left to give × covered / spent left)`, where
 * "left" discounts what earlier refunds covered and took (accounts in name order). The spending only
 * grows (captured calls are final), so refunds together never cover more than was spent and no
 * payee gives back more than the lot paid it.
 */
export const reclaim = (spending: LotSpending, before: Reclaimed, shortfall: number): Reclaim => {
  const spentLeft = spending.spent - before.covered
  const covered = Math.max(0, Math.min(shortfall, spentLeft))
  if (covered === 0) return { covered: 0, legs: [] }
  const legs = [...spending.paid.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([account, paid]) => ({
      account,
      amount: prorate(
        Credits.make(Math.max(0, paid - (before.taken.get(account) ?? 0))),
        Credits.make(covered),
        Credits.make(spentLeft)
      ) as number
    }))
    .filter((leg) => leg.amount > 0)
  return { covered, legs }
}

/** `before` with `refund` added. */
export const add = (before: Reclaimed, refund: Reclaim): Reclaimed => {
  const taken = new Map(before.taken)
  for (const leg of refund.legs) taken.set(leg.account, (taken.get(leg.account) ?? 0) + leg.amount)
  return { covered: before.covered + refund.covered, taken }
}
