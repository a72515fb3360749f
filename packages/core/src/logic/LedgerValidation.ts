import { Option, Schema } from "effect"
import { AccountId, accountKind } from "../domain/Account.js"
import type { CaptureRequest, GrantRequest, HoldRequest, WithdrawRequest } from "../ports/Ledger.js"
import { InvalidLedgerRequest } from "../ports/Ledger.js"

// What every ledger adapter refuses before touching state. Amounts arrive typed as Credits but
// are checked again: a fraction or an unsafe integer must be refused, never stored.

const isAccount = Schema.is(AccountId)
const isAmount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0
const isPositive = (n: number): boolean => isAmount(n) && n > 0
const isPayee = (account: string): boolean => isAccount(account) && accountKind(account as AccountId) !== "wallet"

const invalid = (message: string) => Option.some(new InvalidLedgerRequest({ code: "invalid_request", message }))

export const grant = (r: GrantRequest, now: number): Option.Option<InvalidLedgerRequest> =>
  !isPositive(r.amount)
    ? invalid("a grant must be a positive whole number of credits")
    : r.expiresAt !== undefined && (!Number.isSafeInteger(r.expiresAt) || r.expiresAt <= now)
    ? invalid("a grant must expire after now")
    : Option.none()

export const hold = (r: HoldRequest, now: number): Option.Option<InvalidLedgerRequest> =>
  !isPositive(r.amount)
    ? invalid("a hold must be a positive whole number of credits")
    : !Number.isSafeInteger(r.expiresAt) || r.expiresAt <= now
    ? invalid("a hold must expire after now")
    : Option.none()

export const capture = (r: CaptureRequest): Option.Option<InvalidLedgerRequest> =>
  !isAmount(r.amount) || r.payees.some((p) => !isPayee(p.account) || !isAmount(p.amount))
    ? invalid("a payee must be a non-wallet account with a whole, non-negative amount")
    : r.payees.reduce((s, p) => s + p.amount, 0) !== r.amount
    ? invalid("payees must add up to the captured amount")
    : Option.none()

export const withdraw = (r: WithdrawRequest): Option.Option<InvalidLedgerRequest> =>
  !isPositive(r.amount)
    ? invalid("a withdrawal must be a positive whole number of credits")
    : !isPayee(r.to)
    ? invalid("credit must be withdrawn to a non-wallet account")
    : r.reclaimSpentOf !== undefined && r.reclaimSpentOf.length === 0
    ? invalid("a refund must name the grant it refunds")
    : Option.none()
