import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive } from "@tollgate/adapters"
import type { BillingAction, IncomingEvent, PlanId, ProjectId } from "@tollgate/core"
import { Billing, Catalog, defaultPlans, PlanChangeStore, Project, ProjectStore, Subscriptions } from "@tollgate/core"
import { Effect, FastCheck as fc, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import { sweepPlanChanges } from "../src/PlanChangeLoop.js"
import { stripeTranslate } from "../src/StripeTranslate.js"
import { stripeEvent, subscription } from "./stripeEvents.js"

const project = "prj_sub" as ProjectId
const owned = { project_id: project }
const T0 = 1_700_000_000

const changed = (fields: Partial<Extract<BillingAction, { _tag: "PlanChanged" }>>): BillingAction => ({
  _tag: "PlanChanged",
  projectId: project,
  planId: "pro" as PlanId,
  subscriptionId: "sub_1",
  effectiveAt: T0 * 1000,
  version: T0,
  reason: "created",
  ended: false,
  ...fields
})

describe("stripeTranslate: subscriptions", () => {
  const periodEnd = T0 + 30 * 86_400

  it("a created subscription moves its project to the plan its price names, from the event's time", () => {
    const event = stripeEvent(
      "evt_c",
      "customer.subscription.created",
      subscription({ planId: "pro", metadata: owned, periodEnd }),
      { created: T0 }
    )
    assert.deepStrictEqual(stripeTranslate(event), [changed({})])
  })

  it("the plan may be on the subscription's metadata, and the period on the subscription (older API versions)", () => {
    const sub = subscription({ metadata: { ...owned, plan_id: "basic" }, periodEnd })
    const items = { object: "list", data: [{ id: "si_1", price: { id: "price_1", unit_amount: 900, metadata: {} } }] }
    const event = stripeEvent("evt_u", "customer.subscription.updated", { ...sub, items }, { created: T0 + 5 })
    assert.deepStrictEqual(stripeTranslate(event), [
      changed({ planId: "basic" as PlanId, version: T0 + 5, effectiveAt: periodEnd * 1000, reason: "upgraded" })
    ])
  })

  it("an update says downgraded when the previous price was dearer; the change is for the period's end", () => {
    const event = stripeEvent(
      "evt_u",
      "customer.subscription.updated",
      subscription({ planId: "basic", unitAmount: 1900, metadata: owned, periodEnd }),
      {
        created: T0 + 9,
        previous: { items: { object: "list", data: [{ price: { id: "price_pro", unit_amount: 9900, metadata: {} } }] } }
      }
    )
    assert.deepStrictEqual(stripeTranslate(event), [
      changed({ planId: "basic" as PlanId, version: T0 + 9, effectiveAt: periodEnd * 1000, reason: "downgraded" })
    ])
  })

  it("cancel at the period's end, and a deletion, are cancellations; a deletion ends the subscription", () => {
    const cancelling = stripeEvent(
      "evt_u",
      "customer.subscription.updated",
      subscription({ planId: "pro", metadata: owned, periodEnd, cancel_at_period_end: true }),
      { created: T0 + 1 }
    )
    assert.deepStrictEqual(stripeTranslate(cancelling), [
      changed({ version: T0 + 1, effectiveAt: periodEnd * 1000, reason: "cancelled" })
    ])
    const deleted = stripeEvent(
      "evt_d",
      "customer.subscription.deleted",
      subscription({ planId: "pro", metadata: owned, periodEnd, status: "canceled", ended_at: T0 + 2 }),
      { created: T0 + 3 }
    )
    assert.deepStrictEqual(stripeTranslate(deleted), [
      changed({ version: T0 + 3, effectiveAt: (T0 + 2) * 1000, reason: "cancelled", ended: true })
    ])
  })

  it("a subscription waiting for its first payment moves nothing until it is active", () => {
    for (const status of ["incomplete", "incomplete_expired"]) {
      const sub = subscription({ planId: "pro", metadata: owned, periodEnd, status })
      assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_c", "customer.subscription.created", sub)), [], status)
    }
    const active = stripeEvent(
      "evt_u",
      "customer.subscription.updated",
      subscription({ planId: "pro", metadata: owned, periodEnd }),
      { created: T0, previous: { status: "incomplete" } }
    )
    assert.deepStrictEqual(stripeTranslate(active), [
      changed({ effectiveAt: periodEnd * 1000, reason: "upgraded" })
    ])
  })

  it("without a project or a plan in the metadata, a subscription event moves nothing", () => {
    for (
      const type of ["customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"]
    ) {
      assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_1", type, subscription({ planId: "pro" }))), [], type)
      assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_2", type, subscription({ metadata: owned }))), [], type)
    }
  })
})

/** The memory stack, the default plans, and one project on the free plan. */
const StackLive = Layer.effectDiscard(
  Effect.gen(function*() {
    const catalog = yield* Catalog
    for (const plan of defaultPlans) yield* catalog.putPlan(plan)
    yield* (yield* ProjectStore).put(
      new Project({ id: project, name: "Subscriber", planId: "free" as PlanId, planVersion: 1, createdAt: 0 })
    )
  })
).pipe(
  Layer.provideMerge(Billing.Default.pipe(Layer.provideMerge(Subscriptions.Default))),
  Layer.provideMerge(MemoryStackLive)
)

const apply = (...events: ReadonlyArray<IncomingEvent>) =>
  Effect.flatMap(Billing, (billing) => Effect.forEach(events, (e) => billing.applyBillingEvent(e, stripeTranslate)))

const where = Effect.gen(function*() {
  const held = Option.getOrThrow(yield* (yield* ProjectStore).get(project))
  const state = yield* (yield* PlanChangeStore).get(project)
  return {
    planId: held.planId,
    planVersion: held.planVersion,
    pending: Option.getOrUndefined(state)?.pending
  }
})

const subEvent = (
  id: string,
  type: string,
  created: number,
  fields: Parameters<typeof subscription>[0]
) => stripeEvent(id, type, subscription({ metadata: owned, ...fields }), { created })

describe("subscriptions change the project's plan", () => {
  const periodEnd = T0 + 30 * 86_400

  it.effect("an upgrade applies at once; a downgrade only when the sweep runs after the period's end", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0 * 1000)
      yield* apply(subEvent("evt_c", "customer.subscription.created", T0, { planId: "pro", periodEnd }))
      assert.deepStrictEqual(yield* where, { planId: "pro" as PlanId, planVersion: 1, pending: undefined })
      yield* apply(subEvent("evt_d", "customer.subscription.updated", T0 + 60, { planId: "basic", periodEnd }))
      const pending = { planId: "basic" as PlanId, effectiveAt: periodEnd * 1000, reason: "downgraded" as const }
      assert.deepStrictEqual(yield* where, { planId: "pro" as PlanId, planVersion: 1, pending })
      // the sweep before the period's end moves nothing
      yield* TestClock.setTime(periodEnd * 1000 - 1)
      assert.strictEqual(yield* sweepPlanChanges, 0)
      assert.deepStrictEqual((yield* where).planId, "pro")
      yield* TestClock.setTime(periodEnd * 1000)
      assert.strictEqual(yield* sweepPlanChanges, 1)
      assert.deepStrictEqual(yield* where, { planId: "basic" as PlanId, planVersion: 1, pending: undefined })
      assert.strictEqual(yield* sweepPlanChanges, 0)
      // an older event arriving now changes nothing: history already ends on basic
      yield* apply(subEvent("evt_old", "customer.subscription.updated", T0 + 30, { planId: "pro", periodEnd }))
      assert.deepStrictEqual(yield* where, { planId: "basic" as PlanId, planVersion: 1, pending: undefined })
    }).pipe(Effect.provide(StackLive)))

  it.effect("an upgrade moves to the plan's latest version; a deletion beats any update of its subscription", () =>
    Effect.gen(function*() {
      const catalog = yield* Catalog
      const pro = Option.getOrThrow(yield* catalog.getPlan("pro" as PlanId))
      yield* catalog.putPlan({ ...pro, name: "Pro 2" })
      yield* apply(
        subEvent("evt_x", "customer.subscription.deleted", T0 + 5, { planId: "pro", periodEnd, ended_at: periodEnd }),
        subEvent("evt_c", "customer.subscription.created", T0, { planId: "pro", periodEnd }),
        // later than the deletion, yet of a deleted subscription
        subEvent("evt_u", "customer.subscription.updated", T0 + 9, { planId: "basic", periodEnd })
      )
      assert.deepStrictEqual(yield* where, {
        planId: "pro" as PlanId,
        planVersion: 2,
        pending: { planId: "free" as PlanId, effectiveAt: periodEnd * 1000, reason: "cancelled" }
      })
    }).pipe(Effect.provide(StackLive)))
})

