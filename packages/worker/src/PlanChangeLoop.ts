import { Subscriptions } from "@tollgate/core"
import { Config, Context, Duration, Effect, Layer } from "effect"
import { everyInterval } from "./Loop.js"
import { millis } from "./WorkerConfig.js"

export interface PlanChangeLoopOptions {
  /** How often due plan changes (downgrades and cancellations at their period's end) are applied. */
  readonly interval: Duration.Duration
  readonly batchLimit: number
}

export const defaultPlanChangeLoopOptions: PlanChangeLoopOptions = {
  interval: Duration.seconds(60),
  batchLimit: 100
}

/** `WORKER_PLAN_CHANGE_SWEEP_MS` (default 60000). */
export const PlanChangeLoopEnvConfig: Config.Config<PlanChangeLoopOptions> = Config.all({
  interval: millis("PLAN_CHANGE_SWEEP_MS", defaultPlanChangeLoopOptions.interval),
  batchLimit: Config.succeed(defaultPlanChangeLoopOptions.batchLimit)
}).pipe(Config.nested("WORKER"))

export class PlanChangeLoopConfig extends Context.Reference<PlanChangeLoopConfig>()(
  "@tollgate/worker/PlanChangeLoopConfig",
  { defaultValue: (): PlanChangeLoopOptions => defaultPlanChangeLoopOptions }
) {
  static readonly layer = (options: Partial<PlanChangeLoopOptions>): Layer.Layer<PlanChangeLoopConfig> =>
    Layer.succeed(PlanChangeLoopConfig, { ...defaultPlanChangeLoopOptions, ...options })

  static readonly fromEnv = Layer.effect(PlanChangeLoopConfig, PlanChangeLoopEnvConfig)
}

/** Applies the plan changes whose time has come; how many projects moved. */
export const sweepPlanChanges = Effect.gen(function*() {
  const subscriptions = yield* Subscriptions
  const { batchLimit } = yield* PlanChangeLoopConfig
  const moved = yield* subscriptions.applyDue({ limit: batchLimit })
  if (moved > 0) yield* Effect.logInfo(`applied ${moved} due plan changes`)
  return moved
}).pipe(Effect.withSpan("Worker.sweepPlanChanges"))

/**
 * The due plan change loop, forked for the life of the layer. Several workers may run it: moving a
 * project to the plan it is already on changes nothing, and a pending change is cleared only if it
 * is still the one applied.
 */
export const PlanChangeLoopLive: Layer.Layer<never, never, Subscriptions> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const options = yield* PlanChangeLoopConfig
    yield* Effect.forkScoped(everyInterval("sweep_plan_changes", sweepPlanChanges, options.interval))
  })
)
