import { Option } from "effect"
import type { Credits } from "../domain/Credits.js"
import type { Grant } from "../domain/Grant.js"
import type { Allocation } from "../domain/Hold.js"

/** A lot can be drawn from at `now` while it has not expired. */
export const isLive = (lot: Pick<Grant, "expiresAt">, now: number): boolean =>
  lot.expiresAt === undefined || now < lot.expiresAt

/** Spending order: the lot that expires first, lots without expiry last, then oldest first. */
export const drawOrder = (a: Grant, b: Grant): number => {
  const ea = a.expiresAt ?? Number.POSITIVE_INFINITY
  const eb = b.expiresAt ?? Number.POSITIVE_INFINITY
  if (ea !== eb) return ea < eb ? -1 : 1
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** Unreserved credit in the lots that are live at `now`. */
export const available = (lots: Iterable<Grant>, now: number): number => {
  let sum = 0
  for (const lot of lots) if (isLive(lot, now)) sum += lot.remaining
  return sum
}

/**
 * Takes `amount` from the live lots in spending order. None when they hold less than that.
 * With `partial`, takes what there is instead. With `first`, that lot is drawn before the
 * others (a refund takes the refunded purchase's own credit first).
 */
export const allocate = (
  lots: Iterable<Grant>,
  amount: number,
  now: number,
  partial = false,
  first?: Grant["id"]
): Option.Option<ReadonlyArray<Allocation>> => {
  const ordered = [...lots].filter((lot) => lot.remaining > 0 && isLive(lot, now)).sort((a, b) =>
    a.id === first ? -1 : b.id === first ? 1 : drawOrder(a, b)
  )
  const allocations: Array<Allocation> = []
  let left = amount
  for (const lot of ordered) {
    if (left === 0) break
    const take = Math.min(left, lot.remaining)
    allocations.push({ grantId: lot.id, amount: take as Credits })
    left -= take
  }
  return left === 0 || partial ? Option.some(allocations) : Option.none()
}

/**
 * Splits a hold's allocations into the part a capture of `amount` consumes (taken in the order
 * they were drawn) and the part it releases back to the lots.
 */
export const splitAllocations = (
  allocations: ReadonlyArray<Allocation>,
  amount: number
): { readonly consumed: ReadonlyArray<Allocation>; readonly released: ReadonlyArray<Allocation> } => {
  const consumed: Array<Allocation> = []
  const released: Array<Allocation> = []
  let left = amount
  for (const a of allocations) {
    const take = Math.min(left, a.amount)
    if (take > 0) consumed.push({ grantId: a.grantId, amount: take as Credits })
    if (a.amount - take > 0) released.push({ grantId: a.grantId, amount: (a.amount - take) as Credits })
    left -= take
  }
  return { consumed, released }
}

export const sumAllocations = (allocations: ReadonlyArray<Allocation>): number =>
  allocations.reduce((s, a) => s + a.amount, 0)
