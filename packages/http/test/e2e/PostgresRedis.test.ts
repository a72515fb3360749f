import { RedisConnectionLive } from "@tollgate/adapters/redis/index"
import { ConfigProvider, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { redisAvailable, redisUrl, testRedis } from "../../../adapters/test/redis/RedisHarness.js"
import { postgresAvailable, postgresTestClient } from "../../../adapters/test/support/Databases.js"
import { postgresRedisStack } from "../../src/Stack.js"
import { gatewayE2E } from "./GatewayE2E.js"

const redis = testRedis(`e2e-${randomUUID().slice(0, 8)}`)

const redisConnection = RedisConnectionLive.pipe(
  Layer.provide(
    Layer.setConfigProvider(
      ConfigProvider.fromMap(new Map([["REDIS_URL", redisUrl], ["REDIS_KEY_PREFIX", redis.prefix]]), { pathDelim: "_" })
    )
  )
)

gatewayE2E({
  name: "PostgreSQL and Redis",
  skip: !postgresAvailable || !redisAvailable,
  layer: () => postgresRedisStack(postgresTestClient, redisConnection)
})
