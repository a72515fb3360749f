import { assert, describe, it } from "@effect/vitest"
import type { EventId, IncomingEvent } from "@tollgate/core"
import { BillingEvent, BillingInbox, ClaimedBillingEvent } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Option } from "effect"
import { unique } from "./fixtures.js"

const incoming = (createdAt: number, fields: Partial<IncomingEvent> = {}): IncomingEvent => ({
  id: unique("evt") as EventId,
  provider: "sandbox",
  type: "checkout.session.completed",
  createdAt,
  payload: { session: unique("cs"), credits: 500 },
  ...fields
})

const ids = (events: ReadonlyArray<BillingEvent>) => events.map((e) => e.id)

/**
 * The BillingInbox contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store. Claims take `now` explicitly, so the clock does not matter.
 */
export const billingInboxContract = (name: string, layer: Layer.Layer<BillingInbox, unknown>) =>
  describe(`BillingInbox contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, BillingInbox>) => Effect.provide(body, layer)

    it.effect("an event is stored pending with no attempts; a duplicate never overwrites it", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        assert.strictEqual(yield* inbox.store(event, 5_000), "stored")
        const stored = Option.getOrThrow(yield* inbox.get(event.id))
        assert.instanceOf(stored, BillingEvent)
        assert.deepStrictEqual(
          { ...stored },
          { ...event, receivedAt: 5_000, status: "pending" as const, attempts: 0 }
        )
        const again = { ...event, type: "charge.refunded", createdAt: 2_000, payload: { other: true } }
        assert.strictEqual(yield* inbox.store(again, 6_000), "duplicate")
        assert.deepStrictEqual(yield* inbox.get(event.id), Option.some(stored))
        assert.isTrue(Option.isNone(yield* inbox.get(unique("evt") as EventId)))
      })))

    it.effect("concurrent stores of one event id: exactly one is stored", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => inbox.store({ ...event, payload: { i } }, 5_000 + i)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((r) => r === "stored").length, 1)
        assert.strictEqual(results.filter((r) => r === "duplicate").length, 7)
      })))

    it.effect("a claim takes the oldest pending events first (created, then received), up to the limit, and counts the attempt", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const newest = incoming(3_000)
        const laterArrival = incoming(1_000)
        const earlierArrival = incoming(1_000)
        const middle = incoming(2_000)
        yield* inbox.store(newest, 7_000)
        yield* inbox.store(laterArrival, 9_000)
        yield* inbox.store(earlierArrival, 8_000)
        yield* inbox.store(middle, 7_500)
        assert.deepStrictEqual(yield* inbox.claim({ now: 100, limit: 0, leaseMs: 1_000 }), [])
        // never claimed: claimable whatever `now`, even before it was received
        const first = yield* inbox.claim({ now: 100, limit: 3, leaseMs: 1_000 })
        assert.deepStrictEqual(ids(first), [earlierArrival.id, laterArrival.id, middle.id])
        assert.isTrue(first.every((e) => e.attempts === 1 && e.status === "pending"))
        assert.strictEqual(Option.getOrThrow(yield* inbox.get(middle.id)).attempts, 1)
        assert.strictEqual(Option.getOrThrow(yield* inbox.get(newest.id)).attempts, 0)
        const rest = yield* inbox.claim({ now: 100, limit: 3, leaseMs: 1_000 })
        assert.deepStrictEqual(ids(rest), [newest.id])
        assert.deepStrictEqual(yield* inbox.claim({ now: 100, limit: 3, leaseMs: 1_000 }), [])
      })))

    it.effect("a claimed event is not claimed again before its lease ends, and comes back once it has", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        yield* inbox.store(event, 1_000)
        assert.deepStrictEqual(ids(yield* inbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })), [event.id])
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_499, limit: 10, leaseMs: 500 }), [])
        // the worker died: the lease ends and another worker gets the event, as a new attempt
        const again = yield* inbox.claim({ now: 1_500, limit: 10, leaseMs: 500 })
        assert.deepStrictEqual(ids(again), [event.id])
        assert.strictEqual(again[0]!.attempts, 2)
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_999, limit: 10, leaseMs: 500 }), [])
      })))

    it.effect("concurrent claims never return the same event", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const events = Array.from({ length: 30 }, (_, i) => incoming(1_000 + (i % 7)))
        yield* Effect.forEach(events, (e) => inbox.store(e, 2_000))
        const claim = (limit: number) => inbox.claim({ now: 3_000, limit, leaseMs: 60_000 })
        const first = (yield* Effect.all(Array.from({ length: 6 }, () => claim(4)), { concurrency: "unbounded" }))
          .flat()
        assert.strictEqual(first.length, 24)
        assert.strictEqual(new Set(ids(first)).size, 24)
        const second = (yield* Effect.all(Array.from({ length: 6 }, () => claim(30)), { concurrency: "unbounded" }))
          .flat()
        assert.strictEqual(second.length, 6)
        assert.sameMembers([...ids(first), ...ids(second)], events.map((e) => e.id))
        assert.isTrue([...first, ...second].every((e) => e.attempts === 1))
        assert.deepStrictEqual(yield* claim(30), [])
      })))

    it.effect("a completed event is processed and never claimed again", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        const waiting = incoming(1_000)
        yield* inbox.store(event, 1_000)
        yield* inbox.store(waiting, 1_000)
        const [claimed] = yield* inbox.claim({ now: 1_000, limit: 1, leaseMs: 500 })
        assert.strictEqual(claimed!.id, event.id)
        assert.isTrue(yield* inbox.complete(event.id, claimed!.leaseToken, 1_200))
        const done = Option.getOrThrow(yield* inbox.get(event.id))
        assert.deepStrictEqual([done.status, done.processedAt, done.attempts], ["processed", 1_200, 1])
        const [next] = yield* inbox.claim({ now: 1_000_000, limit: 10, leaseMs: 500 })
        assert.deepStrictEqual(next!.id, waiting.id)
        assert.isTrue(yield* inbox.complete(waiting.id, next!.leaseToken, 1_000_100))
        // completing again, or a late failure from a stale worker, leaves it processed as it was
        assert.isFalse(yield* inbox.complete(event.id, claimed!.leaseToken, 9_000))
        assert.isFalse(yield* inbox.fail(event.id, claimed!.leaseToken, "stale worker", 2_000_000))
        assert.deepStrictEqual(yield* inbox.get(event.id), Option.some(done))
        assert.deepStrictEqual(yield* inbox.claim({ now: 3_000_000, limit: 10, leaseMs: 500 }), [])
        assert.strictEqual(yield* inbox.store(event, 4_000_000), "duplicate")
        assert.deepStrictEqual(yield* inbox.get(event.id), Option.some(done))
      })))

    it.effect("each claim is a new lease: a different token, the next attempt number", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        yield* inbox.store(event, 1_000)
        const [first] = yield* inbox.claim({ now: 1_000, limit: 1, leaseMs: 500 })
        const [second] = yield* inbox.claim({ now: 1_500, limit: 1, leaseMs: 500 })
        assert.instanceOf(first, ClaimedBillingEvent)
        assert.deepStrictEqual([first!.attempts, second!.attempts], [1, 2])
        assert.isTrue(first!.leaseToken.length > 0)
        assert.notStrictEqual(first!.leaseToken, second!.leaseToken)
      })))

    it.effect("a stale lease token can neither complete nor fail the event; its new holder completes it", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        yield* inbox.store(event, 1_000)
        const [stale] = yield* inbox.claim({ now: 1_000, limit: 1, leaseMs: 500 })
        // the first worker stalls past its lease; another claims the event
        const [current] = yield* inbox.claim({ now: 1_600, limit: 1, leaseMs: 500 })
        assert.strictEqual(current!.attempts, 2)
        const before = Option.getOrThrow(yield* inbox.get(event.id))
        assert.isFalse(yield* inbox.complete(event.id, stale!.leaseToken, 1_700))
        assert.isFalse(yield* inbox.fail(event.id, stale!.leaseToken, "stale worker", 1_700))
        assert.isFalse(yield* inbox.complete(event.id, "not-a-lease", 1_700))
        assert.deepStrictEqual(yield* inbox.get(event.id), Option.some(before))
        // the stale failure did not end the current lease early
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_700, limit: 1, leaseMs: 500 }), [])
        assert.isTrue(yield* inbox.complete(event.id, current!.leaseToken, 1_800))
        const done = Option.getOrThrow(yield* inbox.get(event.id))
        assert.deepStrictEqual([done.status, done.processedAt, done.attempts], ["processed", 1_800, 2])
      })))

    it.effect("a lease that ended is the only one: a failure ends it, and the token does not act twice", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        yield* inbox.store(event, 1_000)
        const [claimed] = yield* inbox.claim({ now: 1_000, limit: 1, leaseMs: 500 })
        assert.isTrue(yield* inbox.fail(event.id, claimed!.leaseToken, "transient", 1_100))
        assert.isFalse(yield* inbox.fail(event.id, claimed!.leaseToken, "again", 1_100))
        assert.isFalse(yield* inbox.complete(event.id, claimed!.leaseToken, 1_100))
        assert.strictEqual(Option.getOrThrow(yield* inbox.get(event.id)).lastError, "transient")
      })))

    it.effect("claiming one event by id: only when it is due, as a new lease", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        assert.isTrue(Option.isNone(yield* inbox.claimEvent(event.id, { now: 1_000, leaseMs: 500 })))
        yield* inbox.store(event, 1_000)
        const claimed = Option.getOrThrow(yield* inbox.claimEvent(event.id, { now: 1_000, leaseMs: 500 }))
        assert.deepStrictEqual([claimed.id, claimed.attempts], [event.id, 1])
        assert.isTrue(Option.isNone(yield* inbox.claimEvent(event.id, { now: 1_499, leaseMs: 500 })))
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_499, limit: 10, leaseMs: 500 }), [])
        const again = Option.getOrThrow(yield* inbox.claimEvent(event.id, { now: 1_500, leaseMs: 500 }))
        assert.strictEqual(again.attempts, 2)
        assert.isFalse(yield* inbox.complete(event.id, claimed.leaseToken, 1_600))
        assert.isTrue(yield* inbox.complete(event.id, again.leaseToken, 1_600))
        assert.isTrue(Option.isNone(yield* inbox.claimEvent(event.id, { now: 9_000, leaseMs: 500 })))
      })))

    it.effect("a failed event stays pending with its error and is claimable again at its retry time, not before", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        yield* inbox.store(event, 1_000)
        const [first] = yield* inbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })
        assert.isTrue(yield* inbox.fail(event.id, first!.leaseToken, "upstream said no", 5_000))
        const failed = Option.getOrThrow(yield* inbox.get(event.id))
        assert.deepStrictEqual([failed.status, failed.lastError, failed.attempts], ["pending", "upstream said no", 1])
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_500, limit: 10, leaseMs: 500 }), [])
        assert.deepStrictEqual(yield* inbox.claim({ now: 4_999, limit: 10, leaseMs: 500 }), [])
        const retried = yield* inbox.claim({ now: 5_000, limit: 10, leaseMs: 500 })
        assert.deepStrictEqual(ids(retried), [event.id])
        assert.strictEqual(retried[0]!.attempts, 2)
        assert.isTrue(yield* inbox.fail(event.id, retried[0]!.leaseToken, "still no", 6_000))
        assert.strictEqual(Option.getOrThrow(yield* inbox.get(event.id)).lastError, "still no")
        const [third] = yield* inbox.claim({ now: 6_000, limit: 10, leaseMs: 500 })
        assert.isTrue(yield* inbox.complete(event.id, third!.leaseToken, 6_100))
        assert.strictEqual(Option.getOrThrow(yield* inbox.get(event.id)).status, "processed")
      })))

    it.effect("a failure ends the lease: a retry time before the lease's end is honoured", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const event = incoming(1_000)
        yield* inbox.store(event, 1_000)
        const [claimed] = yield* inbox.claim({ now: 1_000, limit: 10, leaseMs: 60_000 })
        yield* inbox.fail(event.id, claimed!.leaseToken, "transient", 2_000)
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_999, limit: 10, leaseMs: 60_000 }), [])
        assert.deepStrictEqual(ids(yield* inbox.claim({ now: 2_000, limit: 10, leaseMs: 60_000 })), [event.id])
      })))

    it.effect("a dead event keeps its last error, is never claimed, is listed, and a requeue makes it due with fresh attempts", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const older = incoming(1_000)
        const event = incoming(2_000)
        const other = incoming(3_000)
        yield* Effect.forEach([older, event, other], (e) => inbox.store(e, 1_000))
        const claimed = yield* inbox.claim({ now: 1_000, limit: 2, leaseMs: 500 })
        const [a, b] = claimed
        assert.isTrue(yield* inbox.deadLetter(older.id, a!.leaseToken, "gave up first"))
        assert.isTrue(yield* inbox.deadLetter(event.id, b!.leaseToken, "gave up"))
        // a dead event has no lease any more
        assert.isFalse(yield* inbox.deadLetter(event.id, b!.leaseToken, "again"))
        assert.isFalse(yield* inbox.complete(event.id, b!.leaseToken, 1_100))
        assert.isFalse(yield* inbox.fail(event.id, b!.leaseToken, "again", 1_100))
        const dead = Option.getOrThrow(yield* inbox.get(event.id))
        assert.deepStrictEqual([dead.status, dead.lastError, dead.attempts], ["dead", "gave up", 1])
        assert.deepStrictEqual(ids(yield* inbox.claim({ now: 9_000_000, limit: 10, leaseMs: 500 })), [other.id])
        assert.isTrue(Option.isNone(yield* inbox.claimEvent(event.id, { now: 9_000_000, leaseMs: 500 })))
        assert.deepStrictEqual(ids(yield* inbox.list({ status: "dead", limit: 10 })), [older.id, event.id])
        assert.deepStrictEqual(ids(yield* inbox.list({ status: "dead", limit: 1 })), [older.id])
        assert.deepStrictEqual(yield* inbox.list({ status: "dead", limit: 0 }), [])
        assert.deepStrictEqual(ids(yield* inbox.list({ status: "pending", limit: 10 })), [other.id])
        // only a dead event can be requeued
        assert.isTrue(Option.isNone(yield* inbox.requeue(other.id)))
        assert.isTrue(Option.isNone(yield* inbox.requeue(unique("evt") as EventId)))
        const requeued = Option.getOrThrow(yield* inbox.requeue(event.id))
        assert.deepStrictEqual([requeued.status, requeued.attempts, requeued.lastError], ["pending", 0, "gave up"])
        assert.deepStrictEqual(yield* inbox.get(event.id), Option.some(requeued))
        assert.isTrue(Option.isNone(yield* inbox.requeue(event.id)))
        assert.deepStrictEqual(ids(yield* inbox.list({ status: "dead", limit: 10 })), [older.id])
        const [again] = yield* inbox.claim({ now: 9_000_000, limit: 10, leaseMs: 500 })
        assert.deepStrictEqual([again!.id, again!.attempts], [event.id, 1])
        assert.isTrue(yield* inbox.complete(event.id, again!.leaseToken, 9_000_100))
      })))

    it.effect("completing or failing an unknown event changes nothing", () =>
      run(Effect.gen(function*() {
        const inbox = yield* BillingInbox
        const id = unique("evt") as EventId
        assert.isFalse(yield* inbox.complete(id, "no-lease", 1_000))
        assert.isFalse(yield* inbox.fail(id, "no-lease", "nothing", 1_000))
        assert.isTrue(Option.isNone(yield* inbox.get(id)))
        assert.deepStrictEqual(yield* inbox.claim({ now: 1_000_000, limit: 10, leaseMs: 500 }), [])
      })))
  })
