import type { EventOutcome } from "@tollgate/core"
import { Billing, Ledger } from "@tollgate/core"
import { Clock, Duration, Effect, Layer, Metric } from "effect"
import { EventTranslator } from "./EventTranslator.js"
import { everyInterval } from "./Loop.js"
import { WorkerConfig } from "./WorkerConfig.js"
import { eventsDead, eventsProcessed, grantsExpired, holdsExpired, replaysPruned } from "./WorkerMetrics.js"

/** Expires the pending holds past their deadline now, returning their credit to the wallets. */
export const sweepHolds = Effect.gen(function*() {
  const ledger = yield* Ledger
  const result = yield* ledger.expireHolds(yield* Clock.currentTimeMillis)
  yield* Metric.incrementBy(holdsExpired, result.count)
  yield* Effect.logDebug(`expired ${result.count} holds (${result.amount} credits)`)
  return result
}).pipe(Effect.withSpan("Worker.sweepHolds"))

/** Expires the lots past their end now. */
export const sweepGrants = Effect.gen(function*() {
  const ledger = yield* Ledger
  const result = yield* ledger.expireGrants(yield* Clock.currentTimeMillis)
  yield* Metric.incrementBy(grantsExpired, result.count)
  yield* Effect.logDebug(`expired ${result.count} lots (${result.amount} credits)`)
  return result
}).pipe(Effect.withSpan("Worker.sweepGrants"))

/** Forgets the ledger's replay records of per-call writes older than the retention. */
export const sweepReplays = Effect.gen(function*() {
  const ledger = yield* Ledger
  const { replayRetention } = yield* WorkerConfig
  const now = yield* Clock.currentTimeMillis
  const count = yield* ledger.pruneReplays(now - Duration.toMillis(replayRetention))
  yield* Metric.incrementBy(replaysPruned, count)
  yield* Effect.logDebug(`forgot ${count} replay records`)
  return count
}).pipe(Effect.withSpan("Worker.sweepReplays"))

/** Claims one batch of pending billing events under a lease and applies them; their outcomes. */
export const processInbox = Effect.gen(function*() {
  const billing = yield* Billing
  const { translate } = yield* EventTranslator
  const { batchLimit, leaseMs, maxAttempts } = yield* WorkerConfig
  const outcomes = yield* billing.processPending({ limit: batchLimit, leaseMs, translate, maxAttempts })
  const counts = new Map<EventOutcome, number>()
  for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1)
  for (const [outcome, n] of counts) {
    yield* Metric.incrementBy(Metric.tagged(eventsProcessed, "outcome", outcome), n)
  }
  yield* Metric.incrementBy(eventsDead, counts.get("dead") ?? 0)
  if (outcomes.length > 0) {
    yield* Effect.logDebug(`processed ${outcomes.length} billing events`, Object.fromEntries(counts))
  }
  return outcomes
}).pipe(Effect.withSpan("Worker.processInbox"))

/**
 * The worker process's loops: hold expiry, lot expiry, replay pruning and billing-event processing, each forked
 * for the life of the layer. Several workers may run over one store: expiries are idempotent and
 * the inbox hands each event to one claimant at a time. Intervals come from `WorkerConfig`.
 */
export const WorkerLive: Layer.Layer<never, never, Ledger | Billing | EventTranslator> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* WorkerConfig
    // a full batch means more may be waiting: take the next one at once instead of after the interval
    const drainInbox = processInbox.pipe(
      Effect.repeat({ while: (outcomes) => outcomes.length >= config.batchLimit })
    )
    yield* Effect.forkScoped(everyInterval("sweep_holds", sweepHolds, config.holdSweepInterval))
    yield* Effect.forkScoped(everyInterval("sweep_grants", sweepGrants, config.grantSweepInterval))
    yield* Effect.forkScoped(everyInterval("sweep_replays", sweepReplays, config.replaySweepInterval))
    yield* Effect.forkScoped(everyInterval("process_inbox", drainInbox, config.inboxPollInterval))
    yield* Effect.logInfo("worker started", {
      holdSweepInterval: Duration.format(config.holdSweepInterval),
      grantSweepInterval: Duration.format(config.grantSweepInterval),
      inboxPollInterval: Duration.format(config.inboxPollInterval),
      replaySweepInterval: Duration.format(config.replaySweepInterval),
      replayRetention: Duration.format(config.replayRetention),
      batchLimit: config.batchLimit,
      leaseMs: config.leaseMs,
      maxAttempts: config.maxAttempts
    })
  })
)
