import { assert, describe, it } from "@effect/vitest"
import type { Hold, HoldId, Ledger as LedgerService, ProjectId } from "@tollgate/core"
import { earningsAccount, Ledger, revenueAccount, walletAccount } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Either, Exit, FastCheck as fc } from "effect"
import { cr, key, projectId } from "./fixtures.js"
import { sumOfAccounts } from "./LedgerContract.js"

type LedgerApi = LedgerService["Type"]

const yields = (n: number) => Effect.repeatN(Effect.yieldNow(), Math.max(0, n - 1)).pipe(Effect.when(() => n > 0))

/**
 * What a wallet must satisfy. Available and balance are never negative at any observation; the
 * exact identity (balance = what the lots hold + what pending holds reserved) spans two reads, so
 * it is checked only when no write is in flight.
 */
const checkWallet = (ledger: LedgerApi, p: ProjectId, quiescent = true) =>
  Effect.gen(function*() {
    const b = yield* ledger.balance(p)
    assert.isAtLeast(b.available, 0)
    assert.isAtLeast(b.balance, 0)
    assert.isAtMost(b.available, b.balance)
    if (!quiescent) return
    const lots = yield* ledger.grants(p)
    const inLots = lots.reduce((s, g) => s + g.remaining, 0)
    assert.strictEqual(b.balance, inLots + b.pending)
  })

const requestArb = fc.record({
  amount: fc.integer({ min: 1, max: 25 }),
  // per mille of the held amount to capture; negative means void, above 1000 means leave pending
  settle: fc.integer({ min: -300, max: 1_300 }),
  delay: fc.integer({ min: 0, max: 3 })
})

/**
 * The money invariants as properties, run against any Ledger adapter. Each run gets a fresh
 * adapter from `layer`.
 */
