import { assert, describe, it } from "@effect/vitest"
import { KeyStore, RateLimiter, RateLimitPolicy } from "@tollgate/core"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { MemoryKeyStoreLive } from "../../src/memory/MemoryKeyStore.js"
import { KeyCacheLive } from "../../src/redis/CachedKeyStore.js"
import { LimiterHealth } from "../../src/redis/LimiterHealth.js"
import { RedisConfig } from "../../src/redis/RedisConfig.js"
import { RedisConnectionLive } from "../../src/redis/RedisConnection.js"
import { RedisRateLimiterLive } from "../../src/redis/RedisRateLimiter.js"
import { unique } from "../contracts/fixtures.js"
import { redisAvailable, redisUrl, testRedis } from "./RedisHarness.js"

/** The environment `env`, read as `ConfigProvider.fromEnv` reads the process's (`_` between path parts). */
const withEnv = (env: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))

const configError = (env: Record<string, string>) =>
  Effect.flip(RedisConfig).pipe(Effect.map(String), Effect.provide(withEnv(env)))

describe("RedisConfig", () => {
  it.effect("reads REDIS_URL (redacted), REDIS_KEY_PREFIX and REDIS_TIMEOUT_MS, with defaults", () =>
    Effect.gen(function*() {
      const config = yield* RedisConfig.pipe(Effect.provide(withEnv({ REDIS_URL: "redis://:secret@10.0.0.1:6380/2" })))
      assert.strictEqual(Redacted.value(config.url), "redis://:secret@10.0.0.1:6380/2")
      assert.notInclude(String(config.url), "secret")
      assert.deepStrictEqual([config.keyPrefix, config.timeoutMs], ["tollgate:", 50])
    }))

  it.effect("a missing or bad setting fails naming the variable", () =>
    Effect.gen(function*() {
      // Effect prints the path with dots: REDIS.URL is the variable REDIS_URL
      assert.match(yield* configError({}), /Missing data at REDIS\.URL/)
      const scheme = yield* configError({ REDIS_URL: "http://localhost" })
      assert.match(scheme, /REDIS\.URL/)
      assert.include(scheme, "Expected a redis:// or rediss:// URL")
      const braces = yield* configError({ REDIS_URL: "redis://localhost", REDIS_KEY_PREFIX: "{x}:" })
      assert.match(braces, /REDIS\.KEY_PREFIX/)
      const timeout = yield* configError({ REDIS_URL: "redis://localhost", REDIS_TIMEOUT_MS: "0" })
      assert.match(timeout, /REDIS\.TIMEOUT_MS/)
    }))
})

const redis = testRedis("config")

describe.skipIf(!redisAvailable)("Redis layers from the environment", () => {
  it.live("RedisRateLimiterLive and KeyCacheLive over RedisConnectionLive", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const key = `{${unique("prj")}}:key:k:plan:per_second`
      const policy = new RateLimitPolicy({ name: "per_second", scope: "key", limit: 2, windowMs: 1_000 })
      assert.isTrue((yield* limiter.consume([{ key, policy, cost: 1 }], Date.now())).allowed)
      const client = yield* redis.clientEffect
      assert.strictEqual(yield* Effect.promise(() => client.exists(`${redis.prefix}rl:${key}`)), 1)
      assert.strictEqual((yield* (yield* LimiterHealth).snapshot).decisions, 1)
      const keys = yield* KeyStore
      assert.isTrue(Option.isNone(yield* keys.findByHash("0".repeat(64))))
    }).pipe(
      Effect.provide(
        Layer.mergeAll(RedisRateLimiterLive, KeyCacheLive.pipe(Layer.provide(MemoryKeyStoreLive))).pipe(
          Layer.provide(RedisConnectionLive),
          Layer.provide(withEnv({ REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redis.prefix, REDIS_TIMEOUT_MS: "500" }))
        )
      )
    ))
})
