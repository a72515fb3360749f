import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer } from "effect"
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
      const error = yield* Effect.flip(fromEnv({ WORKER_LEASE_MS: "0" }))
      // Effect names a nested setting by its path: WORKER.LEASE_MS is the variable WORKER_LEASE_MS
      assert.include(String(error), "WORKER.LEASE_MS")
    }))
})
