import type { ReconciliationReport } from "@tollgate/core"
import { Reconciliation } from "@tollgate/core"
import { Cause, Clock, Config, Context, Duration, Effect, Layer } from "effect"

export interface ReconcileOptions {
  /**
   * The length of a reconciled period, aligned to the Unix epoch: with the default (24 h) each run
   * covers the previous UTC day.
   */
  readonly period: Duration.Duration
  /** How long after a period ends its run starts, so events delivered late are in the ledger. */
  readonly settle: Duration.Duration
}

const DAY_MS = 86_400_000

export const defaultReconcileOptions: ReconcileOptions = {
  period: Duration.millis(DAY_MS),
  settle: Duration.minutes(10)
}

/** Settling takes a tenth of a short period at most, so a run never starts after the next period ends. */
const settleFor = (periodMs: number): Duration.Duration =>
  Duration.millis(Math.min(Duration.toMillis(defaultReconcileOptions.settle), Math.floor(periodMs / 10)))

/** `WORKER_RECONCILE_MS` (default 86400000, one UTC day): the period each scheduled run reconciles. */
export const ReconcileEnvConfig: Config.Config<ReconcileOptions> = Config.integer("RECONCILE_MS").pipe(
  Config.validate({
    message: "Expected an integer from 1000 to 604800000 (milliseconds)",
    validation: (n) => n >= 1_000 && n <= 7 * DAY_MS
  }),
  Config.withDefault(DAY_MS),
  Config.map((ms): ReconcileOptions => ({ period: Duration.millis(ms), settle: settleFor(ms) })),
  Config.nested("WORKER")
)

/** How often reconciliation runs; the defaults apply unless a layer provides others. */
export class ReconcileConfig extends Context.Reference<ReconcileConfig>()("@tollgate/worker/ReconcileConfig", {
  defaultValue: (): ReconcileOptions => defaultReconcileOptions
}) {
  static readonly layer = (options: Partial<ReconcileOptions>): Layer.Layer<ReconcileConfig> =>
    Layer.succeed(ReconcileConfig, { ...defaultReconcileOptions, ...options })

  /** Read from the environment (see `ReconcileEnvConfig`); a bad value fails at start naming the variable. */
  static readonly fromEnv = Layer.effect(ReconcileConfig, ReconcileEnvConfig)
}

/** The last complete period before `now`: `[start, end)` with `end` the period boundary at or before `now`. */
export const previousPeriod = (now: number, periodMs: number) => {
  const to = Math.floor(now / periodMs) * periodMs
  return { from: Math.max(0, to - periodMs), to }
}

const logged = (report: ReconciliationReport) =>
  Effect.as(
    Effect.logInfo("reconciliation finished", {
      id: report.id,
      from: report.from,
      to: report.to,
      status: report.status,
      ...report.counts
    }),
    report
  )

/**
 * Reconciles `[from, to)` now, on demand (an operator's request, a script): the stored report. A
 * provider that cannot list, or a store that is down while comparing, gives a `failed` report, not
 * a failure; only a bad window or an unwritable report store fail.
 */
export const reconcileNow = (window: { readonly from: number; readonly to: number }) =>
  Effect.flatMap(Reconciliation, (reconciliation) => reconciliation.run(window)).pipe(
    Effect.tap(logged),
    Effect.withSpan("Worker.reconcileNow")
  )

/** Reconciles the last complete period (by default the previous UTC day). */
export const reconcilePreviousPeriod = Effect.gen(function*() {
  const { period } = yield* ReconcileConfig
  const now = yield* Clock.currentTimeMillis
  return yield* reconcileNow(previousPeriod(now, Duration.toMillis(period)))
})

/**
 * The scheduled reconciliation: shortly after each period ends (by default at 00:10 UTC), the
 * period just ended is reconciled and its report stored. Whatever goes wrong in one run (the
 * report store down, even a defect) is logged and the loop waits for the next period: it never
 * dies, and it never corrects the ledger, it only reports.
 */
export const ReconcileLive: Layer.Layer<never, never, Reconciliation> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { period, settle } = yield* ReconcileConfig
    const periodMs = Duration.toMillis(period)
    const settleMs = Duration.toMillis(settle)
    const untilNextRun = Effect.map(Clock.currentTimeMillis, (now) => {
      const next = Math.floor((now - settleMs) / periodMs) * periodMs + periodMs + settleMs
      return Duration.millis(next - now)
    })
    const once = reconcilePreviousPeriod.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          : Effect.logError("reconciliation could not run; next try after the next period", cause)
      )
    )
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.flatMap(untilNextRun, Effect.sleep), once)).pipe(
        Effect.annotateLogs("worker.step", "reconcile")
      )
    )
    yield* Effect.logInfo("reconciliation scheduled", {
      period: Duration.format(period),
      settle: Duration.format(settle)
    })
  })
)
