import type { ReconciliationId, ReconciliationReport } from "@tollgate/core"
import {
  decodeReconciliationCursor,
  encodeReconciliationCursor,
  ReconciliationRun,
  ReconciliationStore
} from "@tollgate/core"
import { Effect, Layer, Option } from "effect"

/** Latest start first, equal starts by id descending: the order every adapter lists in. */
const latestFirst = (a: ReconciliationRun, b: ReconciliationRun): number =>
  b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

const runOf = ({ differences: _differences, ...run }: ReconciliationReport) => new ReconciliationRun(run)

/** Reconciliation reports in process memory, each replaced whole by a save under its id. */
export const makeMemoryReconciliationStore = Effect.sync(() => {
  const reports = new Map<ReconciliationId, ReconciliationReport>()

  const save = Effect.fnUntraced(function*(report: ReconciliationReport) {
    reports.set(report.id, report)
  })

  const get = Effect.fnUntraced(function*(id: ReconciliationId) {
    return Option.fromNullable(reports.get(id))
  })

  const list = Effect.fnUntraced(
    function*(page: { readonly cursor?: string | undefined; readonly limit: number }) {
      const after = decodeReconciliationCursor(page.cursor)
      const limit = Math.max(0, Math.floor(page.limit))
      const sorted = [...reports.values()].map(runOf).sort(latestFirst).filter((run) =>
        after === undefined || run.startedAt < after.startedAt ||
        (run.startedAt === after.startedAt && run.id < after.id)
      )
      const runs = sorted.slice(0, limit)
      const last = runs[runs.length - 1]
      return {
        runs,
        nextCursor: sorted.length > limit && last !== undefined ? encodeReconciliationCursor(last) : undefined
      }
    }
  )

  return ReconciliationStore.of({ save, get, list })
})

export const MemoryReconciliationStoreLive = Layer.effect(ReconciliationStore, makeMemoryReconciliationStore)
