import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { AccountId } from "../domain/Account.js"
import type { Credits } from "../domain/Credits.js"
import type { Grant, GrantSource } from "../domain/Grant.js"
import type { Hold } from "../domain/Hold.js"
import type { HoldId, IdempotencyKey, ProjectId } from "../domain/Ids.js"
import type { Transaction } from "../domain/Transaction.js"

// Result codes, TigerBeetle-style: a write succeeds as "created" or is one of the refusals
// below, each naming exactly what happened. Replayed with the same idempotency key and the same
// request, a write returns its first outcome again: a success as "exists", a refusal as the same
// refusal (so a replay can never turn a refused hold into a granted one). The same key with a
// different request is IdempotencyConflict. Malformed requests (InvalidLedgerRequest) and
// outages (LedgerUnavailable) are not remembered. Adapters read time from Effect's Clock.

export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()("LedgerUnavailable", {
  message: Schema.String
}) {}

export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  code: Schema.Literal("exists_with_different_request"),
  idempotencyKey: Schema.String
}) {}

export class InsufficientCredit extends Schema.TaggedError<InsufficientCredit>()("InsufficientCredit", {
  code: Schema.Literal("insufficient_credit"),
  projectId: Schema.String,
  requested: Schema.Number,
  available: Schema.Number
}) {}

export class HoldNotFound extends Schema.TaggedError<HoldNotFound>()("HoldNotFound", {
  code: Schema.Literal("hold_not_found"),
  holdId: Schema.String
}) {}

export class HoldAlreadyResolved extends Schema.TaggedError<HoldAlreadyResolved>()("HoldAlreadyResolved", {
  code: Schema.Literal("hold_already_captured", "hold_already_voided", "hold_expired"),
  holdId: Schema.String
}) {}

export class CaptureExceedsHold extends Schema.TaggedError<CaptureExceedsHold>()("CaptureExceedsHold", {
  code: Schema.Literal("exceeds_hold"),
  holdId: Schema.String,
  held: Schema.Number,
  requested: Schema.Number
}) {}

export class InvalidLedgerRequest extends Schema.TaggedError<InvalidLedgerRequest>()("InvalidLedgerRequest", {
  code: Schema.Literal("invalid_request"),
  message: Schema.String
}) {}

export type WriteCode = "created" | "exists"

export interface GrantRequest {
  readonly idempotencyKey: IdempotencyKey
  readonly projectId: ProjectId
  readonly amount: Credits
  readonly source: GrantSource
  readonly expiresAt?: number | undefined
  readonly reason?: string | undefined
}

export interface HoldRequest {
  readonly idempotencyKey: IdempotencyKey
  readonly projectId: ProjectId
  readonly amount: Credits
  readonly expiresAt: number
}

/** Who receives the captured credit; the amounts must add up to the captured amount. */
export interface Payee {
  readonly account: AccountId
  readonly amount: Credits
}

export interface CaptureRequest {
  readonly idempotencyKey: IdempotencyKey
  readonly holdId: HoldId
  readonly amount: Credits
  readonly payees: ReadonlyArray<Payee>
}

export interface VoidRequest {
  readonly idempotencyKey: IdempotencyKey
  readonly holdId: HoldId
}

/** Takes credit out of a wallet's lots (earliest expiry first) into `to`: refunds, clawbacks, corrections. */
export interface WithdrawRequest {
  readonly idempotencyKey: IdempotencyKey
  readonly projectId: ProjectId
  readonly amount: Credits
  readonly to: AccountId
  readonly reason: string
  /** Take what is available instead of refusing when the wallet holds less than `amount`. */
  readonly partial?: boolean | undefined
  /**
   * A refund of a purchase: the idempotency key of the grant that bought the credit. The wallet is
   * drawn from that grant's lot first. Credit taken from other lots carries the grant's spending
   * not yet accounted for to them (`Reclaim.refund`). The part of `amount` the wallet no longer
   * holds (with `partial`) was spent on calls; it is reclaimed from the payees of the calls that
   * spent the grant's credit, then of those whose spending the lot carries, each in proportion to
   * what that credit paid them, in the same transaction. Unknown key: nothing is reclaimed.
   */
  readonly reclaimSpentOf?: IdempotencyKey | undefined
}

