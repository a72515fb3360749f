import { assert, describe, it } from "@effect/vitest"
import type {
  AccountId,
  Allocation,
  Entry,
  GrantId,
  IdempotencyKey,
  Ledger as LedgerService,
  ProjectId
} from "@tollgate/core"
import {
  allowanceAccount,
  DrawDown,
  earningsAccount,
  fundingAccount,
  Ledger,
  Reclaim,
  revenueAccount,
  walletAccount
} from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, FastCheck as fc, Option } from "effect"
import { cr, key, projectId } from "./fixtures.js"
import { sumOfAccounts } from "./LedgerContract.js"

type LedgerApi = LedgerService["Type"]

/** Holds `held`, captures `captured` of it paying `payees`; returns the call as the ledger recorded it. */
const call = (
  ledger: LedgerApi,
  p: ProjectId,
  held: number,
  payees: ReadonlyArray<readonly [AccountId, number]>
) =>
  Effect.gen(function*() {
    const hold = yield* ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(held), expiresAt: 3_600_000 })
    const captured = payees.reduce((s, [, amount]) => s + amount, 0)
    yield* ledger.capture({
      idempotencyKey: key(),
      holdId: hold.hold.id,
      amount: cr(captured),
      payees: payees.map(([account, amount]) => ({ account, amount: cr(amount) }))
    })
    return {
      allocations: hold.hold.allocations as ReadonlyArray<Allocation>,
      captured,
      payees: payees.filter(([, amount]) => amount > 0).map(([account, amount]) => ({ account, amount }))
    } satisfies Reclaim.CapturedCall
  })

const refund = (ledger: LedgerApi, p: ProjectId, amount: number, of: IdempotencyKey | undefined, k = key()) =>
  ledger.withdraw({
    idempotencyKey: k,
    projectId: p,
    amount: cr(amount),
    to: fundingAccount,
    reason: "refund",
    partial: true,
    reclaimSpentOf: of
  })

const balances = (ledger: LedgerApi, accounts: ReadonlyArray<AccountId>) =>
  Effect.forEach(accounts, (account) => Effect.map(ledger.accountBalance(account), Number))

/** The entries of a refund's transaction other than the wallet's and the refund account's. */
const reclaimLegs = (entries: ReadonlyArray<Entry> | undefined) =>
  (entries ?? []).filter((e) => e.amount < 0 && !e.account.startsWith("wallet:")).map((e) => [e.account, -e.amount])

/**
 * Refunds reclaim spent credit: any Ledger adapter must pass these. A refund takes back from the
 * wallet what it can; what the wallet no longer holds of the refunded purchase was spent on calls,
 * and is taken back from those calls' payees in proportion (core `Reclaim`).
 */
