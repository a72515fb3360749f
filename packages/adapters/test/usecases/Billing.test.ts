import { assert, describe, it } from "@effect/vitest"
import type { BillingAction, CreditsReversed, EventId, IdempotencyKey, ProjectId } from "@tollgate/core"
import { Billing, BillingInbox, fundingAccount, Ledger, LedgerUnavailable, revenueAccount } from "@tollgate/core"
import { Effect, Exit, FastCheck as fc, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import { makeMemoryLedger } from "../../src/memory/MemoryLedger.js"
import { sumOfAccounts } from "../contracts/LedgerContract.js"
import { demoTenant, useCases, UseCasesLive } from "./support.js"

const event = (id: string, action: BillingAction | Record<string, unknown>, createdAt = 0) => ({
  id: id as EventId,
  provider: "sandbox" as const,
  type: "_tag" in action ? String(action._tag) : "unknown",
  createdAt,
  payload: "_tag" in action ? { action } : action
})

const purchase = (projectId: ProjectId, credits: number, paymentId: string): BillingAction => ({
  _tag: "CreditsPurchased",
  projectId,
  credits: credits as any,
  paymentId
})

const reversal = (projectId: ProjectId, credits: number, reversalId: string): CreditsReversed => ({
  _tag: "CreditsReversed",
  projectId,
  credits: credits as any,
  reversalId,
  reason: `dispute ${reversalId}`
})

describe("Billing", () => {
  it.effect("a purchase event grants once, whatever the duplicates, and two events about one payment grant once", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const { projectId } = yield* demoTenant("basic", 0)
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_1", purchase(projectId, 500, "pi_1"))), "applied")
      assert.strictEqual(
        yield* billing.applyBillingEvent(event("evt_1", purchase(projectId, 500, "pi_1"))),
        "duplicate"
      )
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_2", purchase(projectId, 500, "pi_1"))), "applied")
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 500)
      assert.strictEqual(((yield* (yield* BillingInbox).get("evt_2" as EventId)) as any).value.status, "processed")
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("a renewal grants the period's allowance expiring at the period end; a reversal takes back what is left", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const { projectId } = yield* demoTenant("basic", 0)
      yield* billing.applyBillingEvent(
        event("evt_r", {
          _tag: "AllowanceRenewed",
          projectId,
          credits: 5_000 as any,
          periodEnd: 30_000,
          invoiceId: "in_1"
        })
      )
      assert.strictEqual((yield* ledger.grants(projectId))[0]?.expiresAt, 30_000)
      yield* billing.applyBillingEvent(
        event("evt_x", {
          _tag: "CreditsReversed",
          projectId,
          credits: 7_000 as any,
          reversalId: "re_1",
          reason: "refund"
        })
      )
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 0)
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("unknown event types are stored and acknowledged; nothing moves", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_u", { object: "customer" })), "ignored")
      const stored = yield* (yield* BillingInbox).get("evt_u" as EventId)
      assert.strictEqual((stored as any).value.status, "processed")
      assert.strictEqual(yield* sumOfAccounts(yield* Ledger), 0n)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("an operator grant needs an existing project", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const missing = yield* Effect.exit(billing.grantCredits({
        idempotencyKey: "g1" as IdempotencyKey,
        projectId: "nobody" as ProjectId,
        amount: 5 as any,
        source: "adjustment",
        reason: "goodwill"
      }))
      assert.isTrue(Exit.isFailure(missing))
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("an event whose worker died is claimed again after its lease and applied once", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const inbox = yield* BillingInbox
      const ledger = yield* Ledger
      const { projectId } = yield* demoTenant("basic", 0)
      const e = event("evt_c", purchase(projectId, 300, "pi_c"))
      yield* inbox.store(e, 0)
      // a worker claims it and dies before completing
      const first = yield* inbox.claim({ now: 0, limit: 10, leaseMs: 5_000 })
      assert.strictEqual(first.length, 1)
      assert.strictEqual((yield* billing.processPending({ limit: 10, leaseMs: 5_000 })).length, 0)
      yield* TestClock.setTime(5_000)
      assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: 5_000 }), ["applied"])
      assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: 5_000 }), [])
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 300)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("a worker whose lease ended and was taken over marks nothing; the new holder completes the event", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const inbox = yield* BillingInbox
      const ledger = yield* Ledger
      const { projectId } = yield* demoTenant("basic", 0)
      const e = event("evt_s", purchase(projectId, 300, "pi_s"))
      yield* inbox.store(e, 0)
      const [stale] = yield* inbox.claim({ now: 0, limit: 10, leaseMs: 5_000 })
      yield* TestClock.setTime(5_000)
      const [current] = yield* inbox.claim({ now: 5_000, limit: 10, leaseMs: 5_000 })
      // the first worker wakes up after its lease: its grant is keyed, its mark refused
      assert.strictEqual(yield* billing.process(stale!), "stale")
      assert.strictEqual(Option.getOrThrow(yield* inbox.get(e.id)).status, "pending")
      assert.strictEqual(yield* billing.process(current!), "applied")
      assert.strictEqual(Option.getOrThrow(yield* inbox.get(e.id)).status, "processed")
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 300)
    }).pipe(Effect.provide(UseCasesLive), Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("a reinstatement gives back exactly what its reversal took, and applies the reversal first if it never was", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const { projectId } = yield* demoTenant("basic", 0)
      yield* billing.applyBillingEvent(event("evt_p", purchase(projectId, 100, "pi_1")))
      yield* ledger.withdraw({
        idempotencyKey: "spent" as IdempotencyKey,
        projectId,
        amount: 70 as any,
        to: revenueAccount,
        reason: "calls"
      })
      const taken = reversal(projectId, 100, "dp_1")
      yield* billing.applyBillingEvent(event("evt_d", taken))
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 0)
      const won: BillingAction = { _tag: "CreditsReinstated", reversal: taken }
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_w", won)), "applied")
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_w2", won)), "applied")
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 30)

      // won before the dispute was seen: reversed, then given back
      yield* billing.applyBillingEvent(
        event("evt_w3", { _tag: "CreditsReinstated", reversal: reversal(projectId, 10, "dp_2") })
      )
      yield* billing.applyBillingEvent(event("evt_d2", reversal(projectId, 10, "dp_2")))
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 30)
      const { transactions } = yield* ledger.history(projectId, { limit: 100 })
      assert.deepStrictEqual(transactions.map((t) => t.idempotencyKey).filter((k) => k.includes("dp_2")).sort(), [
        "reinstate:dp_2",
        "reversal:dp_2"
      ])
      assert.strictEqual(yield* ledger.accountBalance(fundingAccount), -100n)
      assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
    }).pipe(Effect.provide(UseCasesLive)))

  it.effect("an event's actions apply in order; an outage part-way leaves it pending and the retry applies each once", () => {
    const outage = { writesLeft: Number.POSITIVE_INFINITY }
    const FlakyLedger = Layer.effect(
      Ledger,
      Effect.map(makeMemoryLedger, (ledger) =>
        Ledger.of({
          ...ledger,
          withdraw: (request) =>
            Effect.suspend(() =>
              outage.writesLeft-- <= 0
                ? Effect.fail(new LedgerUnavailable({ message: "connection reset" }))
                : ledger.withdraw(request)
            )
        }))
    )
    return Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const inbox = yield* BillingInbox
      const { projectId } = yield* demoTenant("basic", 0)
      const translate = () => [purchase(projectId, 100, "pi_1"), reversal(projectId, 40, "re_1")]
      outage.writesLeft = 0
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_m", { object: "charge" }), translate), "failed")
      outage.writesLeft = Number.POSITIVE_INFINITY
      // the purchase went in before the outage; the reversal waits
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 100)
      assert.strictEqual(Option.getOrThrow(yield* inbox.get("evt_m" as EventId)).status, "pending")
      yield* TestClock.adjust("31 seconds")
      assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: 5_000, translate }), ["applied"])
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 60)
      // no actions: acknowledged and ignored
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_n", { object: "charge" }), () => []), "ignored")
    }).pipe(
      Effect.provide(useCases(FlakyLedger)),
      Logger.withMinimumLogLevel(LogLevel.None)
    )
  })

  it.effect("an event that fails every allowed attempt is parked as dead, and applies once when requeued", () => {
    let down = true
    const DownLedger = Layer.effect(
      Ledger,
      Effect.map(makeMemoryLedger, (ledger) =>
        Ledger.of({
          ...ledger,
          grant: (request) =>
            Effect.suspend(() =>
              down ? Effect.fail(new LedgerUnavailable({ message: "connection reset" })) : ledger.grant(request)
            )
        }))
    )
    return Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const inbox = yield* BillingInbox
      const { projectId } = yield* demoTenant("basic", 0)
      const e = event("evt_dead", purchase(projectId, 100, "pi_dead"))
      yield* inbox.store(e, 0)
      let outcomes: ReadonlyArray<string> = []
      for (let i = 0; i < 5; i++) {
        outcomes = outcomes.concat(yield* billing.processPending({ limit: 10, leaseMs: 5_000, maxAttempts: 3 }))
        yield* TestClock.adjust("31 seconds")
      }
      assert.deepStrictEqual(outcomes, ["failed", "failed", "dead"])
      const dead = Option.getOrThrow(yield* inbox.get(e.id))
      assert.deepStrictEqual([dead.status, dead.attempts, dead.lastError], ["dead", 3, "connection reset"])
      down = false
      yield* inbox.requeue(e.id)
      assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: 5_000, maxAttempts: 3 }), ["applied"])
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 100)
    }).pipe(Effect.provide(useCases(DownLedger)), Logger.withMinimumLogLevel(LogLevel.None))
  })

  it.effect("an event whose workers died on every allowed attempt is parked as dead, unapplied", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const inbox = yield* BillingInbox
      const { projectId } = yield* demoTenant("basic", 0)
      const e = event("evt_crash", purchase(projectId, 100, "pi_crash"))
      yield* inbox.store(e, 0)
      // two workers claim it and die
      yield* inbox.claim({ now: 0, limit: 10, leaseMs: 5_000 })
      yield* inbox.claim({ now: 5_000, limit: 10, leaseMs: 5_000 })
      yield* TestClock.setTime(10_000)
      assert.deepStrictEqual(yield* billing.processPending({ limit: 10, leaseMs: 5_000, maxAttempts: 2 }), ["dead"])
      assert.strictEqual(Option.getOrThrow(yield* inbox.get(e.id)).status, "dead")
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 0)
    }).pipe(Effect.provide(UseCasesLive), Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("a refused action is logged and the event's other actions still apply", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const ledger = yield* Ledger
      const { projectId } = yield* demoTenant("basic", 0)
      yield* billing.applyBillingEvent(event("evt_1", purchase(projectId, 100, "pi_1")))
      // the same payment with other credits conflicts with the first grant
      const translate = () => [purchase(projectId, 999, "pi_1"), purchase(projectId, 5, "pi_2")]
      assert.strictEqual(yield* billing.applyBillingEvent(event("evt_2", { object: "charge" }), translate), "refused")
      assert.strictEqual((yield* ledger.balance(projectId)).balance, 105)
    }).pipe(Effect.provide(UseCasesLive), Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect.prop(
    "any duplication and order of purchase events ends with each payment granted exactly once",
    {
      payments: fc.uniqueArray(fc.integer({ min: 1, max: 1_000 }), { minLength: 1, maxLength: 6 }),
      deliveries: fc.array(fc.record({ payment: fc.nat(), viaSecondEvent: fc.boolean() }), {
        minLength: 1,
        maxLength: 20
      })
    },
    ({ deliveries, payments }) =>
      Effect.gen(function*() {
        const billing = yield* Billing
        const ledger = yield* Ledger
        const { projectId } = yield* demoTenant("basic", 0)
        const delivered = new Set<number>()
        for (const d of deliveries) {
          const i = d.payment % payments.length
          const amount = payments[i]!
          // Stripe sends two events per top-up (session completed, intent succeeded), each possibly many times
          const id = `${d.viaSecondEvent ? "evt_pi" : "evt_cs"}_${i}`
          yield* billing.applyBillingEvent(event(id, purchase(projectId, amount, `pay_${i}`)))
          delivered.add(i)
        }
        const expected = [...delivered].reduce((s, i) => s + payments[i]!, 0)
        assert.strictEqual((yield* ledger.balance(projectId)).balance, expected)
        assert.strictEqual(yield* sumOfAccounts(ledger), 0n)
      }).pipe(Effect.provide(UseCasesLive)),
    { fastCheck: { numRuns: 1_000 } }
  )
})
