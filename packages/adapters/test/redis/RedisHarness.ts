/**
 * Redis for the Redis test files.
 *
 * The shared server is `REDIS_URL`, else redis://127.0.0.1:6379. If it does not answer PING
 * within 2 s, `redisAvailable` is false and the file warns (skip with
 * `describe.skipIf(!redisAvailable)`); with `CI=true` the file fails instead. Each test file
 * works under a key prefix of its own (`tollgate-test:<label>:<random>:`) and deletes every key
 * under it after its last test.
 *
 * Tests that stop Redis start a server of their own (`startRedisServer`) on a spare port, and
 * tests of several gateways run child processes (`spawnWorker`); both are killed after the
 * file at the latest, and on exit of the test process.
 */
import { afterAll } from "@effect/vitest"
import type { LimitRequest, RateLimitDecision } from "@tollgate/core"
import { RateLimitAlgorithm } from "@tollgate/core"
import { Effect, Layer } from "effect"
import { Redis } from "ioredis"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { redisOptions } from "../../src/redis/RedisConnection.js"
import type { RedisRateLimiterOptions } from "../../src/redis/RedisRateLimiter.js"
import { redisRateLimiterLayer } from "../../src/redis/RedisRateLimiter.js"
import type { Worker } from "../support/ChildProcesses.js"
import { spawnScript, track, waitExit } from "../support/ChildProcesses.js"
import { withoutPassword } from "../support/Probes.js"

export type { Worker } from "../support/ChildProcesses.js"

export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

const ping = async (url: string, ms: number): Promise<boolean> => {
  const client = new Redis(url, { ...redisOptions({ connectTimeoutMs: ms }), retryStrategy: () => null })
  client.on("error", () => undefined)
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))
    ])
    return true
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/** Whether the Redis server answered PING within 2 s when this module loaded. */
export const redisAvailable: boolean = await ping(redisUrl, 2_000)

if (!redisAvailable) {
  const message = `Redis at ${withoutPassword(redisUrl, "REDIS_URL")} is unreachable`
  if (process.env.CI === "true") throw new Error(`${message}, and CI=true: the Redis suites must run on CI.`)
  console.warn(`${message}: skipping the Redis suites of this file (set REDIS_URL to run them).`)
}

/** A connected client with the adapters' options; the caller closes it. */
export const connect = async (url: string, name = "tollgate-test"): Promise<Redis> => {
  const client = new Redis(url, redisOptions({ name }))
  client.on("error", () => undefined)
  await client.connect()
  return client
}

/** Deletes every key under `prefix` (SCAN, then UNLINK in batches). */
export const deleteKeys = async (client: Redis, prefix: string): Promise<number> => {
  let cursor = "0"
  let deleted = 0
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000)
    cursor = next
    if (keys.length > 0) deleted += await client.unlink(...keys)
  } while (cursor !== "0")
  return deleted
}

export interface TestRedis {
  /** This file's prefix; every key a test writes must start with it. */
  readonly prefix: string
  /** The file's client on the shared server, connected on first use and closed after the file. */
  readonly client: () => Promise<Redis>
  /** {@link client} as an Effect. */
  readonly clientEffect: Effect.Effect<Redis>
}

/** A prefix and a client for one test file; registers `afterAll` to delete its keys and disconnect. */
export const testRedis = (label: string): TestRedis => {
  const prefix = `tollgate-test:${label}:${randomUUID().slice(0, 8)}:`
  let client: Promise<Redis> | undefined
  const get = () => (client ??= connect(redisUrl))
  afterAll(async () => {
    if (client === undefined) return
    const c = await client
    await deleteKeys(c, prefix)
    await c.quit()
  })
  return { prefix, client: get, clientEffect: Effect.promise(get) }
}

/**
 * Tests run on explicit times far from the server's clock, so counters are kept long past their
 * windows (10 min of slack): what a key holds must not vanish in the server's time mid-test.
 */
export const TEST_SLACK_MS = 600_000

/** A RedisRateLimiter over the file's client and prefix (generous timeout: tests are not about speed). */
export const limiterLayer = (redis: TestRedis, options: Partial<RedisRateLimiterOptions> = {}) =>
  Layer.unwrapEffect(
    Effect.map(redis.clientEffect, (client) =>
      redisRateLimiterLayer({
        client,
        keyPrefix: redis.prefix,
        expirySlackMs: TEST_SLACK_MS,
        timeoutMs: 2_000,
        ...options
      }))
  )

/** What the in-memory limiter keeps per key, decided by `RateLimitAlgorithm.decide` itself. */
export const model = () => {
  const counters = new Map<string, { state: RateLimitAlgorithm.WindowState; expiresAt: number }>()
  return (limits: ReadonlyArray<LimitRequest>, now: number): RateLimitDecision => {
    const decision = RateLimitAlgorithm.decide(
      limits.map((l) => {
        const stored = counters.get(l.key)
        return {
          policy: l.policy,
          cost: l.cost,
          state: stored === undefined || stored.expiresAt <= now ? undefined : stored.state
        }
      }),
      now
    )
    if (decision.allowed) {
      decision.states.forEach((state, i) =>
        counters.set(limits[i]!.key, { state, expiresAt: (state.window + 2) * limits[i]!.policy.windowMs })
      )
    }
    return { allowed: decision.allowed, outcomes: decision.outcomes }
  }
}

/** A port nothing listens on right now. */
export const sparePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly process: ChildProcess
  /** SIGKILL, and wait until it is gone. */
  readonly kill: () => Promise<void>
}

/** `redis-server` on `port`, without persistence, started and answering PING (within 5 s). */
export const startRedisServer = async (port: number): Promise<RedisServer> => {
  const child = track(
    spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
  )
  const url = `redis://127.0.0.1:${port}`
  const deadline = Date.now() + 5_000
  while (!(await ping(url, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`redis-server did not start on port ${port}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    port,
    url,
    process: child,
    kill: async () => {
      child.kill("SIGKILL")
      await waitExit(child)
    }
  }
}

const here = dirname(fileURLToPath(import.meta.url))

/**
 * Runs `script` (a file beside this one) under tsx as a separate process. It is killed after
 * `lifetimeMs` whatever happens, and after the test file at the latest.
 */
export const spawnWorker = (script: string, env: Record<string, string>, lifetimeMs = 30_000): Worker =>
  spawnScript(join(here, script), env, lifetimeMs)
