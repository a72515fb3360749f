import { Schema } from "effect"

/**
 * Credits are whole units, never fractions. JavaScript numbers are exact up to 2^53, so a
 * credit amount is a non-negative safe integer; storage uses BIGINT.
 */
export const Credits = Schema.Int.pipe(
  Schema.nonNegative(),
  Schema.filter((n) => Number.isSafeInteger(n), { message: () => "credits must be a safe integer" }),
  Schema.brand("Credits")
)
export type Credits = typeof Credits.Type

export const credits = (n: number): Credits => Credits.make(n)

/** A signed ledger amount: positive credits an account, negative debits it. */
export const SignedCredits = Schema.Int.pipe(
  Schema.filter((n) => Number.isSafeInteger(n), { message: () => "amount must be a safe integer" }),
  Schema.brand("SignedCredits")
)
export type SignedCredits = typeof SignedCredits.Type

/** Basis points: 0..10000 (100.00 %). */
export const BasisPoints = Schema.Int.pipe(Schema.between(0, 10_000), Schema.brand("BasisPoints"))
export type BasisPoints = typeof BasisPoints.Type

/** Milliseconds since the Unix epoch. */
export const EpochMillis = Schema.Int.pipe(Schema.nonNegative())
export type EpochMillis = typeof EpochMillis.Type
