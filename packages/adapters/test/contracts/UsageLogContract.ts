import { assert, describe, it } from "@effect/vitest"
import type {
  ApiKeyId,
  Category,
  DatasetId,
  PlanId,
  ProjectId,
  RequestId,
  RouteId,
  UsageFilter,
  UsagePage
} from "@tollgate/core"
import { UsageLog, UsageRecord } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect } from "effect"
import { cr, projectId, unique } from "./fixtures.js"

type UsageLogApi = UsageLog["Type"]

const usage = (
  project: ProjectId,
  at: number,
  fields: Partial<ConstructorParameters<typeof UsageRecord>[0]> = {}
): UsageRecord =>
  new UsageRecord({
    requestId: unique("req") as RequestId,
    at,
    projectId: project,
    keyId: "key_contract" as ApiKeyId,
    planId: "plan_starter" as PlanId,
    planVersion: 1,
    routeId: "route_contract" as RouteId,
    category: "search" as Category,
    status: 200,
    outcome: "captured",
    latencyMs: 12,
    credits: cr(2),
    limiter: "allowed",
    ...fields
  })

const everything = (project: ProjectId): UsageFilter => ({ projectId: project, from: 0, to: Number.MAX_SAFE_INTEGER })

/** Reads every page of `filter`, running `between` after each page but the last. */
const readAll = <E = never>(
  log: UsageLogApi,
  filter: UsageFilter,
  limit: number,
  between: (page: number) => Effect.Effect<unknown, E> = () => Effect.void
) =>
  Effect.gen(function*() {
    const pages: Array<ReadonlyArray<UsageRecord>> = []
    let cursor: string | undefined = undefined
    do {
      const page: UsagePage = yield* log.list(filter, { limit, cursor })
      assert.isAtMost(page.records.length, limit)
      pages.push(page.records)
      cursor = page.nextCursor
      if (cursor !== undefined) yield* between(pages.length)
    } while (cursor !== undefined && pages.length < 1_000)
    return pages
  })

const isNewestFirst = (rows: ReadonlyArray<UsageRecord>): boolean =>
  rows.every((r, i) =>
    i === 0 || rows[i - 1]!.at > r.at || (rows[i - 1]!.at === r.at && rows[i - 1]!.requestId > r.requestId)
  )

/**
 * The UsageLog contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store.
 */
