import { assert, describe, it } from "@effect/vitest"
import type {
  BillingAction,
  Credits,
  EpochMillis,
  EventId,
  IdempotencyKey,
  PlanId,
  ProjectId,
  ProviderRecord,
  Transaction
} from "@tollgate/core"
import {
  Billing,
  Ledger,
  PaymentProvider,
  Project,
  ProjectStore,
  reconcile,
  Reconciliation,
  ReconciliationStore
} from "@tollgate/core"
import { Effect, Exit, Layer, Option, TestClock } from "effect"
import { MemoryStackLive } from "../../src/memory/MemoryStack.js"
import { SandboxPaymentControl, sandboxPaymentProviderLayer } from "../../src/memory/SandboxPaymentProvider.js"
import { unique } from "../contracts/fixtures.js"

const DAY = 86_400_000
const day = Date.UTC(2026, 0, 2)
const window = { from: day, to: day + DAY }

const stack = Layer.mergeAll(Reconciliation.Default, Billing.Default).pipe(
  Layer.provideMerge(Layer.merge(MemoryStackLive, sandboxPaymentProviderLayer()))
)

const projectA = "prj_recon_a" as ProjectId
const projectB = "prj_recon_b" as ProjectId

const setup = Effect.gen(function*() {
  yield* TestClock.setTime(day + 3_600_000)
  const projects = yield* ProjectStore
  for (const id of [projectA, projectB]) {
    yield* projects.put(
      new Project({ id, name: id, planId: "basic" as PlanId, planVersion: 1, createdAt: 0 })
    )
  }
})

/** A top-up paid through the sandbox's checkout: what the provider then lists. */
const paid = (projectId: ProjectId, credits: number, amountCents = credits * 10) =>
  Effect.gen(function*() {
    const provider = yield* PaymentProvider
    const control = yield* SandboxPaymentControl
    const { sessionId } = yield* provider.createTopUpCheckout({
      projectId,
      credits: credits as Credits,
      amountCents,
      idempotencyKey: unique("checkout"),
      saveCard: false
    })
    yield* TestClock.adjust("1 minute")
    return Option.getOrThrow(yield* control.completeCheckout(sessionId))
  })

/** A provider event applied through Billing, as the worker applies it. */
const apply = (action: BillingAction) =>
  Effect.gen(function*() {
    const billing = yield* Billing
    const outcome = yield* billing.applyBillingEvent({
      id: unique("evt") as EventId,
      provider: "sandbox",
      type: "test.action",
      createdAt: yield* TestClock.currentTimeMillis,
      payload: { action }
    })
    assert.strictEqual(outcome, "applied")
  })

const purchased = (payment: ProviderRecord, credits = payment.credits!) =>
  apply({ _tag: "CreditsPurchased", projectId: payment.projectId!, credits, paymentId: payment.paymentId })

const reversed = (record: ProviderRecord, kind: "refund" | "dispute", credits: number) =>
  apply({
    _tag: "CreditsReversed",
    projectId: record.projectId!,
    credits: credits as Credits,
    reversalId: `${kind}:${record.id}`,
    reason: `${kind} ${record.id} of ${record.paymentId}`
  })

const summary = (differences: ReadonlyArray<{ readonly kind: string; readonly providerObjectId: string }>) =>
  differences.map((d) => `${d.kind} ${d.providerObjectId}`).sort()

