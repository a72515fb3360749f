import { Either } from "effect"
import type { Hold } from "../domain/Hold.js"
import { CaptureExceedsHold, HoldAlreadyResolved } from "../ports/Ledger.js"

export type HoldAction =
  | { readonly _tag: "capture"; readonly amount: number }
  | { readonly _tag: "void" }
  | { readonly _tag: "expire" }

const resolvedCode = {
  captured: "hold_already_captured",
  voided: "hold_already_voided",
  expired: "hold_expired"
} as const

/**
 * The hold state machine: pending → captured | voided | expired, once. A hold past its
 * deadline can no longer be captured or voided, only expired (its credit returns either way).
 */
export function transition(
  hold: Hold,
  action: Extract<HoldAction, { _tag: "capture" }>,
  now: number
): Either.Either<Hold["status"], HoldAlreadyResolved | CaptureExceedsHold>
export function transition(
  hold: Hold,
  action: Exclude<HoldAction, { _tag: "capture" }>,
  now: number
): Either.Either<Hold["status"], HoldAlreadyResolved>
export function transition(
  hold: Hold,
  action: HoldAction,
  now: number
): Either.Either<Hold["status"], HoldAlreadyResolved | CaptureExceedsHold> {
  if (hold.status !== "pending") {
    return Either.left(new HoldAlreadyResolved({ code: resolvedCode[hold.status], holdId: hold.id }))
  }
  const pastDeadline = now >= hold.expiresAt
  switch (action._tag) {
    case "expire":
      return pastDeadline
        ? Either.right("expired")
        : Either.left(new HoldAlreadyResolved({ code: "hold_expired", holdId: hold.id }))
    case "void":
      return pastDeadline
        ? Either.left(new HoldAlreadyResolved({ code: "hold_expired", holdId: hold.id }))
        : Either.right("voided")
    case "capture":
      if (pastDeadline) return Either.left(new HoldAlreadyResolved({ code: "hold_expired", holdId: hold.id }))
      if (action.amount > hold.amount) {
        return Either.left(
          new CaptureExceedsHold({ code: "exceeds_hold", holdId: hold.id, held: hold.amount, requested: action.amount })
        )
      }
      return Either.right("captured")
  }
}
