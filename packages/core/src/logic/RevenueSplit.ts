import { type BasisPoints, Credits } from "../domain/Credits.js"

export interface Split {
  readonly contributor: Credits
  readonly platform: Credits
}

/**
 * The contributor gets `floor(amount * shareBps / 10000)`, the platform the rest, so the two
 * always add up to `amount`. BigInt because `amount * shareBps` can exceed 2^53.
 */
export const splitRevenue = (amount: Credits, shareBps: BasisPoints | undefined): Split => {
  const contributor = shareBps === undefined ? 0 : Number((BigInt(amount) * BigInt(shareBps)) / 10_000n)
  return { contributor: Credits.make(contributor), platform: Credits.make(amount - contributor) }
}

/**
 * `floor(amount * part / whole)`, e.g. the share of a contributor's earnings to reverse when
 * `part` of a `whole` capture is refunded. Expects `part <= whole`; a zero `whole` yields 0.
 */
export const prorate = (amount: Credits, part: Credits, whole: Credits): Credits =>
  whole === 0 ? Credits.make(0) : Credits.make(Number((BigInt(amount) * BigInt(part)) / BigInt(whole)))