describe("Reconciliation", () => {
  it.effect("finds exactly the planted differences, and stores the report", () =>
    Effect.gen(function*() {
      yield* setup
      const control = yield* SandboxPaymentControl
      const ledger = yield* Ledger

      // reconciled: granted, refunded and disputed with their reversals
      const good = yield* paid(projectA, 100)
      yield* purchased(good)
      const goodRefund = Option.getOrThrow(yield* control.refund(good.paymentId, 250))
      yield* reversed(goodRefund, "refund", 25)
      const goodDispute = Option.getOrThrow(yield* control.dispute(good.paymentId))
      yield* reversed(goodDispute, "dispute", 75)

      const neverGranted = yield* paid(projectA, 200)
      const wrongAmount = yield* paid(projectB, 300)
      yield* purchased(wrongAmount, 30 as Credits)
      const doubled = yield* paid(projectB, 400)
      yield* purchased(doubled)
      yield* ledger.grant({
        idempotencyKey: "manual:replayed-by-hand" as IdempotencyKey,
        projectId: projectB,
        amount: 400 as Credits,
        source: "purchase",
        reason: `payment ${doubled.paymentId}`
      })
      const refundedOnly = yield* paid(projectA, 500)
      yield* purchased(refundedOnly)
      const unreversed = Option.getOrThrow(yield* control.refund(refundedOnly.paymentId, 1_000))
      yield* apply({
        _tag: "CreditsPurchased",
        projectId: projectB,
        credits: 60 as Credits,
        paymentId: "sbx_pi_never_paid"
      })
      // an unrelated operator grant is not a payment's
      yield* ledger.grant({
        idempotencyKey: "admin:grant:promo" as IdempotencyKey,
        projectId: projectA,
        amount: 10 as Credits,
        source: "promotion",
        reason: "launch promotion"
      })

      yield* TestClock.setTime(day + DAY + 60_000)
      const report = yield* (yield* Reconciliation).run(window)

      assert.strictEqual(report.status, "differences")
      assert.deepStrictEqual(summary(report.differences), [
        `amount_mismatch ${wrongAmount.paymentId}`,
        `double_grant ${doubled.paymentId}`,
        `missing_clawback ${unreversed.id}`,
        `missing_grant ${neverGranted.paymentId}`,
        `orphan_grant sbx_pi_never_paid`
      ])
      assert.deepStrictEqual(report.counts, { payments: 5, refunds: 2, disputes: 1, differences: 5 })
      const find = (kind: string) => report.differences.find((d) => d.kind === kind)!
      const amounts = (kind: string): ReadonlyArray<string | number | undefined> => {
        const d = find(kind)
        return [d.projectId, d.expectedCredits, d.ledgerCredits]
      }
      assert.deepStrictEqual(amounts("amount_mismatch"), [projectB, 300, 30])
      assert.deepStrictEqual(amounts("double_grant"), [projectB, 400, 800])
      assert.include(find("double_grant").detail, "manual:replayed-by-hand")
      assert.deepStrictEqual(amounts("missing_clawback"), [projectA, 100, 0])
      assert.deepStrictEqual(amounts("missing_grant"), [projectA, 200, 0])
      assert.deepStrictEqual(amounts("orphan_grant"), [projectB, undefined, 60])
      assert.deepStrictEqual(report.finishedAt, day + DAY + 60_000)

      const store = yield* ReconciliationStore
      assert.deepStrictEqual(yield* store.get(report.id), Option.some(report))
    }).pipe(Effect.provide(stack)))

  it.effect("a run where every payment, refund and dispute was applied reports nothing; it changes no balance", () =>
    Effect.gen(function*() {
      yield* setup
      const control = yield* SandboxPaymentControl
      const ledger = yield* Ledger
      const payment = yield* paid(projectA, 100, 999)
      yield* purchased(payment)
      const refund = Option.getOrThrow(yield* control.refund(payment.paymentId, 333))
      yield* reversed(refund, "refund", 33)
      // a refund too small to take back a credit needs no reversal
      yield* control.refund(payment.paymentId, 5)
      const other = yield* paid(projectB, 50)
      yield* purchased(other)
      const dispute = Option.getOrThrow(yield* control.dispute(other.paymentId, "won"))
      yield* reversed(dispute, "dispute", 50)
      yield* apply({
        _tag: "CreditsReinstated",
        reversal: {
          _tag: "CreditsReversed",
          projectId: projectB,
          credits: 50 as Credits,
          reversalId: `dispute:${dispute.id}`,
          reason: `dispute ${dispute.id} of ${other.paymentId}`
        }
      })
      const before = yield* ledger.trialBalance

      const report = yield* (yield* Reconciliation).run(window)
      assert.strictEqual(report.status, "clean")
      assert.deepStrictEqual(report.differences, [])
      assert.deepStrictEqual(report.counts, { payments: 2, refunds: 2, disputes: 1, differences: 0 })
      assert.deepStrictEqual(yield* ledger.trialBalance, before)
      // the day before is another window: nothing there
      const before1 = yield* (yield* Reconciliation).run({ from: day - DAY, to: day })
      assert.strictEqual(before1.status, "clean")
      assert.deepStrictEqual(before1.counts, { payments: 0, refunds: 0, disputes: 0, differences: 0 })
    }).pipe(Effect.provide(stack)))

  it.effect("a grant made in the window for a payment of the day before is not an orphan", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day - 120_000)
      const payment = yield* paid(projectA, 10)
      yield* TestClock.setTime(day + 60_000)
      yield* purchased(payment)
      const report = yield* (yield* Reconciliation).run(window)
      assert.strictEqual(report.status, "clean")
      assert.strictEqual(report.counts.payments, 0)
    }).pipe(Effect.provide(stack)))

  it.effect("a provider that cannot list is a failed run, stored with the reason; a bad window is refused", () =>
    Effect.gen(function*() {
      const reconciliation = yield* Reconciliation
      const report = yield* reconciliation.run(window)
      assert.strictEqual(report.status, "failed")
      assert.include(report.detail, "cannot list its payments, refunds and disputes")
      assert.deepStrictEqual(yield* (yield* ReconciliationStore).get(report.id), Option.some(report))
      const page = yield* reconciliation.list({ limit: 10 })
      assert.deepStrictEqual(page.runs.map((r) => r.id), [report.id])

      const refused = yield* Effect.exit(reconciliation.run({ from: 5, to: 5 }))
      assert.isTrue(Exit.isFailure(refused))
      assert.deepStrictEqual(
        Exit.isFailure(refused) && refused.cause._tag === "Fail" ? refused.cause.error._tag : undefined,
        "InvalidReconciliationWindow"
      )
    }).pipe(
      Effect.provide(Reconciliation.Default.pipe(
        Layer.provideMerge(MemoryStackLive),
        Layer.provide(Layer.succeed(PaymentProvider, {
          name: "stripe",
          createTopUpCheckout: () => Effect.die("unused"),
          chargeOffSession: () => Effect.die("unused")
        }))
      ))
    ))
})

