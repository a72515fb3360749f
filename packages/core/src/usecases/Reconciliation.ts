import { Clock, Effect, Schema } from "effect"
import type { Credits, EpochMillis } from "../domain/Credits.js"
import type { ProjectId } from "../domain/Ids.js"
import type { ReconciliationId } from "../domain/ReconciliationReport.js"
import { ReconciliationDifference, ReconciliationReport } from "../domain/ReconciliationReport.js"
import type { Transaction } from "../domain/Transaction.js"
import { Ids } from "../ports/Ids.js"
import type { HistoryPage } from "../ports/Ledger.js"
import { Ledger } from "../ports/Ledger.js"
import type { ProviderRecord, ProviderWindow } from "../ports/PaymentProvider.js"
import { PaymentProvider } from "../ports/PaymentProvider.js"
import { ProjectStore } from "../ports/ProjectStore.js"
import { ReconciliationStore } from "../ports/ReconciliationStore.js"

export class InvalidReconciliationWindow
  extends Schema.TaggedError<InvalidReconciliationWindow>()("InvalidReconciliationWindow", {
    code: Schema.Literal("invalid_window"),
    message: Schema.String
  })
{}

/**
 * How far before the window the provider's payments are listed and the ledger is read: a payment
 * made just before midnight is granted just after it, and its grant must not look like an orphan.
 */
export const RECONCILIATION_LOOKBACK_MS = 86_400_000

const HISTORY_PAGE = 500

/** What a run compares: the provider's records and the ledger's transactions, as read. */
export interface ReconciliationInput {
  readonly window: ProviderWindow
  /** Payments from `window.from - RECONCILIATION_LOOKBACK_MS` to `window.to`. */
  readonly payments: ReadonlyArray<ProviderRecord>
  readonly refunds: ReadonlyArray<ProviderRecord>
  readonly disputes: ReadonlyArray<ProviderRecord>
  /** Every transaction of the projects concerned since the lookback began, in any order. */
  readonly transactions: ReadonlyArray<Transaction>
}

const PURCHASE = "purchase:"

/** The payment a grant says it is for: its `purchase:<payment>` key, or the reason a purchase grant records. */
const tracedPayment = (tx: Transaction): string | undefined => {
  if (tx.kind !== "grant") return undefined
  if (tx.idempotencyKey.startsWith(PURCHASE)) return tx.idempotencyKey.slice(PURCHASE.length)
  const match = tx.reason === undefined ? null : /^payment (\S+)$/.exec(tx.reason)
  return match === null ? undefined : match[1]
}

/** Credit the transaction put into (or took out of, for a withdrawal) a wallet. */
const walletCredits = (tx: Transaction): number =>
  Math.abs(tx.entries.reduce((sum, e) => e.account.startsWith("wallet:") ? sum + e.amount : sum, 0))

/** `floor(credits × part / whole)`, as the event translators compute a refund's or dispute's share. */
const share = (credits: number, part: number, whole: number): number =>
  whole <= 0 ? 0 : Number((BigInt(credits) * BigInt(Math.min(part, whole))) / BigInt(whole))

const sum = (numbers: ReadonlyArray<number>) => numbers.reduce((a, b) => a + b, 0)

const refundFailed = (record: ProviderRecord) => record.status === "failed" || record.status === "canceled"

const earlier = (a: ProviderRecord, b: ProviderRecord) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * Every difference between what the provider recorded in `window` and what the ledger did about
 * it, found through the ledger's idempotency keys (`purchase:<payment>`, `reversal:refund:<refund>`,
 * `reversal:refund:<charge>:<cumulative amount>`, `reversal:dispute:<dispute>`). Pure: it reads
 * what it is given and changes nothing.
 */
