import { UrlProtocol } from "@tollgate/core"
import { Config, Redacted } from "effect"

const isRedisUrl = UrlProtocol.hasProtocol("redis:", "rediss:")

/**
 * `REDIS_URL` (secret: it may carry a password), `REDIS_KEY_PREFIX` (default `tollgate:`, put
 * before every key and channel so several deployments can share a server) and
 * `REDIS_TIMEOUT_MS` (default 50: the longest the gateway waits for any one Redis call).
 *
 * The URL is read as a string, validated and then redacted, not read with `Config.redacted`,
 * which would also replace the validation's message with "<redacted>" (the message never
 * contains the value). The prefix may not contain braces: a key's Redis Cluster hash tag must be the `{project}`
 * that `LimitKeys` puts in it, not something in the prefix.
 */
export const RedisConfig = Config.all({
  url: Config.string("URL").pipe(
    Config.validate({ message: "Expected a redis:// or rediss:// URL", validation: isRedisUrl }),
    Config.map(Redacted.make)
  ),
  keyPrefix: Config.string("KEY_PREFIX").pipe(
    Config.validate({
      message: "Expected no braces ({ }) and at most 64 characters",
      validation: (prefix) => !/[{}]/.test(prefix) && prefix.length <= 64
    }),
    Config.withDefault("tollgate:")
  ),
  timeoutMs: Config.integer("TIMEOUT_MS").pipe(
    Config.validate({ message: "Expected an integer from 1 to 60000", validation: (n) => n >= 1 && n <= 60_000 }),
    Config.withDefault(50)
  )
}).pipe(Config.nested("REDIS"))

export type RedisConfig = Config.Config.Success<typeof RedisConfig>