export const ledgerProperties = (
  name: string,
  layer: Layer.Layer<Ledger, unknown>,
  options: { readonly numRuns: number }
) =>
  describe(`Ledger properties: ${name}`, () => {
    const fastCheck = { numRuns: options.numRuns }

    it.effect.prop(
      "no overspend: concurrent holds, captures, voids and grants never make available credit negative",
      {
        initial: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 0, maxLength: 4 }),
        requests: fc.array(requestArb, { minLength: 1, maxLength: 25 }),
        topUps: fc.array(
          fc.record({ amount: fc.integer({ min: 1, max: 40 }), delay: fc.integer({ min: 0, max: 4 }) }),
          {
            maxLength: 3
          }
        )
      },
      ({ initial, requests, topUps }) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const p = projectId()
          const contributor = projectId()
          for (const amount of initial) {
            yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(amount), source: "purchase" })
          }
          const serve = (r: typeof requests[number]) =>
            Effect.gen(function*() {
              yield* yields(r.delay)
              const held = yield* Effect.either(
                ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(r.amount), expiresAt: 3_600_000 })
              )
              yield* checkWallet(ledger, p, false)
              if (Either.isLeft(held)) {
                assert.strictEqual(held.left._tag, "InsufficientCredit")
                return 0
              }
              yield* yields(r.delay)
              if (r.settle < 0) {
                yield* ledger.void({ idempotencyKey: key(), holdId: held.right.hold.id })
                return 0
              }
              if (r.settle > 1_000) return 0
              const amount = Math.floor((r.amount * r.settle) / 1_000)
              const share = Math.floor(amount / 3)
              yield* ledger.capture({
                idempotencyKey: key(),
                holdId: held.right.hold.id,
                amount: cr(amount),
                payees: [
                  { account: earningsAccount(contributor), amount: cr(share) },
                  { account: revenueAccount, amount: cr(amount - share) }
                ]
              })
              yield* checkWallet(ledger, p, false)
              return amount
            })
          const topUp = (t: typeof topUps[number]) =>
            yields(t.delay).pipe(
              Effect.zipRight(
                ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(t.amount), source: "purchase" })
              ),
              Effect.as(t.amount)
            )
          const [captured, added] = yield* Effect.all([
            Effect.all(requests.map(serve), { concurrency: "unbounded" }),
            Effect.all(topUps.map(topUp), { concurrency: "unbounded" })
          ], { concurrency: "unbounded" })
          const granted = initial.reduce((s, a) => s + a, 0) + added.reduce((s, a) => s + a, 0)
          const spent = captured.reduce((s, a) => s + a, 0)
          assert.isAtMost(spent, granted)
          const b = yield* ledger.balance(p)
          assert.strictEqual(b.balance, granted - spent)
          yield* checkWallet(ledger, p)
          assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
        }).pipe(Effect.provide(layer)),
      { fastCheck }
    )

    const opArb = fc.oneof(
      fc.record({ op: fc.constant("grant" as const), amount: fc.integer({ min: 1, max: 50 }), expires: fc.boolean() }),
      fc.record({ op: fc.constant("hold" as const), amount: fc.integer({ min: 1, max: 30 }) }),
      fc.record({
        op: fc.constant("capture" as const),
        hold: fc.nat(20),
        permille: fc.integer({ min: 0, max: 1_000 })
      }),
      fc.record({ op: fc.constant("void" as const), hold: fc.nat(20) }),
      fc.record({ op: fc.constant("withdraw" as const), amount: fc.integer({ min: 1, max: 30 }) }),
      fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 40_000 }) })
    )
    type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never

    /** Applies a script of writes; holds are named by the index of the hold write that made them. */
    const applyScript = (
      ledger: LedgerApi,
      p: ProjectId,
      script: ReadonlyArray<{ readonly op: Op; readonly key: string }>,
      time: { now: number },
      /** The hold each capture or void named when first sent, so a replay sends the very same request. */
      named: Map<string, HoldId | undefined> = new Map()
    ) =>
      Effect.gen(function*() {
        const holdIds: Array<HoldId> = []
        const outcomes: Array<string> = []
        for (const { key: k, op } of script) {
          const idempotencyKey = k as any
          let exit: Exit.Exit<unknown, { readonly _tag: string }>
          switch (op.op) {
            case "tick":
              time.now += op.ms
              yield* ledger.expireHolds(time.now)
              yield* ledger.expireGrants(time.now)
              outcomes.push("tick")
              continue
            case "grant":
              exit = yield* Effect.exit(ledger.grant({
                idempotencyKey,
                projectId: p,
                amount: cr(op.amount),
                source: op.expires ? "promotion" : "purchase",
                expiresAt: op.expires ? time.now + 30_000 : undefined
              }))
              break
            case "hold":
              exit = yield* Effect.exit(
                ledger.hold({ idempotencyKey, projectId: p, amount: cr(op.amount), expiresAt: time.now + 20_000 }).pipe(
                  Effect.tap((r) => Effect.sync(() => holdIds.includes(r.hold.id) || holdIds.push(r.hold.id)))
                )
              )
              break
            case "capture": {
              const id = named.has(k) ? named.get(k) : holdIds[op.hold % Math.max(1, holdIds.length)]
              named.set(k, id)
              if (id === undefined) {
                outcomes.push("no hold")
                continue
              }
              const held = yield* ledger.getHold(id)
              const amount = Math.floor((held.amount * op.permille) / 1_000)
              exit = yield* Effect.exit(ledger.capture({
                idempotencyKey,
                holdId: id,
                amount: cr(amount),
                payees: [{ account: revenueAccount, amount: cr(amount) }]
              }))
              break
            }
            case "void": {
              const id = named.has(k) ? named.get(k) : holdIds[op.hold % Math.max(1, holdIds.length)]
              named.set(k, id)
              if (id === undefined) {
                outcomes.push("no hold")
                continue
              }
              exit = yield* Effect.exit(ledger.void({ idempotencyKey, holdId: id }))
              break
            }
            case "withdraw":
              exit = yield* Effect.exit(
                ledger.withdraw({
                  idempotencyKey,
                  projectId: p,
                  amount: cr(op.amount),
                  to: revenueAccount,
                  reason: "w"
                })
              )
              break
          }
          outcomes.push(Exit.isSuccess(exit) ? "ok" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect")
        }
        return { holdIds, outcomes }
      })

    const snapshot = (ledger: LedgerApi, p: ProjectId, holdIds: ReadonlyArray<HoldId>) =>
      Effect.gen(function*() {
        const b = yield* ledger.balance(p)
        const holds: Array<Hold["status"]> = []
        for (const id of holdIds) holds.push((yield* ledger.getHold(id)).status)
        const lots = (yield* ledger.grants(p)).map((g) => g.remaining)
        return {
          balance: b.balance,
          available: b.available,
          pending: b.pending,
          holds,
          lots,
          wallet: yield* ledger.accountBalance(walletAccount(p)),
          revenue: yield* ledger.accountBalance(revenueAccount)
        }
      })

    it.effect.prop(
      "the ledger sums to zero and every transaction is balanced after any sequence of writes",
      { ops: fc.array(opArb, { maxLength: 40 }) },
      ({ ops }) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const p = projectId()
          yield* applyScript(ledger, p, ops.map((op) => ({ op, key: key() })), { now: 0 })
          assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
          yield* checkWallet(ledger, p)
          let cursor: string | undefined = undefined
          do {
            const page: {
              transactions: ReadonlyArray<{ entries: ReadonlyArray<{ amount: number }> }>
              nextCursor: string | undefined
            } = yield* ledger.history(p, { limit: 50, cursor })
            for (const t of page.transactions) {
              assert.strictEqual(t.entries.reduce((s, e) => s + e.amount, 0), 0)
              assert.isAtLeast(t.entries.length, 2)
            }
            cursor = page.nextCursor
          } while (cursor !== undefined)
        }).pipe(Effect.provide(layer)),
      { fastCheck }
    )

    it.effect.prop(
      "a hold resolves at most once, and an expired hold releases exactly its amount",
      {
        grant: fc.integer({ min: 1, max: 100 }),
        amount: fc.integer({ min: 1, max: 100 }),
        actions: fc.array(
          fc.oneof(
            fc.record({ a: fc.constant("capture" as const), permille: fc.integer({ min: 0, max: 1_200 }) }),
            fc.record({ a: fc.constant("void" as const) }),
            fc.record({ a: fc.constant("expire" as const), at: fc.integer({ min: 0, max: 20_000 }) })
          ),
          { minLength: 1, maxLength: 8 }
        )
      },
      ({ actions, amount, grant }) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const p = projectId()
          yield* ledger.grant({ idempotencyKey: key(), projectId: p, amount: cr(grant), source: "purchase" })
          const held = yield* Effect.either(
            ledger.hold({ idempotencyKey: key(), projectId: p, amount: cr(amount), expiresAt: 10_000 })
          )
          if (Either.isLeft(held)) {
            assert.isAbove(amount, grant)
            return
          }
          const hold = held.right.hold
          let resolutions = 0
          let expired = false
          for (const action of actions) {
            let exit: Exit.Exit<unknown, unknown>
            if (action.a === "capture") {
              const amt = Math.floor((amount * action.permille) / 1_000)
              exit = yield* Effect.exit(ledger.capture({
                idempotencyKey: key(),
                holdId: hold.id,
                amount: cr(amt),
                payees: [{ account: revenueAccount, amount: cr(amt) }]
              }))
            } else if (action.a === "void") {
              exit = yield* Effect.exit(ledger.void({ idempotencyKey: key(), holdId: hold.id }))
            } else {
              const before = (yield* ledger.getHold(hold.id)).status
              const availableBefore = (yield* ledger.balance(p)).available
              const swept = yield* ledger.expireHolds(action.at)
              const after = (yield* ledger.getHold(hold.id)).status
              if (before === "pending" && after === "expired") {
                resolutions++
                expired = true
                assert.strictEqual(swept.amount, amount)
                assert.strictEqual((yield* ledger.balance(p)).available - availableBefore, amount)
              } else {
                assert.strictEqual(swept.count, 0)
              }
              continue
            }
            if (Exit.isSuccess(exit)) resolutions++
          }
          assert.isAtMost(resolutions, 1)
          const final = yield* ledger.getHold(hold.id)
          assert.strictEqual(final.status === "pending", resolutions === 0)
          if (expired) assert.strictEqual(final.status, "expired")
          const b = yield* ledger.balance(p)
          assert.strictEqual(b.balance, grant - (final.captured ?? 0))
          assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
        }).pipe(Effect.provide(layer)),
      { fastCheck }
    )

    it.effect.prop(
      "replaying writes with their keys, duplicated and reordered, leaves the same state; another request under a used key conflicts",
      {
        ops: fc.array(opArb.filter((o) => o.op !== "tick"), { minLength: 1, maxLength: 30 }),
        replay: fc.array(fc.nat(1_000), { minLength: 1, maxLength: 40 })
      },
      ({ ops, replay }) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const p = projectId()
          const script = ops.map((op) => ({ op, key: key() }))
          const time = { now: 0 }
          const named = new Map<string, HoldId | undefined>()
          const first = yield* applyScript(ledger, p, script, time, named)
          const before = yield* snapshot(ledger, p, first.holdIds)
          // replay: any writes of the script again, in any order, any number of times
          const again = replay.map((i) => script[i % script.length]!)
          const second = yield* applyScript(ledger, p, again, time, named)
          const after = yield* snapshot(ledger, p, first.holdIds)
          assert.deepStrictEqual(after, before)
          // every replayed write got exactly its first outcome
          const firstOutcome = new Map(script.map((s, i) => [s.key, first.outcomes[i]]))
          again.forEach((s, i) => {
            assert.strictEqual(second.outcomes[i], firstOutcome.get(s.key))
          })
          const used = script.find((s) => s.op.op === "grant")
          if (used !== undefined) {
            const conflict = yield* Effect.exit(
              ledger.grant({ idempotencyKey: used.key as any, projectId: p, amount: cr(999), source: "purchase" })
            )
            assert.isTrue(Exit.isFailure(conflict))
            assert.strictEqual(
              Exit.isFailure(conflict) && conflict.cause._tag === "Fail" ? conflict.cause.error._tag : "",
              "IdempotencyConflict"
            )
          }
        }).pipe(Effect.provide(layer)),
      { fastCheck }
    )
  })
