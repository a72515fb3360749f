import { assert, describe, it } from "@effect/vitest"
import type { MessageId, OutboxMessage } from "@tollgate/core"
import { Outbox } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect } from "effect"
import { projectId, unique } from "./fixtures.js"

type NewMessage = Omit<OutboxMessage, "attempts">

const message = (availableAt: number, fields: Partial<NewMessage> = {}): NewMessage => ({
  id: unique("msg") as MessageId,
  projectId: projectId(),
  topic: "topup.prompt",
  payload: { balance: 12, threshold: 100 },
  availableAt,
  ...fields
})

const ids = (messages: ReadonlyArray<OutboxMessage>) => messages.map((m) => m.id)

/**
 * The Outbox contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store. Claims take `now` explicitly, so the clock does not matter.
 */
export const outboxContract = (name: string, layer: Layer.Layer<Outbox, unknown>) =>
  describe(`Outbox contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, Outbox>) => Effect.provide(body, layer)

    it.effect("enqueuing deduplicates by id and keeps the first message", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const first = message(1_000)
        assert.strictEqual(yield* outbox.enqueue(first), "created")
        assert.strictEqual(
          yield* outbox.enqueue({ ...first, topic: "other", payload: { x: 1 }, availableAt: 0 }),
          "exists"
        )
        const claimed = yield* outbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })
        assert.strictEqual(claimed.length, 1)
        const { attempts, availableAt: _, ...fields } = claimed[0]!
        const { availableAt: __, ...expected } = first
        assert.deepStrictEqual(fields, expected)
        assert.strictEqual(attempts, 1)
      })))

    it.effect("concurrent enqueues of one id: exactly one is created", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const m = message(1_000)
        const codes = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => outbox.enqueue({ ...m, payload: { i } })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(codes.filter((c) => c === "created").length, 1)
        assert.strictEqual((yield* outbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })).length, 1)
      })))

    it.effect("a claim takes due messages only, longest waiting first, up to the limit, and counts the attempt", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const late = message(3_000)
        const oldest = message(1_000)
        const middle = message(2_000)
        const future = message(9_000)
        yield* Effect.forEach([late, oldest, middle, future], (m) => outbox.enqueue(m))
        assert.deepStrictEqual(yield* outbox.claim({ now: 999, limit: 10, leaseMs: 60_000 }), [])
        assert.deepStrictEqual(yield* outbox.claim({ now: 5_000, limit: 0, leaseMs: 60_000 }), [])
        const first = yield* outbox.claim({ now: 5_000, limit: 2, leaseMs: 60_000 })
        assert.deepStrictEqual(ids(first), [oldest.id, middle.id])
        assert.isTrue(first.every((m) => m.attempts === 1))
        assert.deepStrictEqual(ids(yield* outbox.claim({ now: 5_000, limit: 10, leaseMs: 60_000 })), [late.id])
        assert.deepStrictEqual(yield* outbox.claim({ now: 8_999, limit: 10, leaseMs: 60_000 }), [])
        assert.deepStrictEqual(ids(yield* outbox.claim({ now: 9_000, limit: 10, leaseMs: 60_000 })), [future.id])
      })))

    it.effect("a claimed message is not claimed again before its lease ends, and comes back once it has", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const m = message(1_000)
        yield* outbox.enqueue(m)
        assert.deepStrictEqual(ids(yield* outbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })), [m.id])
        assert.deepStrictEqual(yield* outbox.claim({ now: 1_499, limit: 10, leaseMs: 500 }), [])
        const again = yield* outbox.claim({ now: 1_500, limit: 10, leaseMs: 500 })
        assert.deepStrictEqual(ids(again), [m.id])
        assert.strictEqual(again[0]!.attempts, 2)
      })))

    it.effect("concurrent claims never return the same message", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const messages = Array.from({ length: 30 }, (_, i) => message(1_000 + (i % 5)))
        yield* Effect.forEach(messages, (m) => outbox.enqueue(m))
        const claim = (limit: number) => outbox.claim({ now: 2_000, limit, leaseMs: 60_000 })
        const first = (yield* Effect.all(Array.from({ length: 6 }, () => claim(4)), { concurrency: "unbounded" }))
          .flat()
        assert.strictEqual(first.length, 24)
        assert.strictEqual(new Set(ids(first)).size, 24)
        const second = (yield* Effect.all(Array.from({ length: 6 }, () => claim(30)), { concurrency: "unbounded" }))
          .flat()
        assert.sameMembers([...ids(first), ...ids(second)], messages.map((m) => m.id))
        assert.deepStrictEqual(yield* claim(30), [])
      })))

    it.effect("a completed message leaves delivery for good, even if enqueued again", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const m = message(1_000)
        const other = message(1_000)
        yield* outbox.enqueue(m)
        yield* outbox.enqueue(other)
        yield* outbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })
        yield* outbox.complete(m.id)
        assert.deepStrictEqual(ids(yield* outbox.claim({ now: 1_000_000, limit: 10, leaseMs: 500 })), [other.id])
        assert.strictEqual(yield* outbox.enqueue(m), "exists")
        yield* outbox.complete(m.id)
        yield* outbox.retry(m.id, "stale worker", 0)
        assert.deepStrictEqual(ids(yield* outbox.claim({ now: 2_000_000, limit: 10, leaseMs: 500 })), [other.id])
      })))

    it.effect("a retried message waits until its new time, then is claimed as the next attempt", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const m = message(1_000)
        yield* outbox.enqueue(m)
        yield* outbox.claim({ now: 1_000, limit: 10, leaseMs: 500 })
        yield* outbox.retry(m.id, "smtp down", 10_000)
        assert.deepStrictEqual(yield* outbox.claim({ now: 1_500, limit: 10, leaseMs: 500 }), [])
        assert.deepStrictEqual(yield* outbox.claim({ now: 9_999, limit: 10, leaseMs: 500 }), [])
        const again = yield* outbox.claim({ now: 10_000, limit: 10, leaseMs: 500 })
        assert.deepStrictEqual(ids(again), [m.id])
        assert.strictEqual(again[0]!.attempts, 2)
        yield* outbox.complete(m.id)
        assert.deepStrictEqual(yield* outbox.claim({ now: 1_000_000, limit: 10, leaseMs: 500 }), [])
      })))

    it.effect("a retry ends the lease: a time before the lease's end is honoured", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const m = message(1_000)
        yield* outbox.enqueue(m)
        yield* outbox.claim({ now: 1_000, limit: 10, leaseMs: 60_000 })
        yield* outbox.retry(m.id, "transient", 2_000)
        assert.deepStrictEqual(yield* outbox.claim({ now: 1_999, limit: 10, leaseMs: 60_000 }), [])
        assert.deepStrictEqual(ids(yield* outbox.claim({ now: 2_000, limit: 10, leaseMs: 60_000 })), [m.id])
      })))

    it.effect("completing or retrying an unknown message changes nothing", () =>
      run(Effect.gen(function*() {
        const outbox = yield* Outbox
        const id = unique("msg") as MessageId
        yield* outbox.complete(id)
        yield* outbox.retry(id, "nothing", 0)
        assert.deepStrictEqual(yield* outbox.claim({ now: 1_000_000, limit: 10, leaseMs: 500 }), [])
        assert.strictEqual(yield* outbox.enqueue(message(0, { id })), "created")
      })))
  })
