import { assert, describe, it } from "@effect/vitest"
import type { Credits, ProjectId, ReconciliationId } from "@tollgate/core"
import { ReconciliationDifference, ReconciliationReport, ReconciliationRun, ReconciliationStore } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Option } from "effect"
import { unique } from "./fixtures.js"

const reportId = (): ReconciliationId => unique("rec") as ReconciliationId

const report = (
  id: ReconciliationId,
  fields: Partial<ConstructorParameters<typeof ReconciliationReport>[0]> = {}
): ReconciliationReport =>
  new ReconciliationReport({
    id,
    from: 86_400_000,
    to: 172_800_000,
    startedAt: 200_000_000,
    finishedAt: 200_000_050,
    status: "clean",
    counts: { payments: 3, refunds: 1, disputes: 0, differences: 0 },
    differences: [],
    ...fields
  })

const differences = [
  new ReconciliationDifference({
    kind: "missing_grant",
    providerObjectId: "pi_1",
    projectId: "prj_a" as ProjectId,
    expectedCredits: 500 as Credits,
    ledgerCredits: 0 as Credits,
    detail: "payment pi_1 succeeded; no grant under purchase:pi_1"
  }),
  new ReconciliationDifference({
    kind: "unknown_payment",
    providerObjectId: "pi_2",
    detail: "payment pi_2 does not say which project it is for"
  }),
  new ReconciliationDifference({
    kind: "orphan_grant",
    providerObjectId: "pi_3",
    projectId: "prj_b" as ProjectId,
    ledgerCredits: 9_007_199_254_740_991 as Credits,
    detail: "purchase:pi_3 granted for payment pi_3, which the provider does not list"
  })
]

const runOf = ({ differences: _differences, ...run }: ReconciliationReport) => new ReconciliationRun(run)

/**
 * The ReconciliationStore contract: every adapter must pass it. Each test provides `layer` itself
 * and expects an empty store.
 */
export const reconciliationStoreContract = (name: string, layer: Layer.Layer<ReconciliationStore, unknown>) =>
  describe(`ReconciliationStore contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, ReconciliationStore>) => Effect.provide(body, layer)

    it.effect("a saved report is read back whole, its differences in order; an unknown id is not found", () =>
      run(Effect.gen(function*() {
        const store = yield* ReconciliationStore
        const withDifferences = report(reportId(), {
          status: "differences",
          counts: { payments: 3, refunds: 1, disputes: 0, differences: 3 },
          differences
        })
        const failed = report(reportId(), {
          status: "failed",
          counts: { payments: 0, refunds: 0, disputes: 0, differences: 0 },
          detail: "the sandbox payment provider cannot list"
        })
        yield* store.save(withDifferences)
        yield* store.save(failed)
        const found = yield* store.get(withDifferences.id)
        assert.deepStrictEqual(found, Option.some(withDifferences))
        assert.instanceOf(Option.getOrThrow(found), ReconciliationReport)
        assert.instanceOf(Option.getOrThrow(found).differences[0], ReconciliationDifference)
        assert.deepStrictEqual(yield* store.get(failed.id), Option.some(failed))
        assert.isTrue(Option.isNone(yield* store.get(reportId())))
      })))

    it.effect("a save under a known id replaces the report and all its differences", () =>
      run(Effect.gen(function*() {
        const store = yield* ReconciliationStore
        const id = reportId()
        yield* store.save(report(id, { status: "differences", differences }))
        const replaced = report(id, { status: "differences", finishedAt: 200_000_099, differences: [differences[2]!] })
        yield* store.save(replaced)
        assert.deepStrictEqual(yield* store.get(id), Option.some(replaced))
        const clean = report(id)
        yield* store.save(clean)
        assert.deepStrictEqual(yield* store.get(id), Option.some(clean))
        assert.deepStrictEqual((yield* store.list({ limit: 10 })).runs, [runOf(clean)])
      })))

    it.effect("runs are listed latest start first, equal starts by id descending, page by page", () =>
      run(Effect.gen(function*() {
        const store = yield* ReconciliationStore
        assert.deepStrictEqual(yield* store.list({ limit: 10 }), { runs: [], nextCursor: undefined })
        const base = unique("rec")
        const early = report(`${base}_a` as ReconciliationId, { startedAt: 1_000 })
        const tieA = report(`${base}_b` as ReconciliationId, { startedAt: 2_000, differences })
        const tieB = report(`${base}_c` as ReconciliationId, { startedAt: 2_000 })
        const late = report(`${base}_d` as ReconciliationId, { startedAt: 3_000 })
        yield* Effect.forEach([tieA, early, late, tieB], (r) => store.save(r), { discard: true })
        const expected = [late, tieB, tieA, early].map(runOf)
        const all = yield* store.list({ limit: 10 })
        assert.deepStrictEqual(all, { runs: expected, nextCursor: undefined })
        assert.instanceOf(all.runs[0], ReconciliationRun)
        assert.notProperty(all.runs[0], "differences")

        const seen: Array<ReconciliationRun> = []
        let cursor: string | undefined = undefined
        for (let pages = 0; pages < 10; pages++) {
          const page: { readonly runs: ReadonlyArray<ReconciliationRun>; readonly nextCursor: string | undefined } =
            yield* store.list({ cursor, limit: 3 })
          assert.isAtMost(page.runs.length, 3)
          for (const r of page.runs) seen.push(r)
          cursor = page.nextCursor
          if (cursor === undefined) break
        }
        assert.deepStrictEqual(seen, expected)
        const second = yield* store.list({ cursor: (yield* store.list({ limit: 2 })).nextCursor, limit: 2 })
        assert.deepStrictEqual(second, { runs: expected.slice(2), nextCursor: undefined })
      })))
  })
