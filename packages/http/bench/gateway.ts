/**
 * `pnpm bench:gateway`: requests per second, p99 latency and gateway CPU per request, in one run
 * on this machine, of
 *
 *   (a) a bare Node + undici proxy (the floor: accept, forward over keep-alive, stream back),
 *   (b) Tollgate on the embedded stack (PGlite + in-process limiter),
 *   (c) Tollgate on PostgreSQL + Redis,
 *
 * each in its own process in front of the same demo upstream process, loaded by autocannon from
 * this process (keep-alive, 50 connections) with a warm-up before each measurement, in paired
 * rounds (a, b, c, a, b, c, …) so drift hits all three alike. Every Tollgate call is a full
 * metered call: key lookup, plan, entitlement, two rate limits, a hold, the proxied request, a
 * capture, a usage row. The last line is one JSON object.
 *
 * BENCH_SECONDS (default 10), BENCH_WARMUP_SECONDS (3), BENCH_ROUNDS (2), BENCH_CONNECTIONS (50).
 * PostgreSQL is DATABASE_URL (default postgres://127.0.0.1:5432/postgres, as the OS user; a
 * database of its own is created and dropped), Redis is REDIS_URL (its own key prefix, deleted after).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import autocannon from "autocannon"
import { Effect, Redacted } from "effect"
import { Redis } from "ioredis"
import type { ChildProcess } from "node:child_process"
import { fork, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { userInfo } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const seconds = Number(process.env["BENCH_SECONDS"] ?? "10")
const warmup = Number(process.env["BENCH_WARMUP_SECONDS"] ?? "3")
const rounds = Number(process.env["BENCH_ROUNDS"] ?? "2")
const connections = Number(process.env["BENCH_CONNECTIONS"] ?? "50")

const withUser = (url: string) => {
  const parsed = new URL(url)
  if (parsed.username === "") parsed.username = process.env["PGUSER"] ?? process.env["USER"] ?? userInfo().username
  return parsed
}
const adminUrl = withUser(process.env["DATABASE_URL"] ?? "postgres://127.0.0.1:5432/postgres")
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

const firstLine = (child: ChildProcess, what: string) =>
  new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 60 s`)), 60_000)
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}`)))
    createInterface({ input: child.stdout! }).once("line", (line) => {
      clearTimeout(timer)
      resolve(line)
    })
  })

const admin = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(adminUrl.toString()), maxConnections: 1 }), f))
      .pipe(Effect.provide(Reactivity.layer))
  )

interface Target {
  readonly name: "bare" | "embedded" | "postgres"
  readonly child: ChildProcess
  readonly url: string
  readonly key: string
}

const startTarget = async (
  name: Target["name"],
  upstream: string,
  env: Record<string, string> = {}
): Promise<Target> => {
  const child = fork(join(here, "target.ts"), [name, upstream], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    env: { ...process.env, ...env }
  })
  const info = JSON.parse(await firstLine(child, name)) as { url: string; key: string }
  return { name, child, ...info }
}

const cpuOf = (child: ChildProcess) =>
  new Promise<{ cpu: NodeJS.CpuUsage; rss: number }>((resolve) => {
    child.once("message", (m) => resolve(m as { cpu: NodeJS.CpuUsage; rss: number }))
    child.send("cpu")
  })

const load = (target: Target, duration: number) =>
  new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({
      url: `${target.url}/api/search?q=bench`,
      connections,
      duration,
      headers: target.key === "" ? {} : { authorization: `Bearer ${target.key}` }
    }, (error, result) => (error ? reject(error) : resolve(result)))
  })

interface Sample {
  readonly rps: number
  readonly p99: number
  readonly cpuUsPerReq: number
  readonly non2xx: number
  readonly rssMb: number
}

const measure = async (target: Target): Promise<Sample> => {
  await load(target, warmup)
  const before = await cpuOf(target.child)
  const result = await load(target, seconds)
  const after = await cpuOf(target.child)
  const cpuUs = after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system
  const requests = result.requests.total
  return {
    rps: requests / seconds,
    p99: result.latency.p99,
    cpuUsPerReq: requests === 0 ? 0 : cpuUs / requests,
    non2xx: result.non2xx + result.errors + result.timeouts,
    rssMb: after.rss / 1048576
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const round2 = (n: number) => Math.round(n * 100) / 100

const main = async () => {
  const upstreamProcess = spawn(process.execPath, ["--import", "tsx", join(here, "../src/demo/upstream.ts"), "0"], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const upstream = (await firstLine(upstreamProcess, "upstream")).trim()

  const database = `tollgate_bench_${randomUUID().replaceAll("-", "").slice(0, 12)}`
  const prefix = `tollgate-bench:${randomUUID().slice(0, 8)}:`
  await admin((sql) => sql`CREATE DATABASE ${sql(database)}`)
  const dbUrl = new URL(adminUrl)
  dbUrl.pathname = `/${database}`

  const targets: Array<Target> = []
  try {
    targets.push(await startTarget("bare", upstream))
    targets.push(await startTarget("embedded", upstream))
    targets.push(
      await startTarget("postgres", upstream, {
        DATABASE_URL: dbUrl.toString(),
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: prefix
      })
    )
    const samples = new Map<Target["name"], Array<Sample>>(targets.map((t) => [t.name, []]))
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        const sample = await measure(target)
        samples.get(target.name)!.push(sample)
        console.log(
          `round ${round} ${target.name.padEnd(8)} ${sample.rps.toFixed(0).padStart(6)} req/s  p99 ${sample.p99} ms  ` +
            `${sample.cpuUsPerReq.toFixed(0)} µs CPU/req  rss ${sample.rssMb.toFixed(0)} MB  non-2xx ${sample.non2xx}`
        )
      }
    }
    const pick = (name: Target["name"], f: (s: Sample) => number) => median(samples.get(name)!.map(f))
    const bare = pick("bare", (s) => s.rps)
    const embedded = pick("embedded", (s) => s.rps)
    const pgRedis = pick("postgres", (s) => s.rps)
    const failures = [...samples.values()].flat().reduce((n, s) => n + s.non2xx, 0)
    console.log(JSON.stringify({
      bare_rps: Math.round(bare),
      embedded_rps: Math.round(embedded),
      pg_redis_rps: Math.round(pgRedis),
      embedded_vs_bare: round2(embedded / bare),
      pg_redis_vs_bare: round2(pgRedis / bare),
      bare_p99_ms: pick("bare", (s) => s.p99),
      embedded_p99_ms: pick("embedded", (s) => s.p99),
      pg_redis_p99_ms: pick("postgres", (s) => s.p99),
      embedded_p99_vs_bare: round2(pick("embedded", (s) => s.p99) / Math.max(1, pick("bare", (s) => s.p99))),
      cpu_us_per_req: Math.round(pick("embedded", (s) => s.cpuUsPerReq)),
      bare_cpu_us_per_req: Math.round(pick("bare", (s) => s.cpuUsPerReq)),
      pg_redis_cpu_us_per_req: Math.round(pick("postgres", (s) => s.cpuUsPerReq)),
      failed_requests: failures,
      connections,
      seconds,
      rounds
    }))
  } finally {
    for (const t of targets) {
      t.child.send("stop")
      await new Promise((r) => t.child.once("exit", r))
    }
    upstreamProcess.kill()
    await admin((sql) =>
      Effect.zipRight(
        sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${database}`,
        sql`DROP DATABASE IF EXISTS ${sql(database)}`
      )
    )
    const redis = new Redis(redisUrl)
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== "0")
    await redis.quit()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
