import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import type { ApiKeyId, Category, Credits, EventId, PlanId, ProjectId, RequestId, RouteId } from "@tollgate/core"
import {
  AutoTopUpStore,
  BillingInbox,
  Catalog,
  KeyStore,
  Outbox,
  PlanChangeStore,
  ProjectStore,
  UsageLog,
  UsageRecord
} from "@tollgate/core"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { makePgAutoTopUpStore } from "../../src/postgres/PgAutoTopUpStore.js"
import { makePgBillingInbox } from "../../src/postgres/PgBillingInbox.js"
import { makePgCatalog } from "../../src/postgres/PgCatalog.js"
import { makePgKeyStore } from "../../src/postgres/PgKeyStore.js"
import { makePgOutbox } from "../../src/postgres/PgOutbox.js"
import { makePgPlanChangeStore } from "../../src/postgres/PgPlanChangeStore.js"
import { makePgProjectStore } from "../../src/postgres/PgProjectStore.js"
import { makePgUsageLog, makePgUsageLogBatched } from "../../src/postgres/PgUsageLog.js"
import { autoTopUpStoreContract } from "../contracts/AutoTopUpStoreContract.js"
import { billingInboxContract } from "../contracts/BillingInboxContract.js"
import { catalogContract } from "../contracts/CatalogContract.js"
import { unique } from "../contracts/fixtures.js"
import { keyStoreContract } from "../contracts/KeyStoreContract.js"
import { outboxContract } from "../contracts/OutboxContract.js"
import { planChangeStoreContract } from "../contracts/PlanChangeStoreContract.js"
import { projectStoreContract } from "../contracts/ProjectStoreContract.js"
import { usageLogContract } from "../contracts/UsageLogContract.js"
import type { TestDatabase } from "../support/Databases.js"
import { pgliteTestClient, postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"

const pg = testDatabase(postgresTestClient)
const lite = testDatabase(pgliteTestClient)

/** Every store's contract over one kind of database, each test on emptied tables. */
const contracts = (name: string, db: TestDatabase<unknown>) => {
  keyStoreContract(name, db.perTest(KeyStore, makePgKeyStore))
  catalogContract(name, db.perTest(Catalog, makePgCatalog))
  projectStoreContract(name, db.perTest(ProjectStore, makePgProjectStore))
  usageLogContract(name, db.perTest(UsageLog, makePgUsageLog))
  // small groups, so that concurrent rows (and one request id sent at once) share statements
  usageLogContract(
    `${name} group commit`,
    db.fresh(Layer.scoped(UsageLog, makePgUsageLogBatched({ maxSize: 8, workers: 2 })))
  )
  billingInboxContract(name, db.perTest(BillingInbox, makePgBillingInbox))
  outboxContract(name, db.perTest(Outbox, makePgOutbox))
  autoTopUpStoreContract(name, db.perTest(AutoTopUpStore, makePgAutoTopUpStore))
  planChangeStoreContract(name, db.perTest(PlanChangeStore, makePgPlanChangeStore))
}

/** What the contracts cannot see: the database session's settings must not change a result. */
const sessionIndependence = (name: string, db: TestDatabase<unknown>) =>
  describe(`UsageLog on ${name}: session settings`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, UsageLog | SqlClient.SqlClient>) =>
      Effect.provide(body, db.fresh(Layer.effect(UsageLog, makePgUsageLog)))

    it.effect("daily summaries are UTC dates whatever the session's time zone", () =>
      run(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const log = yield* UsageLog
        const p = unique("prj") as ProjectId
        const usage = (at: number) =>
          new UsageRecord({
            requestId: unique("req") as RequestId,
            at,
            projectId: p,
            keyId: "key_tz" as ApiKeyId,
            planId: "plan_tz" as PlanId,
            planVersion: 1,
            routeId: "route_tz" as RouteId,
            category: "search" as Category,
            status: 200,
            outcome: "captured",
            latencyMs: 1,
            credits: 1 as Credits,
            limiter: "allowed"
          })
        yield* Effect.forEach(
          [Date.UTC(2024, 2, 1, 0, 0), Date.UTC(2024, 2, 1, 23, 59, 59, 999), Date.UTC(2024, 2, 2, 0, 0)],
          (at) => log.record(usage(at)),
          { discard: true }
        )
        const expected = [
          { group: "2024-03-01", calls: 2, credits: 2 },
          { group: "2024-03-02", calls: 1, credits: 1 }
        ]
        const filter = { projectId: p, from: 0, to: Number.MAX_SAFE_INTEGER }
        for (const zone of ["Pacific/Kiritimati", "America/Adak", "UTC"]) {
          // SET takes no parameters; the zones are the literals above.
          const rows = yield* sql.withTransaction(
            Effect.zipRight(sql.unsafe(`SET LOCAL TIME ZONE '${zone}'`), log.summarize(filter, "day"))
          )
          assert.deepStrictEqual(rows, expected, zone)
        }
      })))
  })

