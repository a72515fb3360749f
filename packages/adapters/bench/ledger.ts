/**
 * Ledger throughput on PostgreSQL: hold + capture per call, (a) one hot wallet paying one hot
 * dataset's contributor, (b) 1,000 spread wallets, (c) the obvious design as a baseline (one
 * transaction per call updating balance rows under SELECT … FOR UPDATE), all with synchronous
 * commit on for captures, in one run on one database. First the process's RSS while it works
 * against 1,000,000 ledger entries (the throughput phases then run on that ledger; the RSS at the
 * end of the run is reported too). Prints one JSON line last.
 *
 * Ours is the leased ledger (`LeasedLedger`: credit reserved in blocks, the calls of a block
 * settled with one capture, every capture durable when it returns) over the batched adapter
 * (concurrent holds and captures share statements and commits). The batched adapter alone and the
 * unbatched adapter are reported too.
 *
 * DATABASE_URL picks the server (default postgres://postgres@127.0.0.1:5432/postgres); the benchmark
 * creates its own database and drops it afterwards. BENCH_SECONDS and BENCH_CONCURRENCY tune it.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { Credits, IdempotencyKey, Ledger as LedgerService, ProjectId } from "@tollgate/core"
import { earningsAccount, revenueAccount } from "@tollgate/core"
import { Effect, Redacted } from "effect"
import { makeLeasedLedger } from "../src/lease/LeasedLedger.js"
import { migrate } from "../src/postgres/PgDatabase.js"
import { makePgLedger, makePgLedgerBatched } from "../src/postgres/PgLedger.js"

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16)
const BATCH = Number(process.env.BENCH_BATCH ?? 64)
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4)
const LEASE_CALLS = Number(process.env.BENCH_LEASE_CALLS ?? 64)
const SETTLE_DELAY_MS = Number(process.env.BENCH_SETTLE_DELAY_MS ?? 2)
const PRICE = 5
const serverUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const database = `tollgate_bench_${Date.now().toString(36)}`
const benchUrl = (() => {
  const u = new URL(serverUrl)
  u.pathname = `/${database}`
  return u.toString()
})()

const admin = PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 1 })
const client = PgClient.layer({ url: Redacted.make(benchUrl), maxConnections: CONNECTIONS })

let seq = 0
const key = (p: string) => `${p}_${++seq}` as IdempotencyKey
const contributor = "bench-contributor" as ProjectId

/** Runs `call` from CONCURRENCY fibers for SECONDS (after a short warm-up) and returns calls per second. */
const measure = (call: (worker: number) => Effect.Effect<void, unknown>) =>
  Effect.gen(function*() {
    let done = 0
    let counting = false
    let stop = false
    const worker = (w: number) =>
      Effect.gen(function*() {
        while (!stop) {
          yield* call(w)
          if (counting) done++
        }
      })
    const fibers = yield* Effect.forkAll(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)))
    yield* Effect.sleep("1 second")
    counting = true
    const started = performance.now()
    yield* Effect.sleep(`${SECONDS} seconds`)
    counting = false
    const elapsed = (performance.now() - started) / 1000
    stop = true
    yield* fibers.await
    return Math.round(done / elapsed)
  })

const holdAndCapture = (ledger: LedgerService["Type"], wallet: ProjectId) =>
  Effect.gen(function*() {
    const now = Date.now()
    const { hold } = yield* ledger.hold({
      idempotencyKey: key("h"),
      projectId: wallet,
      amount: PRICE as Credits,
      expiresAt: now + 60_000
    })
    yield* ledger.capture({
      idempotencyKey: key("c"),
      holdId: hold.id,
      amount: PRICE as Credits,
      payees: [{ account: earningsAccount(contributor), amount: 1 as Credits }, {
        account: revenueAccount,
        amount: (PRICE - 1) as Credits
      }]
    })
  })

const naiveSchema = [
  "CREATE TABLE naive_balances (account text PRIMARY KEY, balance bigint NOT NULL)",
  "CREATE TABLE naive_entries (id bigserial PRIMARY KEY, account text NOT NULL, amount bigint NOT NULL)"
]

/** The obvious way: one transaction per call, the wallet row locked, every balance row updated in place. */
const naiveCall = (sql: SqlClient.SqlClient, wallet: string) =>
  sql.withTransaction(Effect.gen(function*() {
    const [row] = yield* sql<
      { balance: string }
    >`SELECT balance FROM naive_balances WHERE account = ${wallet} FOR UPDATE`
    if (Number(row!.balance) < PRICE) return yield* Effect.fail(new Error("insufficient"))
    yield* sql`UPDATE naive_balances SET balance = balance - ${PRICE} WHERE account = ${wallet}`
    yield* sql`UPDATE naive_balances SET balance = balance + 1 WHERE account = 'earnings:bench-contributor'`
    yield* sql`UPDATE naive_balances SET balance = balance + ${PRICE - 1} WHERE account = 'revenue'`
    yield* sql`INSERT INTO naive_entries (account, amount) VALUES (${wallet}, ${-PRICE}), ('earnings:bench-contributor', 1), ('revenue', ${
      PRICE - 1
    })`
  }))

const rssMb = () => Math.round(process.memoryUsage().rss / 1024 / 1024)