/** One subscription's life in Stripe's order: created, updates (plan moves, cancel and undo), maybe deleted. */
interface Life {
  readonly created: string
  readonly updates: ReadonlyArray<{ readonly plan: string; readonly cancel: boolean; readonly gap: number }>
  readonly deleted: { readonly gap: number } | null
  readonly periodEnd: number
}

const plans = ["free", "basic", "pro"] as const

const lifeArb: fc.Arbitrary<Life> = fc.record({
  created: fc.constantFrom(...plans),
  updates: fc.array(
    fc.record({ plan: fc.constantFrom(...plans), cancel: fc.boolean(), gap: fc.integer({ min: 0, max: 40 }) }),
    { maxLength: 6 }
  ),
  deleted: fc.option(fc.record({ gap: fc.integer({ min: 0, max: 40 }) }), { nil: null }),
  // some period ends fall between the events, some after all of them
  periodEnd: fc.integer({ min: 1, max: 300 })
})

/** The distinct events of up to two subscriptions (the second starts after the first's deletion). */
const timeline = (lives: ReadonlyArray<Life>): ReadonlyArray<IncomingEvent> => {
  let at = T0
  let count = 0
  return lives.flatMap((life, n) => {
    const id = `sub_${n}`
    const periodEnd = at + life.periodEnd
    const event = (type: string, fields: Parameters<typeof subscription>[0]) =>
      subEvent(`evt_${count++}`, type, at, { id, periodEnd, ...fields })
    const events = [event("customer.subscription.created", { planId: life.created })]
    for (const update of life.updates) {
      at += update.gap
      events.push(event("customer.subscription.updated", { planId: update.plan, cancel_at_period_end: update.cancel }))
    }
    if (life.deleted !== null) {
      at += life.deleted.gap
      events.push(event("customer.subscription.deleted", { planId: "basic", ended_at: at }))
    }
    at += 1
    return events
  })
}