describe.skipIf(!postgresAvailable)("PostgreSQL stores", () => {
  contracts("postgres", pg)
  sessionIndependence("postgres", pg)
})

describe("PGlite stores", () => {
  contracts("pglite", lite)
  sessionIndependence("pglite", lite)
})

describe.skipIf(!postgresAvailable)("PostgreSQL billing inbox across connections", () => {
  const run = <A, E>(body: Effect.Effect<A, E, BillingInbox | SqlClient.SqlClient>) =>
    Effect.provide(body, pg.fresh(Layer.effect(BillingInbox, makePgBillingInbox)))

  it.live("a claim on one connection skips the events another connection's open claim holds", () =>
    run(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const inbox = yield* BillingInbox
      const events = Array.from({ length: 10 }, (_, i) => ({
        id: unique("evt") as EventId,
        provider: "sandbox" as const,
        type: "checkout.session.completed",
        createdAt: 1_000 + i,
        payload: { i }
      }))
      yield* Effect.forEach(events, (e) => inbox.store(e, 2_000), { discard: true })
      const options = { now: 3_000, limit: 6, leaseMs: 60_000 }
      const backend = sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`.pipe(
        Effect.map((rows) => rows[0]!.pid)
      )

      // The first claim runs in a transaction that stays open, so its row locks stay held
      // while the second claim, necessarily on another pooled connection, runs.
      const holding = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const first = yield* sql.withTransaction(Effect.gen(function*() {
        const claimed = yield* inbox.claim(options)
        const pid = yield* backend
        yield* Deferred.succeed(holding, undefined)
        yield* Deferred.await(release)
        return { claimed, pid }
      })).pipe(Effect.fork)
      yield* Deferred.await(holding)
      // SKIP LOCKED: the second claim neither waits for the first nor takes its events.
      const second = yield* sql.withTransaction(
        Effect.all({ claimed: inbox.claim(options), pid: backend })
      ).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "the second claim waited" as const }))
      yield* Deferred.succeed(release, undefined)
      const firstResult = yield* Fiber.join(first)

      assert.notStrictEqual(firstResult.pid, second.pid)
      const ids = (claimed: ReadonlyArray<{ readonly id: EventId }>) => claimed.map((e) => e.id)
      assert.deepStrictEqual(ids(firstResult.claimed), events.slice(0, 6).map((e) => e.id))
      assert.deepStrictEqual(ids(second.claimed), events.slice(6).map((e) => e.id))
      assert.isTrue([...firstResult.claimed, ...second.claimed].every((e) => e.attempts === 1))
      // Both leases are committed: nothing is due until they end.
      assert.deepStrictEqual(yield* inbox.claim({ ...options, limit: 10 }), [])
      assert.strictEqual((yield* inbox.claim({ ...options, now: 63_000, limit: 10 })).length, 10)
    })))

  it.live("many claims racing over the pool never return one event twice", () =>
    run(Effect.gen(function*() {
      const inbox = yield* BillingInbox
      const events = Array.from({ length: 200 }, (_, i) => ({
        id: unique("evt") as EventId,
        provider: "sandbox" as const,
        type: "checkout.session.completed",
        createdAt: 1_000 + (i % 13),
        payload: { i }
      }))
      yield* Effect.forEach(events, (e) => inbox.store(e, 2_000), { concurrency: 10, discard: true })
      const claimed = (yield* Effect.all(
        Array.from({ length: 40 }, () => inbox.claim({ now: 3_000, limit: 7, leaseMs: 60_000 })),
        { concurrency: "unbounded" }
      )).flat()
      const ids = claimed.map((e) => e.id)
      assert.strictEqual(new Set(ids).size, ids.length)
      const rest = yield* inbox.claim({ now: 3_000, limit: 1_000, leaseMs: 60_000 })
      assert.sameMembers([...ids, ...rest.map((e) => e.id)], events.map((e) => e.id))
    })))
})
