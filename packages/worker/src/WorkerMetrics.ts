import { Metric } from "effect"

/** Pending holds the worker expired (their credit went back to the wallets). */
export const holdsExpired = Metric.counter("tollgate_worker_holds_expired_total", {
  description: "Pending holds expired by the worker past their deadline",
  incremental: true
})

/** Lots the worker expired (what was left of them moved to the expired-credit account). */
export const grantsExpired = Metric.counter("tollgate_worker_grants_expired_total", {
  description: "Credit lots expired by the worker past their end",
  incremental: true
})

/** Replay records of holds, captures and voids the worker pruned past their retention. */
export const replaysPruned = Metric.counter("tollgate_worker_replays_pruned_total", {
  description: "Ledger replay records of per-call writes forgotten past their retention",
  incremental: true
})

/** Billing events the worker handled, tagged `outcome` (applied, ignored, duplicate, failed, refused, stale, dead). */
export const eventsProcessed = Metric.counter("tollgate_worker_events_total", {
  description: "Billing events processed by the worker, by outcome",
  incremental: true
})

/** Loop steps that failed (an outage, most often) and will run again, tagged `step`. */
export const stepFailures = Metric.counter("tollgate_worker_step_failures_total", {
  description: "Worker steps that failed and will be retried at the next interval, by step",
  incremental: true
})

/** Billing events parked as dead after their last allowed attempt: each one waits for an operator. */
export const eventsDead = Metric.counter("tollgate_worker_events_dead_total", {
  description: "Billing events parked as dead after failing every allowed attempt",
  incremental: true
})
