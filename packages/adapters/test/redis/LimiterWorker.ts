/**
 * A second (and third) gateway for RedisConcurrency.test.ts: its own process, its own client.
 * Reads one JSON command per line on stdin and answers one JSON line on stdout:
 *
 *   {"limits":[{key,limit,windowMs}],"callers":500,"now":…}  →  {"admitted":n,"refused":n,"degraded":n}
 *
 * Prints {"ready":true} once connected. Exits when stdin closes. REDIS_URL and PREFIX come from
 * the environment.
 */
import { RateLimitPolicy } from "@tollgate/core"
import { Effect, Redacted } from "effect"
import { createInterface } from "node:readline"
import { makeRedisClient } from "../../src/redis/RedisConnection.js"
import { makeRedisRateLimiter } from "../../src/redis/RedisRateLimiter.js"

interface Command {
  readonly limits: ReadonlyArray<{ readonly key: string; readonly limit: number; readonly windowMs: number }>
  readonly callers: number
  readonly now: number
}

const main = Effect.gen(function*() {
  const client = yield* makeRedisClient(Redacted.make(process.env.REDIS_URL!), { name: "limiter-worker" })
  const { limiter } = yield* makeRedisRateLimiter({
    client,
    keyPrefix: process.env.PREFIX!,
    timeoutMs: 10_000,
    expirySlackMs: 600_000
  })
  const run = (command: Command) =>
    Effect.gen(function*() {
      const limits = command.limits.map((l, i) => ({
        key: l.key,
        policy: new RateLimitPolicy({ name: `l${i}`, scope: "key", limit: l.limit, windowMs: l.windowMs }),
        cost: 1
      }))
      const results = yield* Effect.all(
        Array.from({ length: command.callers }, () => Effect.either(limiter.consume(limits, command.now))),
        { concurrency: "unbounded" }
      )
      const admitted = results.filter((r) => r._tag === "Right" && r.right.allowed).length
      const degraded = results.filter((r) => r._tag === "Left").length
      return { admitted, refused: command.callers - admitted - degraded, degraded }
    })
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
  yield* Effect.promise(async () => {
    for await (const line of createInterface({ input: process.stdin })) {
      const answer = await Effect.runPromise(run(JSON.parse(line) as Command))
      process.stdout.write(`${JSON.stringify(answer)}\n`)
    }
  })
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