describe("reconcile", () => {
  const record = (fields: Partial<ProviderRecord> & Pick<ProviderRecord, "id">): ProviderRecord => ({
    projectId: projectA,
    amountCents: 1_000,
    credits: 100 as Credits,
    createdAt: (day + 1_000) as EpochMillis,
    status: "succeeded",
    paymentId: fields.id,
    ...fields
  })
  const tx = (key: string, kind: Transaction["kind"], credits: number, reason?: string): Transaction =>
    ({
      id: unique("txn"),
      idempotencyKey: key,
      kind,
      projectId: projectA,
      createdAt: day + 2_000,
      reason,
      entries: [
        { account: `wallet:${projectA}`, amount: kind === "grant" ? credits : -credits },
        { account: "funding", amount: kind === "grant" ? -credits : credits }
      ]
    }) as unknown as Transaction
  const w = { from: day as EpochMillis, to: (day + DAY) as EpochMillis }

  it("a payment without project or credits is unknown; its refund expects nothing", () => {
    const noProject = record({ id: "pi_np", projectId: undefined })
    const noCredits = record({ id: "pi_nc", credits: undefined })
    const differences = reconcile({
      window: w,
      payments: [noProject, noCredits],
      refunds: [record({ id: "re_1", paymentId: "pi_np", projectId: undefined })],
      disputes: [],
      transactions: []
    })
    assert.deepStrictEqual(summary(differences), ["unknown_payment pi_nc", "unknown_payment pi_np"])
  })

  it("cumulative refund slices cover every refund up to their amount; a later refund past them is missing", () => {
    const payment = record({ id: "pi_c" })
    const refunds = [
      record({ id: "re_a", paymentId: "pi_c", amountCents: 100, createdAt: (day + 3_000) as EpochMillis }),
      record({ id: "re_b", paymentId: "pi_c", amountCents: 200, createdAt: (day + 4_000) as EpochMillis }),
      record({ id: "re_c", paymentId: "pi_c", amountCents: 300, createdAt: (day + 5_000) as EpochMillis }),
      record({ id: "re_x", paymentId: "pi_c", amountCents: 300, status: "failed" })
    ]
    const differences = reconcile({
      window: w,
      payments: [payment],
      refunds,
      disputes: [],
      transactions: [
        tx("purchase:pi_c", "grant", 100, "payment pi_c"),
        tx("reversal:refund:ch_c:300", "withdraw", 30, "refund of 300 on ch_c (pi_c)")
      ]
    })
    assert.deepStrictEqual(
      differences.map((
        d
      ): ReadonlyArray<string | number | undefined> => [d.kind, d.providerObjectId, d.expectedCredits]),
      [
        ["missing_clawback", "re_c", 30]
      ]
    )
  })

  it("a payment listed as a failed and a succeeded charge is one payment, whatever their order", () => {
    const failed = record({ id: "ch_failed", paymentId: "pi_retry", status: "failed" })
    const succeeded = record({ id: "ch_ok", paymentId: "pi_retry" })
    const grant = tx("purchase:pi_retry", "grant", 100, "payment pi_retry")
    for (const payments of [[failed, succeeded], [succeeded, failed]]) {
      assert.deepStrictEqual(reconcile({ window: w, payments, refunds: [], disputes: [], transactions: [grant] }), [])
    }
    const onlyFailed = reconcile({ window: w, payments: [failed], refunds: [], disputes: [], transactions: [grant] })
    assert.deepStrictEqual(summary(onlyFailed), ["orphan_grant pi_retry"])
    assert.include(onlyFailed[0]!.detail, "lists as failed")
  })

  it("a grant under another key naming the payment is reported, not taken for the purchase", () => {
    const differences = reconcile({
      window: w,
      payments: [record({ id: "pi_o" })],
      refunds: [],
      disputes: [],
      transactions: [tx("admin:grant:x", "grant", 100, "payment pi_o")]
    })
    assert.deepStrictEqual(summary(differences), ["missing_grant pi_o"])
    assert.strictEqual(differences[0]!.ledgerCredits, 100)
    assert.include(differences[0]!.detail, "admin:grant:x")
  })
})
