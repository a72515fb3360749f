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

/**
 * Spending of lot `lot` that another lot's credit paid for: a refund of `lot` took that credit
 * from the wallet in place of reclaiming the spending from its payees.
 */
export interface Carry {
  readonly lot: GrantId
  readonly amount: number
}

/**
 * What refunds have accounted for of a lot's spending: `covered` and `taken` as in
 * {@link Reclaimed} (given back by the payees); `carried`, the part other lots' credit paid for
 * and that is not reclaimed yet; `carriedIn`, the spending of other lots (or of earlier refunds
 * of this one) that this lot's credit paid for, oldest first, not reclaimed yet.
 */
export interface LotRefunds extends Reclaimed {
  readonly carried: number
  readonly carriedIn: ReadonlyArray<Carry>
}

export const noRefunds: LotRefunds = { covered: 0, taken: new Map(), carried: 0, carriedIn: [] }

/** What one refund reclaims (legs merged per account, in name order) and every lot state it changes. */
export interface RefundPlan extends Reclaim {
  readonly lots: ReadonlyMap<GrantId, LotRefunds>
}

interface MutableLotRefunds {
  covered: number
  taken: Map<AccountId, number>
  carried: number
  carriedIn: Array<{ lot: GrantId; amount: number }>
}

/** Takes up to `max` (when above 0) from the oldest spending `state` carries. */
const takeOldest = (state: MutableLotRefunds, max: number): Carry | undefined => {
  const oldest = state.carriedIn[0]
  if (oldest === undefined || max <= 0) return undefined
  const amount = Math.min(max, oldest.amount)
  oldest.amount -= amount
  if (oldest.amount === 0) state.carriedIn.shift()
  return { lot: oldest.lot, amount }
}

const byName = ([a]: readonly [string, number], [b]: readonly [string, number]) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * A refund of lot `lotId` that took `drawn` from the wallet (the refunded lot's own credit first,
 * then other lots in spending order) and was `shortfall` short.
 *
 * Whatever a refund takes from other lots stands in for the refunded lot's missing credit: first
 * its own spending not yet accounted for, which becomes spending carried by those lots; then what
 * it carried in itself, which moves on to them. A later refund of such a lot reclaims, once its
 * own spending is accounted for, the spending it carries from the payees of the lot that spent
 * it. So a purchase's spent credit is reclaimed exactly once, whichever purchase is refunded
 * first: two purchases, one of them spent, both refunded, give back to the customer both
 * payments, and the spent one's payees give back what they were paid.
 *
 * The shortfall is reclaimed from the lot's own spending not yet accounted for, then from the
 * spending it carries (oldest first), each from the payees of the lot that spent it, in
 * proportion to what they have not given back yet ({@link reclaim}).
 */
export const refund = (
  lotId: GrantId,
  drawn: ReadonlyArray<Allocation>,
  shortfall: number,
  stateOf: (lot: GrantId) => LotRefunds,
  spendingOf: (lot: GrantId) => LotSpending
): RefundPlan => {
  const states = new Map<GrantId, MutableLotRefunds>()
  const get = (id: GrantId): MutableLotRefunds => {
    let state = states.get(id)
    if (state === undefined) {
      const s = stateOf(id)
      state = {
        covered: s.covered,
        taken: new Map(s.taken),
        carried: s.carried,
        carriedIn: s.carriedIn.map((c) => ({ ...c }))
      }
      states.set(id, state)
    }
    return state
  }
  const spendings = new Map<GrantId, LotSpending>()
  const spending = (id: GrantId): LotSpending => {
    let s = spendings.get(id)
    if (s === undefined) {
      s = spendingOf(id)
      spendings.set(id, s)
    }
    return s
  }
  const own = get(lotId)
  const unaccounted = () => Math.max(0, spending(lotId).spent - own.covered - own.carried)

  for (const a of drawn) {
    if (a.grantId === lotId) continue
    let left: number = a.amount
    const carried = Math.min(left, unaccounted())
    if (carried > 0) {
      own.carried += carried
      get(a.grantId).carriedIn.push({ lot: lotId, amount: carried })
      left -= carried
    }
    for (let moved = takeOldest(own, left); moved !== undefined; moved = takeOldest(own, left)) {
      get(a.grantId).carriedIn.push(moved)
      left -= moved.amount
    }
  }

  const legs = new Map<AccountId, number>()
  /** Reclaims up to `limit` of lot `id`'s spending from its payees; returns what it covered. */
  const reclaimFrom = (id: GrantId, limit: number): number => {
    const state = get(id)
    const result = reclaim(spending(id), state, limit)
    state.covered += result.covered
    for (const leg of result.legs) {
      state.taken.set(leg.account, (state.taken.get(leg.account) ?? 0) + leg.amount)
      legs.set(leg.account, (legs.get(leg.account) ?? 0) + leg.amount)
    }
    return result.covered
  }
  let left = shortfall
  let covered = 0
  const ownPart = Math.min(left, unaccounted())
  if (ownPart > 0) {
    const c = reclaimFrom(lotId, ownPart)
    covered += c
    left -= c
  }
  for (let carried = takeOldest(own, left); carried !== undefined; carried = takeOldest(own, left)) {
    // carried spending is never covered yet (covered + carried <= spent), so all of it is reclaimed
    if (reclaimFrom(carried.lot, carried.amount) !== carried.amount) {
      throw new Error(`carried spending of lot ${carried.lot} is not reclaimable`)
    }
    get(carried.lot).carried -= carried.amount
    covered += carried.amount
    left -= carried.amount
  }
  return {
    covered,
    legs: [...legs.entries()].filter(([, amount]) => amount > 0).sort(byName).map(([account, amount]) => ({
      account,
      amount
    })),
    lots: states
  }
}
