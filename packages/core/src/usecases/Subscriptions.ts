import { Clock, Context, Effect, Option, Schema } from "effect"
import type { PlanId, ProjectId } from "../domain/Ids.js"
import type { Plan } from "../domain/Plan.js"
import { Project } from "../domain/Project.js"
import { Catalog } from "../ports/Catalog.js"
import type { PendingPlanChange, PlanChangeState, SubscriptionChange } from "../ports/PlanChangeStore.js"
import { PlanChangeStore } from "../ports/PlanChangeStore.js"
import { ProjectStore } from "../ports/ProjectStore.js"

/** The plan a cancelled subscription leaves its project on (read when `Subscriptions` is built). */
export class FreePlan extends Context.Reference<FreePlan>()("@tollgate/core/FreePlan", {
  defaultValue: () => ({ planId: "free" as PlanId })
}) {}

/** A store or the catalog did not answer: the event is retried. */
export class PlanChangeUnavailable extends Schema.TaggedError<PlanChangeUnavailable>()("PlanChangeUnavailable", {
  message: Schema.String
}) {}

export interface ResolvedPlan {
  /** The plan the project holds now. */
  readonly planId: PlanId
  readonly pending: PendingPlanChange | undefined
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * The true order of a project's subscription events: by the provider's own `version`; a deletion
 * after anything else of the same second; ties by content, so any arrival order sorts alike.
 */
const trueOrder = (a: SubscriptionChange, b: SubscriptionChange): number =>
  a.version - b.version ||
  Number(a.ended) - Number(b.ended) ||
  byText(a.subscriptionId, b.subscriptionId) ||
  byText(a.reason, b.reason) ||
  byText(a.planId, b.planId) ||
  a.effectiveAt - b.effectiveAt

/**
 * Where a project's subscription events leave it, decided from the events themselves and never from
 * their arrival order (Stripe retries for days and promises no order):
 *
 * - the distinct events are replayed from the plan the project held before the first one, in their
 *   true order (`version`: Stripe's `created`); a redelivered event is the same event, counted once;
 * - a deletion is final: no update of its subscription stamped after it counts, and one stamped in
 *   the same second counts before it;
 * - a move to a dearer plan (`priceCents`) applies at once and drops any pending change; a move to
 *   a cheaper one waits for `effectiveAt` (the period's end); a cancellation moves to the free plan at
 *   `effectiveAt`; a move back to the current plan drops the pending change;
 * - a pending change whose time has come before the next event (or by `now`) has happened;
 * - an event naming a plan the catalog does not know changes nothing.
 *
 * So the same set of events gives the same plan and pending change, in any order, with any
 * duplicates: a late older event is not "newer" than what was applied, it takes its place in history.
 */
export const resolvePlan = (
  state: Pick<PlanChangeState, "basePlanId" | "changes">,
  priceOf: (planId: PlanId) => number | undefined,
  freePlanId: PlanId,
  now: number
): ResolvedPlan => {
  const endedAt = new Map<string, number>()
  for (const c of state.changes) {
    if (c.ended) endedAt.set(c.subscriptionId, Math.min(c.version, endedAt.get(c.subscriptionId) ?? c.version))
  }
  const history = state.changes
    .filter((c) => c.ended || c.version <= (endedAt.get(c.subscriptionId) ?? c.version))
    .sort(trueOrder)
  let planId = state.basePlanId
  let pending: PendingPlanChange | undefined
  const settle = (at: number) => {
    if (pending !== undefined && pending.effectiveAt <= at) {
      planId = pending.planId
      pending = undefined
    }
  }
  for (const change of history) {
    settle(change.version * 1000)
    const target = change.reason === "cancelled" ? freePlanId : change.planId
    const price = priceOf(target)
    if (price === undefined) continue
    if (target === planId) {
      pending = undefined
    } else if (change.reason !== "cancelled" && price >= (priceOf(planId) ?? 0)) {
      planId = target
      pending = undefined
    } else {
      pending = {
        planId: target,
        effectiveAt: change.effectiveAt,
        reason: change.reason === "cancelled" ? "cancelled" : "downgraded"
      }
    }
  }
  settle(now)
  return { planId, pending }
}

/**
 * Plan changes from a payment provider's subscriptions: each event is recorded in the project's
 * history and the project is set where the whole history leaves it (`resolvePlan`); changes that
 * wait for a period's end are applied by `applyDue`, which the worker runs on an interval.
 */
export class Subscriptions extends Effect.Service<Subscriptions>()("@tollgate/core/Subscriptions", {
  effect: Effect.gen(function*() {
    const store = yield* PlanChangeStore
    const projects = yield* ProjectStore
    const catalog = yield* Catalog
    const { planId: freePlanId } = yield* FreePlan

    const unavailable = (e: { readonly message: string }) => new PlanChangeUnavailable({ message: e.message })

    const latestPlans = Effect.fn("Subscriptions.latestPlans")(function*(ids: ReadonlyArray<PlanId>) {
      const plans = new Map<PlanId, Plan>()
      for (const id of new Set(ids)) {
        const plan = yield* catalog.getPlan(id).pipe(Effect.mapError(unavailable))
        if (Option.isSome(plan)) plans.set(id, plan.value)
      }
      return plans
    })

    /** Puts the project on the latest version of `planId`, unless it holds that plan already. */
    const moveTo = Effect.fn("Subscriptions.moveTo")(function*(project: Project, plan: Plan | undefined) {
      if (plan === undefined || plan.id === project.planId) return false
      yield* projects.put(new Project({ ...project, planId: plan.id, planVersion: plan.version })).pipe(
        Effect.mapError(unavailable)
      )
      return true
    })

    /**
     * Records one subscription event and sets the project where its history leaves it. False when
     * the project is unknown (the event changes nothing).
     */
    const apply = Effect.fn("Subscriptions.apply")(function*(projectId: ProjectId, change: SubscriptionChange) {
      const project = yield* projects.get(projectId).pipe(Effect.mapError(unavailable))
      if (Option.isNone(project)) {
        yield* Effect.logWarning("subscription event for an unknown project", projectId, change.subscriptionId)
        return false
      }
      const state = yield* store.record(projectId, project.value.planId, change).pipe(Effect.mapError(unavailable))
      const plans = yield* latestPlans([state.basePlanId, freePlanId, ...state.changes.map((c) => c.planId)])
      const resolved = resolvePlan(state, (id) => plans.get(id)?.priceCents, freePlanId, yield* Clock.currentTimeMillis)
      yield* store.setPending(projectId, resolved.pending).pipe(Effect.mapError(unavailable))
      yield* moveTo(project.value, plans.get(resolved.planId))
      return true
    })

    /**
     * Applies the pending changes due now (downgrades and cancellations at their period's end): the
     * project moves first and the pending change is cleared after, so a crash between repeats a move
     * that is already made. How many projects moved.
     */
    const applyDue = Effect.fn("Subscriptions.applyDue")(function*(options: { readonly limit: number }) {
      const now = yield* Clock.currentTimeMillis
      const due = yield* store.due({ now, limit: options.limit }).pipe(Effect.mapError(unavailable))
      let moved = 0
      for (const state of due) {
        if (state.pending === undefined) continue
        const project = yield* projects.get(state.projectId).pipe(Effect.mapError(unavailable))
        if (Option.isSome(project)) {
          const plans = yield* latestPlans([state.pending.planId])
          if (yield* moveTo(project.value, plans.get(state.pending.planId))) moved++
        }
        yield* store.clearPending(state.projectId, state.pending).pipe(Effect.mapError(unavailable))
      }
      return moved
    })

    return { apply, applyDue } as const
  })
}) {}
