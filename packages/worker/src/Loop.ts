import type { Duration } from "effect"
import { Cause, Duration as D, Effect, Metric, Schedule } from "effect"
import { stepFailures } from "./WorkerMetrics.js"

/**
 * Runs `effect` now and then every `interval` for as long as the fiber lives. A failed step (an
 * outage) or even a defect is logged and counted, and the step runs again at the next interval:
 * a forked loop that died would stop its work without anyone noticing.
 */
export const everyInterval = <A, E, R>(step: string, effect: Effect.Effect<A, E, R>, interval: Duration.Duration) =>
  effect.pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.gen(function*() {
        yield* Metric.increment(Metric.tagged(stepFailures, "step", step))
        yield* Effect.logError(`worker step ${step} failed; next try in ${D.format(interval)}`, cause)
      })
    ),
    Effect.repeat(Schedule.spaced(interval)),
    Effect.annotateLogs("worker.step", step)
  )