export const ledgerRefundContract = (
  name: string,
  layer: Layer.Layer<Ledger, unknown>,
  options: { readonly numRuns: number }
) =>
  describe(`Ledger refunds: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, Ledger>) => Effect.provide(body, layer)

    it.effect("a refund of spent credit takes it back from the calls' payees, all in one balanced transaction", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const [a, b] = [earningsAccount(projectId()), earningsAccount(projectId())]
        const purchase = key("purchase")
        yield* ledger.grant({ idempotencyKey: purchase, projectId: p, amount: cr(100), source: "purchase" })
        yield* call(ledger, p, 60, [[a, 10], [revenueAccount, 40]])
        yield* call(ledger, p, 30, [[b, 15], [revenueAccount, 15]])
        const [revenueBefore, fundingBefore] = yield* balances(ledger, [revenueAccount, fundingAccount])
        const r = yield* refund(ledger, p, 100, purchase)
        assert.deepStrictEqual([r.withdrawn, r.reclaimed], [20, 80])
        assert.deepStrictEqual(yield* balances(ledger, [a, b, walletAccount(p)]), [0, 0, 0])
        const [revenueAfter, fundingAfter] = yield* balances(ledger, [revenueAccount, fundingAccount])
        assert.deepStrictEqual([revenueBefore! - revenueAfter!, fundingAfter! - fundingBefore!], [55, 100])
        assert.strictEqual(r.transaction?.entries.reduce((s, e) => s + e.amount, 0), 0)
        assert.deepStrictEqual(
          reclaimLegs(r.transaction?.entries).sort(),
          [[a, 10], [b, 15], [revenueAccount, 55]].sort()
        )
        // everything spent is covered: a further refund has nothing left to reclaim
        const again = yield* refund(ledger, p, 10, purchase)
        assert.deepStrictEqual([again.withdrawn, again.reclaimed, again.transaction], [0, 0, undefined])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("partial refunds reclaim in proportion and together never more than each payee was paid", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const c = earningsAccount(projectId())
        const purchase = key("purchase")
        yield* ledger.grant({ idempotencyKey: purchase, projectId: p, amount: cr(100), source: "purchase" })
        yield* call(ledger, p, 80, [[c, 20], [revenueAccount, 60]])
        const first = key()
        const one = yield* refund(ledger, p, 50, purchase, first)
        // 20 from the wallet; 30 of the 80 spent: floor(20 × 30/80) and floor(60 × 30/80)
        assert.deepStrictEqual([one.withdrawn, one.reclaimed], [20, 7 + 22])
        assert.deepStrictEqual(reclaimLegs(one.transaction?.entries).sort(), [[c, 7], [revenueAccount, 22]].sort())
        const two = yield* refund(ledger, p, 50, purchase)
        // the 50 still uncovered: what each payee has not given back yet
        assert.deepStrictEqual([two.withdrawn, two.reclaimed], [0, 13 + 38])
        assert.deepStrictEqual(yield* balances(ledger, [c]), [0])
        const replay = yield* refund(ledger, p, 50, purchase, first)
        assert.deepStrictEqual([replay.code, replay.withdrawn, replay.reclaimed], ["exists", 20, 29])
        assert.deepStrictEqual(yield* balances(ledger, [c]), [0])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("only the refunded purchase's share of a call is reclaimed, in the order the hold drew its lots", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const c = earningsAccount(projectId())
        const purchase = key("purchase")
        // the allowance expires first, so it is drawn first
        yield* ledger.grant({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(10),
          source: "plan_allowance",
          expiresAt: 3_600_000
        })
        yield* ledger.grant({ idempotencyKey: purchase, projectId: p, amount: cr(100), source: "purchase" })
        // holds 10 of the allowance and 20 of the purchase; captures 25: all the allowance, 15 of the purchase
        yield* call(ledger, p, 30, [[c, 5], [revenueAccount, 20]])
        const r = yield* refund(ledger, p, 100, purchase)
        // floor(5 × 15/25) and floor(20 × 15/25)
        assert.deepStrictEqual([r.withdrawn, r.reclaimed], [85, 3 + 12])
        assert.deepStrictEqual(yield* balances(ledger, [c]), [2])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
        assert.isTrue((yield* ledger.accountBalance(allowanceAccount)) < 0n)
      })))

    it.effect("without a purchase, with an unknown one, or with another project's, nothing is reclaimed", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const [p, other] = [projectId(), projectId()]
        const c = earningsAccount(projectId())
        const purchase = key("purchase")
        const theirs = key("purchase")
        yield* ledger.grant({ idempotencyKey: purchase, projectId: p, amount: cr(10), source: "purchase" })
        yield* ledger.grant({ idempotencyKey: theirs, projectId: other, amount: cr(10), source: "purchase" })
        yield* call(ledger, p, 10, [[c, 10]])
        for (const purchaseKey of [undefined, key("purchase"), theirs]) {
          const r = yield* refund(ledger, p, 10, purchaseKey)
          assert.deepStrictEqual([r.withdrawn, r.reclaimed, r.transaction], [0, 0, undefined])
        }
        assert.deepStrictEqual(yield* balances(ledger, [c]), [10])
      })))

    it.effect("refunds racing each other, and one refund sent many times at once, reclaim what was spent exactly once", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const c = earningsAccount(projectId())
        const purchase = key("purchase")
        yield* ledger.grant({ idempotencyKey: purchase, projectId: p, amount: cr(100), source: "purchase" })
        yield* call(ledger, p, 100, [[c, 30], [revenueAccount, 70]])
        const [revenueBefore, fundingBefore] = yield* balances(ledger, [revenueAccount, fundingAccount])
        const same = key()
        // ten different refunds of 20 and one refund of 20 sent ten times: 220 asked, 100 spent
        const results = yield* Effect.all(
          [
            ...Array.from({ length: 10 }, () => refund(ledger, p, 20, purchase)),
            ...Array.from({ length: 10 }, () => refund(ledger, p, 20, purchase, same))
          ],
          { concurrency: "unbounded" }
        )
        const repeated = results.slice(10)
        assert.strictEqual(new Set(repeated.map((r) => r.transaction?.id ?? "none")).size, 1)
        assert.strictEqual(new Set(repeated.map((r) => r.reclaimed)).size, 1)
        assert.strictEqual(repeated.filter((r) => r.code === "created").length, 1)
        const distinct = [...results.slice(0, 10), repeated.find((r) => r.code === "created")!]
        assert.strictEqual(distinct.reduce((s, r) => s + r.withdrawn + r.reclaimed, 0), 100)
        const [revenueAfter, fundingAfter, earned] = yield* balances(ledger, [revenueAccount, fundingAccount, c])
        // whichever refund covered the last of the spending took all that was left of each share
        assert.deepStrictEqual([earned, revenueBefore! - revenueAfter!, fundingAfter! - fundingBefore!], [0, 70, 100])
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("two purchases, one spent, both refunded in either order: the spent one's payees give back what they got", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        for (const spentFirst of [true, false]) {
          const p = projectId()
          const c = earningsAccount(projectId())
          const [a, b] = [key("purchase"), key("purchase")]
          yield* ledger.grant({ idempotencyKey: a, projectId: p, amount: cr(100), source: "purchase" })
          yield* ledger.grant({ idempotencyKey: b, projectId: p, amount: cr(100), source: "purchase" })
          // spends all of a (the older lot is drawn first)
          yield* call(ledger, p, 100, [[c, 30], [revenueAccount, 70]])
          const [revenueBefore, fundingBefore] = yield* balances(ledger, [revenueAccount, fundingAccount])
          const [first, second] = spentFirst ? [a, b] : [b, a]
          const one = yield* refund(ledger, p, 100, first)
          const two = yield* refund(ledger, p, 100, second)
          // the first refund takes b's credit either way; the second reclaims a's spending
          assert.deepStrictEqual([one.withdrawn, one.reclaimed, two.withdrawn, two.reclaimed], [100, 0, 0, 100])
          assert.deepStrictEqual(reclaimLegs(two.transaction?.entries).sort(), [[c, 30], [revenueAccount, 70]].sort())
          const [revenueAfter, fundingAfter, earned, wallet] = yield* balances(ledger, [
            revenueAccount,
            fundingAccount,
            c,
            walletAccount(p)
          ])
          assert.deepStrictEqual([earned, wallet, revenueBefore! - revenueAfter!, fundingAfter! - fundingBefore!], [
            0,
            0,
            70,
            200
          ])
          // nothing is reclaimed twice
          const again = yield* refund(ledger, p, 100, first)
          assert.deepStrictEqual([again.withdrawn, again.reclaimed], [0, 0])
        }
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      })))

    it.effect("a refund takes the refunded purchase's own credit before credit that expires sooner", () =>
      run(Effect.gen(function*() {
        const ledger = yield* Ledger
        const p = projectId()
        const purchase = key("purchase")
        yield* ledger.grant({
          idempotencyKey: key(),
          projectId: p,
          amount: cr(50),
          source: "plan_allowance",
          expiresAt: 3_600_000
        })
        const bought = yield* ledger.grant({
          idempotencyKey: purchase,
          projectId: p,
          amount: cr(40),
          source: "purchase"
        })
        const r = yield* refund(ledger, p, 40, purchase)
        assert.deepStrictEqual([r.withdrawn, r.reclaimed], [40, 0])
        const lots = yield* ledger.grants(p)
        assert.deepStrictEqual(
          lots.map((g) => [g.id === bought.grant.id ? "purchase" : "allowance", g.remaining]).sort(),
          [["allowance", 50], ["purchase", 0]]
        )
      })))

    it.effect.prop(
      "refunding every purchase in full, in any order, takes back from each payee what it got (less rounding)",
      {
        lots: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 4 }),
        calls: fc.array(
          fc.record({
            held: fc.integer({ min: 1, max: 40 }),
            permille: fc.integer({ min: 0, max: 1_000 }),
            shares: fc.tuple(fc.nat(10), fc.nat(10))
          }),
          { maxLength: 8 }
        ),
        order: fc.array(fc.nat(), { maxLength: 4 })
      },
      ({ calls, lots, order }) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const p = projectId()
          const payees = [earningsAccount(projectId()), earningsAccount(projectId())] as const
          const purchases: Array<{ readonly key: IdempotencyKey; readonly amount: number }> = []
          for (const amount of lots) {
            const k = key("purchase")
            yield* ledger.grant({ idempotencyKey: k, projectId: p, amount: cr(amount), source: "purchase" })
            purchases.push({ key: k, amount })
          }
          // a call's payee share is split over the lots it drew, each part rounded down: at most a
          // credit per extra lot stays with the payee
          let dust = 0
          for (const c of calls) {
            if ((yield* ledger.balance(p)).available < c.held) continue
            const captured = Math.floor((c.held * c.permille) / 1_000)
            const first = Math.floor((captured * (c.shares[0] + 1)) / (c.shares[0] + c.shares[1] + 2))
            const made = yield* call(ledger, p, c.held, [[payees[0], first], [payees[1], captured - first]])
            dust += Math.max(0, DrawDown.splitAllocations(made.allocations, captured).consumed.length - 1)
          }
          // a permutation of the purchases, from `order`
          const left = [...purchases]
          const refunds = order.map((n) => left.splice(n % Math.max(1, left.length), 1)[0]).filter((x) =>
            x !== undefined
          )
          const fundingBefore = yield* ledger.accountBalance(fundingAccount)
          for (const x of [...refunds, ...left]) yield* refund(ledger, p, x.amount, x.key)
          const total = purchases.reduce((s, x) => s + x.amount, 0)
          const [kept0, kept1, wallet] = yield* balances(ledger, [...payees, walletAccount(p)])
          assert.strictEqual(wallet, 0)
          for (const kept of [kept0!, kept1!]) {
            assert.isAtLeast(kept, 0)
            assert.isAtMost(kept, dust)
          }
          // the payments come back in full, less only what the payees keep of rounding
          const refunded = Number((yield* ledger.accountBalance(fundingAccount)) - fundingBefore)
          assert.strictEqual(refunded, total - kept0! - kept1!)
          assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
        }).pipe(Effect.provide(layer)),
      { fastCheck: { numRuns: options.numRuns } }
    )

    it.effect.prop(
      "any calls and refunds: each refund takes and reclaims what the model says, no payee gives back more than it got",
      {
        lots: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 3 }),
        steps: fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant("call" as const),
              held: fc.integer({ min: 1, max: 40 }),
              permille: fc.integer({ min: 0, max: 1_000 }),
              shares: fc.tuple(fc.nat(10), fc.nat(10), fc.nat(10))
            }),
            fc.record({ op: fc.constant("refund" as const), lot: fc.nat(5), amount: fc.integer({ min: 1, max: 60 }) })
          ),
          { minLength: 1, maxLength: 14 }
        )
      },
      ({ lots, steps }) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const p = projectId()
          const payees = [earningsAccount(projectId()), earningsAccount(projectId()), revenueAccount] as const
          const purchases: Array<{ readonly key: IdempotencyKey; readonly id: string }> = []
          for (const amount of lots) {
            const k = key("purchase")
            const g = yield* ledger.grant({ idempotencyKey: k, projectId: p, amount: cr(amount), source: "purchase" })
            purchases.push({ key: k, id: g.grant.id })
          }
          const calls: Array<Reclaim.CapturedCall> = []
          const received = new Map<AccountId, number>()
          const refunds = new Map<GrantId, Reclaim.LotRefunds>()
          const given = new Map<AccountId, number>()
          for (const step of steps) {
            if (step.op === "call") {
              const available = (yield* ledger.balance(p)).available
              if (available < step.held) continue
              const captured = Math.floor((step.held * step.permille) / 1_000)
              const weights = step.shares.map((w) => w + 1)
              const total = weights.reduce((s, w) => s + w, 0)
              const amounts = weights.map((w) => Math.floor((captured * w) / total))
              amounts[2]! += captured - amounts.reduce((s, a) => s + a, 0)
              const made = yield* call(
                ledger,
                p,
                step.held,
                payees.map((account, i) => [account, amounts[i]!] as const)
              )
              calls.push(made)
              for (const { account, amount } of made.payees) {
                received.set(account, (received.get(account) ?? 0) + amount)
              }
              continue
            }
            const lot = purchases[step.lot % purchases.length]!
            // the model: the refunded lot's credit first, then the others in spending order
            const drawn = Option.getOrThrow(
              DrawDown.allocate(yield* ledger.grants(p), step.amount, 0, true, lot.id as GrantId)
            )
            const r = yield* refund(ledger, p, step.amount, lot.key)
            assert.strictEqual(r.withdrawn, DrawDown.sumAllocations(drawn))
            const expected = Reclaim.refund(
              lot.id as GrantId,
              drawn,
              step.amount - r.withdrawn,
              (id) => refunds.get(id) ?? Reclaim.noRefunds,
              (id) => Reclaim.lotSpending(id, calls)
            )
            for (const [id, state] of expected.lots) refunds.set(id, state)
            assert.deepStrictEqual(
              reclaimLegs(r.transaction?.entries).sort(),
              expected.legs.map((l) => [l.account, l.amount]).sort()
            )
            assert.strictEqual(r.reclaimed, expected.legs.reduce((s, l) => s + l.amount, 0))
            for (const leg of expected.legs) given.set(leg.account, (given.get(leg.account) ?? 0) + leg.amount)
          }
          for (const account of payees.slice(0, 2)) {
            const balance = Number(yield* ledger.accountBalance(account))
            assert.strictEqual(balance, (received.get(account) ?? 0) - (given.get(account) ?? 0))
            assert.isAtLeast(balance, 0)
          }
          assert.isAtMost(given.get(revenueAccount) ?? 0, received.get(revenueAccount) ?? 0)
          assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
        }).pipe(Effect.provide(layer)),
      { fastCheck: { numRuns: options.numRuns } }
    )
  })