const run = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  const unbatched = yield* makePgLedger
  const batched = yield* makePgLedgerBatched({ maxSize: BATCH, workers: WORKERS })
  const ledger = yield* makeLeasedLedger(batched, { callsPerLease: LEASE_CALLS, settleDelayMs: SETTLE_DELAY_MS })
  const hot = "bench-hot" as ProjectId
  const spread = Array.from({ length: 1_000 }, (_, i) => `bench-spread-${i}` as ProjectId)
  yield* ledger.grant({
    idempotencyKey: key("g"),
    projectId: hot,
    amount: 1_000_000_000_000 as Credits,
    source: "purchase"
  })
  yield* Effect.forEach(
    spread,
    (p) =>
      ledger.grant({ idempotencyKey: key("g"), projectId: p, amount: 1_000_000_000 as Credits, source: "purchase" }),
    {
      concurrency: 16
    }
  )

  // First, memory: top the ledger up to 1,000,000 entries with balanced capture transactions
  // written in bulk, then work against it (the throughput phases below then run on this ledger)
  const [{ n }] = (yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM ledger_entries`) as any
  const missing = Math.max(0, Math.ceil((1_000_000 - Number(n)) / 3))
  console.error(`filling the ledger to 1,000,000 entries (${missing} more transactions) …`)
  for (let done = 0; done < missing; done += 50_000) {
    const batch = Math.min(50_000, missing - done)
    yield* sql.unsafe(`
      WITH t AS (
        INSERT INTO ledger_transactions (idempotency_key, kind, project_id, created_at)
        SELECT 'fill_' || ${done} || '_' || g, 'capture', 'bench-hot', 0 FROM generate_series(1, ${batch}) g RETURNING id)
      INSERT INTO ledger_entries (transaction_id, ordinal, account, amount)
      SELECT id, o, (ARRAY['wallet:bench-hot', 'earnings:bench-contributor', 'revenue'])[o], (ARRAY[-5, 1, 4])[o]
      FROM t, generate_series(1, 3) o`)
  }
  const [{ entries }] = (yield* sql<{ entries: string }>`SELECT count(*)::text AS entries FROM ledger_entries`) as any
  // then work against it: calls, balances and history pages, watching this process's memory
  let peak = rssMb()
  for (let i = 0; i < 2_000; i++) {
    yield* holdAndCapture(ledger, hot)
    if (i % 100 === 0) {
      yield* ledger.balance(hot)
      yield* ledger.history(hot, { limit: 100 })
      yield* ledger.trialBalance
      peak = Math.max(peak, rssMb())
    }
  }

  console.error(`hot wallet: ${CONCURRENCY} callers, ${CONNECTIONS} connections, ${SECONDS}s …`)
  const hotPerS = yield* measure(() => holdAndCapture(ledger, hot))
  console.error(`  ${hotPerS} captured calls/s`)
  console.error("1,000 spread wallets …")
  const spreadPerS = yield* measure((w) => holdAndCapture(ledger, spread[(w * 7919 + seq) % spread.length]!))
  console.error(`  ${spreadPerS} captured calls/s`)

  console.error("batched adapter without leases, hot wallet …")
  const batchedHotPerS = yield* measure(() => holdAndCapture(batched, hot))
  console.error(`  ${batchedHotPerS} captured calls/s`)
  console.error("batched adapter without leases, 1,000 spread wallets …")
  const batchedSpreadPerS = yield* measure((w) => holdAndCapture(batched, spread[(w * 7919 + seq) % spread.length]!))
  console.error(`  ${batchedSpreadPerS} captured calls/s`)

  console.error("one statement per write (no batching), hot wallet …")
  const unbatchedHotPerS = yield* measure(() => holdAndCapture(unbatched, hot))
  console.error(`  ${unbatchedHotPerS} captured calls/s`)

  for (const s of naiveSchema) yield* sql.unsafe(s)
  yield* sql`INSERT INTO naive_balances VALUES ('wallet:hot', 1000000000000), ('earnings:bench-contributor', 0), ('revenue', 0)`
  console.error("naive baseline, hot wallet …")
  const naivePerS = yield* measure(() => naiveCall(sql, "wallet:hot"))
  console.error(`  ${naivePerS} calls/s`)

  const [{ sum }] =
    (yield* sql<{ sum: string }>`SELECT coalesce(sum(balance), 0)::text AS sum FROM account_balances`) as any
  if (sum !== "0") return yield* Effect.dieMessage(`the ledger does not sum to zero: ${sum}`)

  const figures = {
    hot_per_s: hotPerS,
    spread_per_s: spreadPerS,
    naive_hot_per_s: naivePerS,
    hot_vs_spread: Number((hotPerS / spreadPerS).toFixed(2)),
    hot_vs_naive: Number((hotPerS / naivePerS).toFixed(2)),
    rss_mb_at_1m_entries: peak,
    rss_mb_at_end: rssMb(),
    batched_hot_per_s: batchedHotPerS,
    batched_spread_per_s: batchedSpreadPerS,
    unbatched_hot_per_s: unbatchedHotPerS,
    lease_calls: LEASE_CALLS,
    settle_delay_ms: SETTLE_DELAY_MS,
    batch: BATCH,
    workers: WORKERS,
    entries: Number(entries),
    concurrency: CONCURRENCY,
    connections: CONNECTIONS,
    seconds: SECONDS
  }
  return figures
})

const program = Effect.gen(function*() {
  const adminSql = yield* SqlClient.SqlClient
  yield* adminSql.unsafe(`CREATE DATABASE ${database}`)
  const figures = yield* run.pipe(
    Effect.scoped,
    Effect.provide(client),
    Effect.ensuring(
      adminSql.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).pipe(Effect.orDie)
    )
  )
  console.log(JSON.stringify(figures))
}).pipe(Effect.provide(admin))

Effect.runPromise(Effect.scoped(program) as Effect.Effect<void, unknown>).catch((e) => {
  console.error(e)
  process.exitCode = 1
})
