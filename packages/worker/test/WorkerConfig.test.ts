import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer } from "effect"
import { OutboxDeliveryConfig } from "../src/OutboxDelivery.js"
import { defaultWorkerOptions, WorkerConfig } from "../src/WorkerConfig.js"

const fromEnv = (env: Record<string, string>) =>
  WorkerConfig.pipe(
    Effect.provide(
      WorkerConfig.fromEnv.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" })))
      )
    )
  )

describe("WorkerConfig", () => {
  it.effect("defaults without a layer, and without variables", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* WorkerConfig, defaultWorkerOptions)
      assert.deepStrictEqual(yield* fromEnv({}), defaultWorkerOptions)
    }))

  it.effect("reads WORKER_* variables; a bad one fails naming it", () =>
    Effect.gen(function*() {
      const options = yield* fromEnv({ WORKER_HOLD_SWEEP_MS: "250", WORKER_BATCH_LIMIT: "10" })
      assert.strictEqual(Duration.toMillis(options.holdSweepInterval), 250)
      assert.strictEqual(options.batchLimit, 10)
      assert.strictEqual(options.leaseMs, defaultWorkerOptions.leaseMs)
      assert.strictEqual(defaultWorkerOptions.maxAttempts, 10)
      assert.strictEqual((yield* fromEnv({ WORKER_INBOX_MAX_ATTEMPTS: "3" })).maxAttempts, 3)
      assert.include(
        String(yield* Effect.flip(fromEnv({ WORKER_INBOX_MAX_ATTEMPTS: "0" }))),
        "WORKER.INBOX_MAX_ATTEMPTS"
      )
      const retention = yield* fromEnv({ WORKER_REPLAY_RETENTION_HOURS: "24" })
      assert.strictEqual(Duration.toHours(retention.replayRetention), 24)
      assert.strictEqual(Duration.toHours(defaultWorkerOptions.replayRetention), 168)
      // shorter than a day could forget a lease settlement's capture while it still retries
      assert.include(
        String(yield* Effect.flip(fromEnv({ WORKER_REPLAY_RETENTION_HOURS: "23" }))),
        "WORKER.REPLAY_RETENTION_HOURS"
      )
      const error = yield* Effect.flip(fromEnv({ WORKER_LEASE_MS: "0" }))
      // Effect names a nested setting by its path: WORKER.LEASE_MS is the variable WORKER_LEASE_MS
      assert.include(String(error), "WORKER.LEASE_MS")
    }))
})

describe("OutboxDeliveryConfig priced by the configuration file", () => {
  const priced = (price: number, env: Record<string, string>) =>
    OutboxDeliveryConfig.pipe(
      Effect.provide(
        OutboxDeliveryConfig.fromEnvPricedAt(price).pipe(
          Layer.provide(
            Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))
          )
        )
      )
    )

  it.effect("an auto top-up costs what the file's top-ups cost; a different WORKER_CREDIT_PRICE_CENTS stops the start", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* priced(3, {})).creditPriceCents, 3)
      assert.strictEqual((yield* priced(3, { WORKER_CREDIT_PRICE_CENTS: "3" })).creditPriceCents, 3)
      assert.strictEqual((yield* priced(3, { WORKER_OUTBOX_MAX_ATTEMPTS: "4" })).maxAttempts, 4)
      const error = String(yield* Effect.flip(priced(3, { WORKER_CREDIT_PRICE_CENTS: "2" })))
      assert.include(error, "WORKER_CREDIT_PRICE_CENTS is 2")
      assert.include(error, "billing.creditPriceCents is 3")
    }))
})
