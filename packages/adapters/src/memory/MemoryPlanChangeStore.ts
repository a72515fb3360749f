import type { PendingPlanChange, PlanChangeState, PlanId, ProjectId, SubscriptionChange } from "@tollgate/core"
import { PlanChangeStore } from "@tollgate/core"
import { Effect, Layer, Option } from "effect"

const sameChange = (a: SubscriptionChange, b: SubscriptionChange) =>
  a.subscriptionId === b.subscriptionId && a.planId === b.planId && a.version === b.version &&
  a.effectiveAt === b.effectiveAt && a.reason === b.reason && a.ended === b.ended

const samePending = (a: PendingPlanChange | undefined, b: PendingPlanChange) =>
  a !== undefined && a.planId === b.planId && a.effectiveAt === b.effectiveAt && a.reason === b.reason

const byId = (a: ProjectId, b: ProjectId) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Subscription histories in process memory. Each method reads and writes a project's state in one
 * synchronous step, atomic as the PostgreSQL row update is.
 */
export const makeMemoryPlanChangeStore = Effect.sync(() => {
  const states = new Map<ProjectId, PlanChangeState>()

  const get = Effect.fnUntraced(function*(projectId: ProjectId) {
    return Option.fromNullable(states.get(projectId))
  })

  const record = Effect.fnUntraced(
    function*(projectId: ProjectId, basePlanId: PlanId, change: SubscriptionChange) {
      const current = states.get(projectId) ?? { projectId, basePlanId, changes: [] }
      if (current.changes.some((c) => sameChange(c, change))) {
        states.set(projectId, current)
        return current
      }
      const next: PlanChangeState = { ...current, changes: [...current.changes, { ...change }] }
      states.set(projectId, next)
      return next
    }
  )

  const setPending = Effect.fnUntraced(
    function*(projectId: ProjectId, pending: PendingPlanChange | undefined) {
      const current = states.get(projectId)
      if (current === undefined) return
      const { pending: _, ...rest } = current
      states.set(projectId, pending === undefined ? rest : { ...rest, pending: { ...pending } })
    }
  )

  const clearPending = Effect.fnUntraced(
    function*(projectId: ProjectId, applied: PendingPlanChange) {
      const current = states.get(projectId)
      if (current === undefined || !samePending(current.pending, applied)) return false
      const { pending: _, ...rest } = current
      states.set(projectId, rest)
      return true
    }
  )

  const due = Effect.fnUntraced(function*(options: { readonly now: number; readonly limit: number }) {
    return [...states.values()]
      .filter((s) => s.pending !== undefined && s.pending.effectiveAt <= options.now)
      .sort((a, b) => a.pending!.effectiveAt - b.pending!.effectiveAt || byId(a.projectId, b.projectId))
      .slice(0, Math.max(0, options.limit))
  })

  return PlanChangeStore.of({ get, record, setPending, clearPending, due })
})

export const MemoryPlanChangeStoreLive = Layer.effect(PlanChangeStore, makeMemoryPlanChangeStore)