export const reconcile = (input: ReconciliationInput): ReadonlyArray<ReconciliationDifference> => {
  const { from, to } = input.window
  const differences: Array<ReconciliationDifference> = []
  const difference = (fields: ConstructorParameters<typeof ReconciliationDifference>[0]) =>
    differences.push(new ReconciliationDifference(fields))

  const grantsOf = new Map<string, Array<Transaction>>()
  const byKey = new Map<string, Transaction>()
  for (const tx of input.transactions) {
    byKey.set(tx.idempotencyKey, tx)
    const payment = tracedPayment(tx)
    if (payment !== undefined) grantsOf.set(payment, [...(grantsOf.get(payment) ?? []), tx])
  }
  // a payment may be listed more than once (Stripe lists charges: a failed attempt, then the one that
  // succeeded, both under one payment intent); the succeeded record is the payment
  const paymentsById = new Map<string, ProviderRecord>()
  for (const record of input.payments) {
    const known = paymentsById.get(record.paymentId)
    if (known === undefined || (known.status !== "succeeded" && record.status === "succeeded")) {
      paymentsById.set(record.paymentId, record)
    }
  }

  for (const payment of paymentsById.values()) {
    if (payment.createdAt < from || payment.createdAt >= to || payment.status !== "succeeded") continue
    const id = payment.paymentId
    if (payment.projectId === undefined || payment.credits === undefined) {
      difference({
        kind: "unknown_payment",
        providerObjectId: id,
        projectId: payment.projectId,
        detail: `payment ${id} does not say ${
          payment.projectId === undefined ? "which project it is for" : "how many credits it bought"
        }; it cannot be reconciled`
      })
      continue
    }
    const base = { providerObjectId: id, projectId: payment.projectId, expectedCredits: payment.credits }
    const grants = grantsOf.get(id) ?? []
    const keyed = grants.find((tx) => tx.idempotencyKey === `${PURCHASE}${id}`)
    const granted = sum(grants.map(walletCredits)) as Credits
    if (grants.length > 1) {
      difference({
        ...base,
        kind: "double_grant",
        ledgerCredits: granted,
        detail: `${grants.length} grants name payment ${id}: ${grants.map((tx) => tx.idempotencyKey).join(", ")}`
      })
    }
    if (keyed === undefined) {
      const other = grants[0]
      difference({
        ...base,
        kind: "missing_grant",
        ledgerCredits: granted,
        detail: other === undefined
          ? `payment ${id} succeeded; no grant under ${PURCHASE}${id}`
          : `payment ${id} succeeded; no grant under ${PURCHASE}${id} (it is named by ${other.idempotencyKey})`
      })
    } else if (walletCredits(keyed) !== payment.credits) {
      difference({
        ...base,
        kind: "amount_mismatch",
        ledgerCredits: walletCredits(keyed) as Credits,
        detail: `payment ${id} bought ${payment.credits} credits; ${PURCHASE}${id} granted ${walletCredits(keyed)}`
      })
    }
  }

  const reversed = (
    record: ProviderRecord,
    kind: "refund" | "dispute",
    expected: number | undefined,
    found: boolean
  ) => {
    if (found) return
    difference({
      kind: "missing_clawback",
      providerObjectId: record.id,
      projectId: record.projectId,
      expectedCredits: expected as Credits | undefined,
      ledgerCredits: 0 as Credits,
      detail: `${kind} ${record.id} of payment ${record.paymentId}: no reversal under reversal:${kind}:${record.id}` +
        (kind === "refund" ? " nor a cumulative refund reversal covering it" : "")
    })
  }

  /** The reversal's share of the payment's credits; none when the payment is not listed. */
  const expectedShare = (record: ProviderRecord): number | undefined => {
    const payment = paymentsById.get(record.paymentId)
    return payment === undefined || record.credits === undefined
      ? undefined
      : share(record.credits, record.amountCents, payment.amountCents)
  }

  const refunds = input.refunds.filter((r) => !refundFailed(r)).sort(earlier)
  for (const refund of refunds) {
    if (refund.createdAt < from || refund.createdAt >= to) continue
    // a payment without metadata is never granted, so there is nothing to take back
    if (refund.projectId === undefined || refund.credits === undefined) continue
    const expected = expectedShare(refund)
    if (expected === 0) continue
    // without the charge's refund list, a refund is reversed as a slice up to the charge's cumulative
    // refunded amount: covered once a slice reaches this refund's cumulative amount
    const cumulative = sum(
      refunds.filter((r) => r.paymentId === refund.paymentId && earlier(r, refund) <= 0).map((r) => r.amountCents)
    )
    const found = byKey.has(`reversal:refund:${refund.id}`) || input.transactions.some((tx) => {
      const slice = /^reversal:refund:[^:]+:(\d+)$/.exec(tx.idempotencyKey)
      return tx.kind === "withdraw" && slice !== null && Number(slice[1]) >= cumulative &&
        (tx.reason ?? "").endsWith(`(${refund.paymentId})`)
    })
    reversed(refund, "refund", expected, found)
  }

  for (const dispute of input.disputes) {
    if (dispute.createdAt < from || dispute.createdAt >= to) continue
    if (dispute.projectId === undefined || dispute.credits === undefined) continue
    const expected = expectedShare(dispute)
    if (expected === 0) continue
    reversed(dispute, "dispute", expected, byKey.has(`reversal:dispute:${dispute.id}`))
  }

  for (const [paymentId, grants] of grantsOf) {
    const inWindow = grants.filter((tx) => tx.createdAt >= from && tx.createdAt < to)
    if (inWindow.length === 0) continue
    const listed = paymentsById.get(paymentId)
    if (listed !== undefined && listed.status === "succeeded") continue
    difference({
      kind: "orphan_grant",
      providerObjectId: paymentId,
      projectId: inWindow[0]!.projectId,
      ledgerCredits: sum(inWindow.map(walletCredits)) as Credits,
      detail: `${inWindow.map((tx) => tx.idempotencyKey).join(", ")} granted for payment ${paymentId}, which ` +
        (listed === undefined ? "the provider does not list" : `the provider lists as ${listed.status}`)
    })
  }
  return differences
}

