import { AutoTopUp } from "@tollgate/core"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { everyInterval } from "./Loop.js"
import { OutboxDeliveryLive } from "./OutboxDelivery.js"

export interface AutoTopUpLoopOptions {
  /** How often attempts left in flight are looked for. */
  readonly interval: Duration.Duration
  /** An attempt in flight longer than this is taken to have lost its worker, and is replayed. */
  readonly stalledAfter: Duration.Duration
  readonly batchLimit: number
}

export const defaultAutoTopUpLoopOptions: AutoTopUpLoopOptions = {
  interval: Duration.seconds(30),
  stalledAfter: Duration.minutes(2),
  batchLimit: 100
}

export class AutoTopUpLoopConfig extends Context.Reference<AutoTopUpLoopConfig>()(
  "@tollgate/worker/AutoTopUpLoopConfig",
  { defaultValue: (): AutoTopUpLoopOptions => defaultAutoTopUpLoopOptions }
) {
  static readonly layer = (options: Partial<AutoTopUpLoopOptions>): Layer.Layer<AutoTopUpLoopConfig> =>
    Layer.succeed(AutoTopUpLoopConfig, { ...defaultAutoTopUpLoopOptions, ...options })
}

/**
 * Replays the off-session charges a crash left in flight (recorded, but the provider's answer
 * never recorded), under their original idempotency keys: the provider answers as the first
 * time, so nothing is charged twice. Returns how many it found.
 */
export const resumeStalledTopUps = Effect.gen(function*() {
  const autoTopUp = yield* AutoTopUp
  const options = yield* AutoTopUpLoopConfig
  const now = yield* Clock.currentTimeMillis
  return yield* autoTopUp.resumeStalled({
    startedBefore: now - Duration.toMillis(options.stalledAfter),
    limit: options.batchLimit
  })
}).pipe(Effect.withSpan("Worker.resumeStalledTopUps"))

/** The stalled top-up loop, forked for the life of the layer. */
export const AutoTopUpLoopLive: Layer.Layer<never, never, AutoTopUp> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const options = yield* AutoTopUpLoopConfig
    yield* Effect.forkScoped(everyInterval("resume_top_ups", resumeStalledTopUps, options.interval))
  })
)

/**
 * Notifications and auto top-ups beside `WorkerLive`: outbox delivery (which runs the auto top-up
 * for `balance.low`) and the stalled-charge loop. Needs the `AutoTopUp` use case and its ports.
 */
export const AutoTopUpWorkerLive = Layer.merge(OutboxDeliveryLive, AutoTopUpLoopLive)
