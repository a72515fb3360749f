import { assert, describe, it } from "@effect/vitest"
import type { Ledger as LedgerService } from "@tollgate/core"
import {
  earningsAccount,
  expiredAccount,
  fundingAccount,
  Ledger,
  promotionsAccount,
  revenueAccount,
  walletAccount
} from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Exit, TestClock } from "effect"
import { cr, key, projectId } from "./fixtures.js"

/** Σ over every account: zero for a balanced ledger. */
export const sumOfAccounts = (ledger: LedgerService["Type"]) =>
  Effect.map(ledger.trialBalance, (balances) => [...balances.values()].reduce((s, b) => s + b, 0n))

const failureTag = (exit: Exit.Exit<unknown, { readonly _tag: string }>): string =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) => (cause._tag === "Fail" ? cause.error._tag : cause._tag)
  })

const failureCode = (exit: Exit.Exit<unknown, unknown>): string | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? (exit.cause.error as { code?: string }).code : undefined

/**
 * The Ledger contract: every adapter must pass it. Each test gets the adapter fresh from
 * `layer`; the clock is the TestClock, starting at 0.
 */
export const ledgerContract = (name: string, layer: Layer.Layer<Ledger, unknown>) =>
  describe(`Ledger contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, Ledger>) => Effect.provide(body, layer)

    it.effect("a grant credits the wallet from its source account and the ledger sums to zero", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const r = yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(500), source: "purchase" })
        assert.strictEqual(r.code, "created")
        assert.strictEqual(r.grant.remaining, 500)
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [500, 500, 0])
        assert.strictEqual(yield* ledger.accountBalance(walletAccount(p)), 500n)
        assert.strictEqual((yield* ledger.accountBalance(fundingAccount)) <= -500n, true)
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("a replayed grant returns the first result; a different request under the key conflicts", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const k = key()
        const first = yield* ledger.grant({ idempotencyKey: k, projectId: p, amount: cr(100), source: "purchase" })
        const again = yield* ledger.grant({ idempotencyKey: k, projectId: p, amount: cr(100), source: "purchase" })
        assert.strictEqual(again.code, "exists")
        assert.strictEqual(again.grant.id, first.grant.id)
        assert.strictEqual(again.transaction.id, first.transaction.id)
        const other = yield* Effect.exit(
          ledger.grant({ idempotencyKey: k, projectId: p, amount: cr(101), source: "purchase" })
        )
        assert.strictEqual(failureCode(other), "exists_with_different_request")
        assert.strictEqual((yield* ledger.balance(p)).balance, 100)
      })))

    it.effect("malformed writes are refused and move nothing", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* TestClock.setTime(1_000)
        const zero = yield* Effect.exit(
          ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(0), source: "promotion" })
        )
        const past = yield* Effect.exit(
          ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(5), source: "promotion", expiresAt: 1_000 })
        )
        const hold = yield* Effect.exit(
          ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(1), expiresAt: 500 })
        )
        assert.deepStrictEqual([failureCode(zero), failureCode(past), failureCode(hold)], [
          "invalid_request",
          "invalid_request",
          "invalid_request"
        ])
        assert.strictEqual((yield* ledger.balance(p)).balance, 0)
      })))

    it.effect("fractional or unsafe amounts are refused as invalid, never stored", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(10), source: "purchase" })
        const { hold } = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(4), expiresAt: 60_000 })
        const exits = [
          yield* Effect.exit(
            ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(1.5), source: "purchase" })
          ),
          yield* Effect.exit(
            ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(2 ** 53), source: "purchase" })
          ),
          yield* Effect.exit(ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(0.5), expiresAt: 60_000 })),
          yield* Effect.exit(
            ledger.capture({
              idempotencyKey: key(),
              holdId: hold.id,
              amount: cr(1.5),
              payees: [{ account: revenueAccount, amount: cr(1.5) }]
            })
          ),
          yield* Effect.exit(
            ledger.withdraw({ idempotencyKey: key(), projectId: p, amount: cr(0.1), to: fundingAccount, reason: "x" })
          )
        ]
        assert.deepStrictEqual(exits.map((e) => failureCode(e)), Array(5).fill("invalid_request"))
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [10, 6, 4])
      })))

    it.effect("a hold reserves credit: available drops, the balance does not", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(100), source: "purchase" })
        const h = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(30), expiresAt: 60_000 })
        assert.strictEqual(h.code, "created")
        assert.strictEqual(h.hold.status, "pending")
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [100, 70, 30])
      })))

    it.effect("a hold beyond the available credit is refused with the available amount, and the refusal replays", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(10), source: "purchase" })
        yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(8), expiresAt: 60_000 })
        const k = key()
        const refused = yield* Effect.exit(
          ledger.hold({ idempotencyKey: k, projectId: p, amount: cr(3), expiresAt: 60_000 })
        )
        assert.strictEqual(failureCode(refused), "insufficient_credit")
        assert.strictEqual(
          Exit.isFailure(refused) && refused.cause._tag === "Fail" && (refused.cause.error as any).available,
          2
        )
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(10), source: "purchase" })
        const replay = yield* Effect.exit(
          ledger.hold({ idempotencyKey: k, projectId: p, amount: cr(3), expiresAt: 60_000 })
        )
        assert.strictEqual(failureCode(replay), "insufficient_credit")
        assert.strictEqual((yield* ledger.balance(p)).available, 12)
      })))

    it.effect("a capture pays the payees, debits the wallet and releases what was not captured", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const contributor = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(100), source: "purchase" })
        const revenueBefore = yield* ledger.accountBalance(revenueAccount)
        const { hold } = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(40), expiresAt: 60_000 })
        const c = yield* ledger.capture({
          idempotencyKey: key(),
          holdId: hold.id,
          amount: cr(25),
          payees: [{ account: earningsAccount(contributor), amount: cr(7) }, {
            account: revenueAccount,
            amount: cr(18)
          }]
        })
        assert.strictEqual(c.code, "created")
        assert.strictEqual(c.hold.status, "captured")
        assert.strictEqual(c.hold.captured, 25)
        assert.strictEqual(c.released, 15)
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [75, 75, 0])
        assert.strictEqual(yield* ledger.accountBalance(earningsAccount(contributor)), 7n)
        assert.strictEqual((yield* ledger.accountBalance(revenueAccount)) - revenueBefore, 18n)
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("a capture's payees must add up to the amount, and a capture cannot exceed its hold", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(100), source: "purchase" })
        const { hold } = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(10), expiresAt: 60_000 })
        const uneven = yield* Effect.exit(
          ledger.capture({
            idempotencyKey: key(),
            holdId: hold.id,
            amount: cr(10),
            payees: [{ account: revenueAccount, amount: cr(9) }]
          })
        )
        assert.strictEqual(failureCode(uneven), "invalid_request")
        const toWallet = yield* Effect.exit(
          ledger.capture({
            idempotencyKey: key(),
            holdId: hold.id,
            amount: cr(10),
            payees: [{ account: walletAccount(p), amount: cr(10) }]
          })
        )
        assert.strictEqual(failureCode(toWallet), "invalid_request")
        const over = yield* Effect.exit(
          ledger.capture({
            idempotencyKey: key(),
            holdId: hold.id,
            amount: cr(11),
            payees: [{ account: revenueAccount, amount: cr(11) }]
          })
        )
        assert.strictEqual(failureCode(over), "exceeds_hold")
        assert.strictEqual((yield* ledger.getHold(hold.id)).status, "pending")
      })))

    it.effect("a hold resolves once: a second capture, a void after capture, a capture after void are refused by name", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(100), source: "purchase" })
        const a = (yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(10), expiresAt: 60_000 })).hold
        const b = (yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(10), expiresAt: 60_000 })).hold
        const capKey = key()
        const pay = [{ account: revenueAccount, amount: cr(10) }]
        yield* ledger.capture({ idempotencyKey: capKey, holdId: a.id, amount: cr(10), payees: pay })
        const replay = yield* ledger.capture({ idempotencyKey: capKey, holdId: a.id, amount: cr(10), payees: pay })
        assert.strictEqual(replay.code, "exists")
        const twice = yield* Effect.exit(
          ledger.capture({ idempotencyKey: key(), holdId: a.id, amount: cr(10), payees: pay })
        )
        assert.strictEqual(failureCode(twice), "hold_already_captured")
        const voidAfter = yield* Effect.exit(ledger.void({ idempotencyKey: key(), holdId: a.id }))
        assert.strictEqual(failureCode(voidAfter), "hold_already_captured")
        const v = yield* ledger.void({ idempotencyKey: key(), holdId: b.id })
        assert.strictEqual(v.hold.status, "voided")
        const capAfter = yield* Effect.exit(
          ledger.capture({
            idempotencyKey: key(),
            holdId: b.id,
            amount: cr(1),
            payees: [{ account: revenueAccount, amount: cr(1) }]
          })
        )
        assert.strictEqual(failureCode(capAfter), "hold_already_voided")
        const missing = yield* Effect.exit(ledger.void({ idempotencyKey: key(), holdId: "hold_nope" as any }))
        assert.strictEqual(failureCode(missing), "hold_not_found")
        const bal = yield* ledger.balance(p)
        assert.deepStrictEqual([bal.balance, bal.available, bal.pending], [90, 90, 0])
      })))

    it.effect("replay records of holds and captures are forgotten past a cut-off; grants, withdrawals and newer ones are kept", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* TestClock.setTime(1_000)
        const purchase = { idempotencyKey: key(), projectId: p, amount: cr(100), source: "purchase" as const }
        yield* ledger.grant(purchase)
        const holdRequest = { idempotencyKey: key(), projectId: p, amount: cr(10), expiresAt: 3_600_000 }
        const first = yield* ledger.hold(holdRequest)
        const pay = [{ account: revenueAccount, amount: cr(10) }]
        const captureRequest = { idempotencyKey: key(), holdId: first.hold.id, amount: cr(10), payees: pay }
        yield* ledger.capture(captureRequest)
        const withdrawal = {
          idempotencyKey: key(),
          projectId: p,
          amount: cr(5),
          to: fundingAccount,
          reason: "adjustment"
        }
        yield* ledger.withdraw(withdrawal)
        yield* TestClock.setTime(5_000)
        const newer = { idempotencyKey: key(), projectId: p, amount: cr(10), expiresAt: 3_600_000 }
        const kept = yield* ledger.hold(newer)
        assert.strictEqual(yield* ledger.pruneReplays(5_000), 2)
        assert.strictEqual(yield* ledger.pruneReplays(5_000), 0)
        assert.strictEqual((yield* ledger.grant(purchase)).code, "exists")
        assert.strictEqual((yield* ledger.withdraw(withdrawal)).code, "exists")
        const again = yield* ledger.hold(newer)
        assert.deepStrictEqual([again.code, again.hold.id], ["exists", kept.hold.id])
        // forgotten: the capture's key is a new write, refused since its hold is resolved; the
        // hold's key makes a new hold
        assert.strictEqual(failureCode(yield* Effect.exit(ledger.capture(captureRequest))), "hold_already_captured")
        const second = yield* ledger.hold(holdRequest)
        assert.strictEqual(second.code, "created")
        assert.notStrictEqual(second.hold.id, first.hold.id)
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.pending], [85, 20])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("an unsettled hold expires after its deadline and releases exactly its amount, once", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* TestClock.setTime(10_000)
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(50), source: "purchase" })
        const { hold } = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(20), expiresAt: 15_000 })
        const early = yield* ledger.expireHolds(14_999)
        assert.strictEqual((yield* ledger.getHold(hold.id)).status, "pending")
        assert.strictEqual(early.count >= 0, true)
        yield* TestClock.setTime(15_000)
        const late = yield* Effect.exit(
          ledger.capture({
            idempotencyKey: key(),
            holdId: hold.id,
            amount: cr(20),
            payees: [{ account: revenueAccount, amount: cr(20) }]
          })
        )
        assert.strictEqual(failureCode(late), "hold_expired")
        yield* ledger.expireHolds(15_000)
        assert.strictEqual((yield* ledger.getHold(hold.id)).status, "expired")
        yield* ledger.expireHolds(20_000)
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [50, 50, 0])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("spending draws from the lot that expires first; purchases (no expiry) last", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const purchase = yield* ledger.grant({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(100),
          source: "purchase"
        })
        const late = yield* ledger.grant({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(10),
          source: "promotion",
          expiresAt: 90_000
        })
        const soon = yield* ledger.grant({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(10),
          source: "plan_allowance",
          expiresAt: 50_000
        })
        const { hold } = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(15), expiresAt: 40_000 })
        assert.deepStrictEqual(hold.allocations.map((a) => [a.grantId, a.amount]), [[soon.grant.id, 10], [
          late.grant.id,
          5
        ]])
        const lots = new Map((yield* ledger.grants(p)).map((g) => [g.id, g.remaining]))
        assert.deepStrictEqual([lots.get(soon.grant.id), lots.get(late.grant.id), lots.get(purchase.grant.id)], [
          0,
          5,
          100
        ])
      })))

    it.effect("expired lots move their remainder to the expired account; credit under a pending hold is not expired until released", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const expiredBefore = yield* ledger.accountBalance(expiredAccount)
        yield* ledger.grant({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(30),
          source: "promotion",
          expiresAt: 10_000
        })
        const { hold } = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(12), expiresAt: 20_000 })
        yield* TestClock.setTime(10_000)
        assert.strictEqual((yield* ledger.balance(p)).available, 0)
        const swept = yield* ledger.expireGrants(10_000)
        assert.strictEqual(swept.amount >= 18, true)
        assert.strictEqual((yield* ledger.accountBalance(expiredAccount)) - expiredBefore, 18n)
        assert.deepStrictEqual((yield* ledger.balance(p)).balance, 12)
        // the hold was taken while the lot was live: it can still be captured in part
        yield* ledger.capture({
          idempotencyKey: key(),
          holdId: hold.id,
          amount: cr(5),
          payees: [{ account: revenueAccount, amount: cr(5) }]
        })
        yield* ledger.expireGrants(10_001)
        assert.strictEqual((yield* ledger.accountBalance(expiredAccount)) - expiredBefore, 25n)
        const b = yield* ledger.balance(p)
        assert.deepStrictEqual([b.balance, b.available, b.pending], [0, 0, 0])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("a withdrawal takes credit out in spending order; partial takes what there is", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(20), source: "purchase" })
        const full = yield* Effect.exit(
          ledger.withdraw({ idempotencyKey: key(), projectId: p, amount: cr(30), to: fundingAccount, reason: "refund" })
        )
        assert.strictEqual(failureCode(full), "insufficient_credit")
        const part = yield* ledger.withdraw({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(30),
          to: promotionsAccount,
          reason: "clawback",
          partial: true
        })
        assert.strictEqual(part.withdrawn, 20)
        assert.strictEqual((yield* ledger.balance(p)).balance, 0)
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("history lists a project's transactions newest first, paginated, each balanced", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        for (let i = 1; i <= 5; i++) {
          yield* ledger.grant({
            idempotencyKey: key(),
            projectId: p,
            amount: cr(i),
            source: "promotion",
            reason: `g${i}`
          })
        }
        const first = yield* ledger.history(p, { limit: 3 })
        assert.deepStrictEqual(first.transactions.map((t) => t.reason), ["g5", "g4", "g3"])
        assert.isDefined(first.nextCursor)
        const second = yield* ledger.history(p, { limit: 3, cursor: first.nextCursor })
        assert.deepStrictEqual(second.transactions.map((t) => t.reason), ["g2", "g1"])
        assert.isUndefined(second.nextCursor)
        for (const t of [...first.transactions, ...second.transactions]) {
          assert.strictEqual(t.entries.reduce((s, e) => s + e.amount, 0), 0)
        }
      })))

    it.effect("refusals leave everything as it was", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(5), source: "purchase" })
        const before = yield* ledger.trialBalance
        const results = yield* Effect.all([
          Effect.exit(ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(6), expiresAt: 1_000 })),
          Effect.exit(
            ledger.withdraw({ idempotencyKey: key(), projectId: p, amount: cr(6), to: fundingAccount, reason: "x" })
          )
        ])
        assert.deepStrictEqual(results.map((r) => failureTag(r)), ["InsufficientCredit", "InsufficientCredit"])
        assert.deepStrictEqual(yield* ledger.trialBalance, before)
      })))
  })