/** Why a run could not compare at all: the provider cannot list, or a store is down. */
class RunFailed extends Schema.TaggedError<RunFailed>()("RunFailed", { message: Schema.String }) {}

/**
 * Reconciliation: compares what the payment provider says was paid, refunded and disputed with
 * what the ledger granted and took back, and stores a report of every difference. It never writes
 * to the ledger: a difference is for an operator to look at, not for a program to fix.
 */
export class Reconciliation extends Effect.Service<Reconciliation>()("@tollgate/core/Reconciliation", {
  effect: Effect.gen(function*() {
    const provider = yield* PaymentProvider
    const ledger = yield* Ledger
    const projects = yield* ProjectStore
    const store = yield* ReconciliationStore
    const ids = yield* Ids

    const failed = (what: string) => (e: { readonly message: string }) =>
      new RunFailed({ message: `${what}: ${e.message}` })

    const historySince = Effect.fn("Reconciliation.historySince")(function*(projectId: ProjectId, since: number) {
      const read: Array<Transaction> = []
      let cursor: string | undefined = undefined
      for (;;) {
        const page: HistoryPage = yield* ledger.history(projectId, { cursor, limit: HISTORY_PAGE })
        for (const tx of page.transactions) read.push(tx)
        const oldest = page.transactions[page.transactions.length - 1]
        if (page.nextCursor === undefined || oldest === undefined || oldest.createdAt < since) return read
        cursor = page.nextCursor
      }
    })

    const gather = Effect.fn("Reconciliation.gather")(function*(window: ProviderWindow) {
      const { listDisputes, listPayments, listRefunds } = provider
      if (listPayments === undefined || listRefunds === undefined || listDisputes === undefined) {
        return yield* new RunFailed({
          message: `the ${provider.name} payment provider cannot list its payments, refunds and disputes, ` +
            "so there is nothing to reconcile against"
        })
      }
      const since = Math.max(0, window.from - RECONCILIATION_LOOKBACK_MS)
      const listed = yield* Effect.all({
        payments: listPayments({ from: since as EpochMillis, to: window.to }),
        refunds: listRefunds(window),
        disputes: listDisputes(window)
      }).pipe(Effect.mapError(failed("the payment provider could not list")))
      const known = yield* projects.list.pipe(Effect.mapError(failed("the project store is unavailable")))
      const projectIds = new Set<ProjectId>(known.map((p) => p.id))
      for (const record of [...listed.payments, ...listed.refunds, ...listed.disputes]) {
        if (record.projectId !== undefined) projectIds.add(record.projectId)
      }
      const transactions = yield* Effect.forEach(projectIds, (id) => historySince(id, since)).pipe(
        Effect.map((pages) => pages.flat()),
        Effect.mapError(failed("the ledger is unavailable"))
      )
      return { window, ...listed, transactions } satisfies ReconciliationInput
    })

    /** Runs one reconciliation of `[from, to)` now and stores its report, whatever its outcome. */
    const run = Effect.fn("Reconciliation.run")(function*(window: { readonly from: number; readonly to: number }) {
      const { from, to } = window
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from >= to) {
        return yield* new InvalidReconciliationWindow({
          code: "invalid_window",
          message: `the window must be whole milliseconds with 0 <= from < to (from ${from}, to ${to})`
        })
      }
      const id = (yield* ids.next("rec")) as ReconciliationId
      const startedAt = yield* Clock.currentTimeMillis
      const gathered = yield* Effect.either(gather({ from: from as EpochMillis, to: to as EpochMillis }))
      const finishedAt = yield* Clock.currentTimeMillis
      const common = { id, from, to, startedAt, finishedAt }
      const inWindow = (records: ReadonlyArray<ProviderRecord>) =>
        records.filter((r) => r.createdAt >= from && r.createdAt < to).length
      const report = gathered._tag === "Left"
        ? new ReconciliationReport({
          ...common,
          status: "failed",
          counts: { payments: 0, refunds: 0, disputes: 0, differences: 0 },
          detail: gathered.left.message,
          differences: []
        })
        : (() => {
          const differences = reconcile(gathered.right)
          return new ReconciliationReport({
            ...common,
            status: differences.length === 0 ? "clean" : "differences",
            counts: {
              payments: new Set(
                gathered.right.payments.filter((p) =>
                  p.status === "succeeded" && p.createdAt >= from && p.createdAt < to
                )
                  .map((p) => p.paymentId)
              ).size,
              refunds: inWindow(gathered.right.refunds),
              disputes: inWindow(gathered.right.disputes),
              differences: differences.length
            },
            differences
          })
        })()
      if (report.status === "failed") {
        yield* Effect.logError("reconciliation failed", { id, from, to, detail: report.detail })
      } else if (report.status === "differences") {
        yield* Effect.logWarning("reconciliation found differences", { id, from, to, ...report.counts })
      }
      yield* store.save(report)
      return report
    })

    return { run, get: store.get, list: store.list } as const
  })
}) {}