export interface GrantResult {
  readonly code: WriteCode
  readonly grant: Grant
  readonly transaction: Transaction
}

export interface HoldResult {
  readonly code: WriteCode
  readonly hold: Hold
}

export interface CaptureResult {
  readonly code: WriteCode
  readonly hold: Hold
  readonly transaction: Transaction | undefined
  /** Held but not captured: returned to the lots. */
  readonly released: Credits
}

export interface VoidResult {
  readonly code: WriteCode
  readonly hold: Hold
}

export interface WithdrawResult {
  readonly code: WriteCode
  /** Taken from the wallet. */
  readonly withdrawn: Credits
  /** Taken back from the payees of calls the refunded grant's credit, or spending it carries, paid for (`reclaimSpentOf`). */
  readonly reclaimed: Credits
  readonly transaction: Transaction | undefined
}

export interface SweepResult {
  readonly count: number
  readonly amount: Credits
}

export interface Balance {
  readonly projectId: ProjectId
  /** The wallet's ledger balance: credit in live and expired-but-unswept lots plus pending holds. */
  readonly balance: Credits
  /** What a new hold can take: unreserved credit in lots that have not expired. */
  readonly available: Credits
  readonly pending: Credits
}

export interface HistoryPage {
  readonly transactions: ReadonlyArray<Transaction>
  readonly nextCursor: string | undefined
}

export type LedgerWriteError = LedgerUnavailable | IdempotencyConflict | InvalidLedgerRequest

/**
 * The prepaid credit ledger: double-entry transactions, lots with expiry, and holds that
 * reserve credit before a call is served. Every write is idempotent by its key.
 */
export class Ledger extends Context.Tag("@tollgate/core/Ledger")<Ledger, {
  readonly grant: (request: GrantRequest) => Effect.Effect<GrantResult, LedgerWriteError>
  readonly hold: (request: HoldRequest) => Effect.Effect<HoldResult, LedgerWriteError | InsufficientCredit>
  readonly capture: (
    request: CaptureRequest
  ) => Effect.Effect<CaptureResult, LedgerWriteError | HoldNotFound | HoldAlreadyResolved | CaptureExceedsHold>
  readonly void: (
    request: VoidRequest
  ) => Effect.Effect<VoidResult, LedgerWriteError | HoldNotFound | HoldAlreadyResolved>
  readonly withdraw: (request: WithdrawRequest) => Effect.Effect<WithdrawResult, LedgerWriteError | InsufficientCredit>
  /** Expires pending holds past their deadline at `now`, returning their credit to the lots. */
  readonly expireHolds: (now: number) => Effect.Effect<SweepResult, LedgerUnavailable>
  /** Moves what is left of lots past their expiry at `now` to the expired-credit account. */
  readonly expireGrants: (now: number) => Effect.Effect<SweepResult, LedgerUnavailable>
  /**
   * Forgets the remembered outcomes of holds, captures and voids written before `before`, so the
   * record of replays does not grow with every call for ever; returns how many. A key reused
   * after that is a new write (a capture or void of a resolved hold then fails as already
   * resolved). Grants and withdrawals are remembered for good: refunds find the purchase's lot by
   * its key, and a reinstatement replays its reversal to learn what it took.
   */
  readonly pruneReplays: (before: number) => Effect.Effect<number, LedgerUnavailable>
  readonly balance: (projectId: ProjectId) => Effect.Effect<Balance, LedgerUnavailable>
  readonly getHold: (holdId: HoldId) => Effect.Effect<Hold, LedgerUnavailable | HoldNotFound>
  readonly grants: (projectId: ProjectId) => Effect.Effect<ReadonlyArray<Grant>, LedgerUnavailable>
  readonly history: (
    projectId: ProjectId,
    page: { readonly cursor?: string | undefined; readonly limit: number }
  ) => Effect.Effect<HistoryPage, LedgerUnavailable>
  /** Every account's balance; they sum to zero. */
  readonly trialBalance: Effect.Effect<ReadonlyMap<AccountId, bigint>, LedgerUnavailable>
  readonly accountBalance: (account: AccountId) => Effect.Effect<bigint, LedgerUnavailable>
}>() {}