const scenarioArb = fc.array(lifeArb, { minLength: 1, maxLength: 2 }).chain((lives) => {
  const events = timeline(lives)
  return fc.record({
    events: fc.constant(events),
    // each event delivered one to three times (the inbox stores one), some re-processed by a stale worker
    deliveries: fc.shuffledSubarray(
      events.flatMap((event) => [event, event, event]).map((event, i) => ({ event, reprocess: i % 3 === 1 })),
      { minLength: events.length * 3, maxLength: events.length * 3 }
    ).chain((all) =>
      fc.array(fc.boolean(), { minLength: all.length, maxLength: all.length }).map((keep) =>
        all.filter((d, i) => keep[i] || all.findIndex((x) => x.event === d.event) === i)
      )
    )
  })
})

const settle = (deliveries: ReadonlyArray<{ readonly event: IncomingEvent; readonly reprocess: boolean }>) =>
  Effect.gen(function*() {
    const billing = yield* Billing
    for (const { event, reprocess } of deliveries) {
      yield* billing.applyBillingEvent(event, stripeTranslate)
      if (reprocess) yield* billing.process({ ...event, leaseToken: "ended" }, stripeTranslate)
    }
    return yield* where
  }).pipe(Effect.provide(StackLive))

describe("subscription events in any order", () => {
  it.effect.prop(
    "any duplication and order ends on the plan and pending change of the distinct events in their true order",
    { scenario: scenarioArb },
    ({ scenario }) =>
      Effect.gen(function*() {
        const expected = yield* settle(scenario.events.map((event) => ({ event, reprocess: false })))
        const actual = yield* settle(scenario.deliveries)
        assert.deepStrictEqual(actual, expected)
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
    { fastCheck: { numRuns: 300 } }
  )
})