export const usageLogContract = (name: string, layer: Layer.Layer<UsageLog, unknown>) =>
  describe(`UsageLog contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, UsageLog>) => Effect.provide(body, layer)

    it.effect("recording is idempotent by request id and keeps the first row", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        const first = usage(p, 1_000, { credits: cr(2), datasetId: "ds_x" as DatasetId })
        assert.strictEqual(yield* log.record(first), "created")
        const replay = usage(p, 5_000, { requestId: first.requestId, credits: cr(9), outcome: "voided" })
        assert.strictEqual(yield* log.record(replay), "exists")
        assert.strictEqual(yield* log.record(first), "exists")
        const page = yield* log.list(everything(p), { limit: 10 })
        assert.deepStrictEqual(page.records, [first])
        assert.instanceOf(page.records[0], UsageRecord)
        assert.isUndefined(page.nextCursor)
      })))

    it.effect("concurrent records of one request id create exactly one row", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        const requestId = unique("req") as RequestId
        const codes = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => log.record(usage(p, 1_000 + i, { requestId }))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(codes.filter((c) => c === "created").length, 1)
        assert.strictEqual((yield* log.list(everything(p), { limit: 10 })).records.length, 1)
      })))

    it.effect("a listing is filtered by project, route, dataset and time (from inclusive, to exclusive)", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        const route = unique("route") as RouteId
        const ds = unique("ds") as DatasetId
        const before = usage(p, 999)
        const atFrom = usage(p, 1_000)
        const onRoute = usage(p, 1_500, { routeId: route, datasetId: ds })
        const lastIn = usage(p, 1_999, { datasetId: ds })
        const atTo = usage(p, 2_000)
        const otherProject = usage(projectId(), 1_500, { routeId: route, datasetId: ds })
        yield* Effect.forEach([before, atFrom, onRoute, lastIn, atTo, otherProject], (r) => log.record(r))
        const window = { from: 1_000, to: 2_000 }
        const ids = (page: { readonly records: ReadonlyArray<UsageRecord> }) => page.records.map((r) => r.requestId)
        assert.deepStrictEqual(ids(yield* log.list({ ...window, projectId: p }, { limit: 10 })), [
          lastIn.requestId,
          onRoute.requestId,
          atFrom.requestId
        ])
        assert.deepStrictEqual(ids(yield* log.list({ ...window, projectId: p, routeId: route }, { limit: 10 })), [
          onRoute.requestId
        ])
        assert.deepStrictEqual(ids(yield* log.list({ ...window, projectId: p, datasetId: ds }, { limit: 10 })), [
          lastIn.requestId,
          onRoute.requestId
        ])
        const acrossProjects = ids(yield* log.list({ ...window, routeId: route }, { limit: 10 }))
        assert.sameMembers(acrossProjects, [onRoute.requestId, otherProject.requestId])
        assert.deepStrictEqual(ids(yield* log.list({ from: 2_000, to: 2_000, projectId: p }, { limit: 10 })), [])
      })))

    it.effect("pages list newest first, equal times by request id, each row exactly once", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        const rows = [
          ...[1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000].map((at) => usage(p, at)),
          ...Array.from({ length: 5 }, () => usage(p, 4_000))
        ]
        yield* Effect.forEach(rows, (r) => log.record(r))
        const pages = yield* readAll(log, everything(p), 3)
        assert.deepStrictEqual(pages.map((page) => page.length), [3, 3, 3, 3])
        const listed = pages.flat()
        assert.isTrue(isNewestFirst(listed))
        assert.sameMembers(listed.map((r) => r.requestId), rows.map((r) => r.requestId))
        assert.strictEqual(new Set(listed.map((r) => r.requestId)).size, rows.length)
        const whole = yield* log.list(everything(p), { limit: rows.length })
        assert.deepStrictEqual(whole.records, listed)
        assert.isUndefined(whole.nextCursor)
      })))

    it.effect("pages stay stable while rows are recorded between them: no row repeats and none is skipped", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        const original = [1_000, 2_000, 3_000, 3_000, 3_000, 4_000, 5_000, 6_000].map((at) => usage(p, at))
        yield* Effect.forEach(original, (r) => log.record(r))
        const newer: Array<UsageRecord> = []
        const late: Array<UsageRecord> = []
        const pages = yield* readAll(log, everything(p), 2, (page) =>
          Effect.gen(function*() {
            // rows newer than what was read belong above the cursor; a row arriving late, with an
            // older time than the cursor, belongs below it and must show up once
            const fresh = usage(p, 10_000 + page)
            newer.push(fresh)
            yield* log.record(fresh)
            if (page === 1) {
              const straggler = usage(p, 2_500)
              late.push(straggler)
              yield* log.record(straggler)
            }
          }))
        const listed = pages.flat().map((r) => r.requestId)
        assert.strictEqual(new Set(listed).size, listed.length)
        assert.sameMembers(listed, [...original, ...late].map((r) => r.requestId))
        assert.isTrue(isNewestFirst(pages.flat()))
        const now = yield* readAll(log, everything(p), 100)
        assert.strictEqual(now.flat().length, original.length + late.length + newer.length)
      })))

    it.effect("an empty listing has no cursor and an empty summary", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        assert.deepStrictEqual(yield* log.list(everything(p), { limit: 5 }), { records: [], nextCursor: undefined })
        assert.deepStrictEqual(yield* log.summarize(everything(p), "day"), [])
      })))

    it.effect("a summary by day groups calls and credits by UTC date, in date order, within the filter", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        yield* Effect.forEach([
          usage(p, Date.UTC(2024, 1, 29, 12), { credits: cr(4) }),
          usage(p, Date.UTC(2024, 2, 1, 23, 59, 59, 999), { credits: cr(3) }),
          usage(p, Date.UTC(2024, 2, 2), { credits: cr(5) }),
          usage(p, Date.UTC(2024, 2, 2, 12), { credits: cr(0), outcome: "refused", refusal: "insufficient_credit" }),
          usage(p, Date.UTC(2024, 2, 3), { credits: cr(7) }),
          usage(projectId(), Date.UTC(2024, 2, 2), { credits: cr(100) })
        ], (r) => log.record(r))
        const rows = yield* log.summarize({ projectId: p, from: Date.UTC(2024, 2, 1), to: Date.UTC(2024, 2, 3) }, "day")
        assert.deepStrictEqual(rows, [
          { group: "2024-03-01", calls: 1, credits: 3 },
          { group: "2024-03-02", calls: 2, credits: 5 }
        ])
        const all = yield* log.summarize(everything(p), "day")
        assert.deepStrictEqual(all.map((r) => r.group), ["2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"])
      })))

    it.effect("summaries by route, dataset (none for rows without one) and project, sorted by group", () =>
      run(Effect.gen(function*() {
        const log = yield* UsageLog
        const p = projectId()
        const base = unique("x")
        const [r1, r2] = [`${base}_r1` as RouteId, `${base}_r2` as RouteId]
        const [d1, d2] = [`${base}_d1` as DatasetId, `${base}_d2` as DatasetId]
        const other = projectId()
        yield* Effect.forEach([
          usage(p, 1_000, { routeId: r2, datasetId: d2, credits: cr(5) }),
          usage(p, 1_100, { routeId: r1, datasetId: d1, credits: cr(1) }),
          usage(p, 1_200, { routeId: r1, credits: cr(2) }),
          usage(p, 1_300, { routeId: r1, datasetId: d1, credits: cr(0), outcome: "refused" }),
          usage(other, 1_400, { routeId: r2, datasetId: d2, credits: cr(8) })
        ], (r) => log.record(r))
        const window = { from: 0, to: 10_000 }
        assert.deepStrictEqual(yield* log.summarize({ ...window, projectId: p }, "route"), [
          { group: r1, calls: 3, credits: 3 },
          { group: r2, calls: 1, credits: 5 }
        ])
        const byDataset = yield* log.summarize({ ...window, projectId: p }, "dataset")
        const expected = [
          { group: d1, calls: 2, credits: 1 },
          { group: d2, calls: 1, credits: 5 },
          { group: "none", calls: 1, credits: 2 }
        ].sort((a, b) => (a.group < b.group ? -1 : 1))
        assert.deepStrictEqual(byDataset, expected)
        const byProject = yield* log.summarize({ ...window, routeId: r2 }, "project")
        assert.deepStrictEqual(
          byProject,
          [{ group: p, calls: 1, credits: 5 }, { group: other, calls: 1, credits: 8 }].sort((a, b) =>
            a.group < b.group ? -1 : 1
          )
        )
        assert.deepStrictEqual(
          yield* log.summarize({ ...window, routeId: r2, datasetId: d2, projectId: other }, "route"),
          [
            { group: r2, calls: 1, credits: 8 }
          ]
        )
      })))
  })
