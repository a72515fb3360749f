import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { makeGroupCommit } from "../../src/postgres/GroupCommit.js"

/** A write that records its groups and answers each item with its own value, or as told. */
const recording = <E = never>(answer: (n: number) => Exit.Exit<number, E> = Exit.succeed) => {
  const groups: Array<ReadonlyArray<number>> = []
  const write = (group: ReadonlyArray<number>) =>
    Effect.sync(() => {
      groups.push(group)
      return group.map(answer)
    })
  return { groups, write }
}

describe("group commit", () => {
  it.scoped("every caller gets its own item's outcome; concurrent writes share groups of at most maxSize", () =>
    Effect.gen(function*() {
      const { groups, write } = recording((n) => n % 7 === 0 ? Exit.fail(`refused ${n}`) : Exit.succeed(n * 2))
      const commit = yield* makeGroupCommit(write, { maxSize: 16, workers: 1 })
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => Effect.either(commit(i)),
        { concurrency: "unbounded" }
      )
      outcomes.forEach((o, i) =>
        assert.deepStrictEqual(o._tag === "Right" ? o.right : o.left, i % 7 === 0 ? `refused ${i}` : i * 2)
      )
      assert.isTrue(groups.every((g) => g.length <= 16))
      assert.isBelow(groups.length, 200 / 4)
      assert.deepStrictEqual(groups.flat().sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i))
    }))

  it.scoped("a group that fails, or dies, fails each of its callers the same way (and the next group still runs)", () =>
    Effect.gen(function*() {
      let mode: "fail" | "die" | "ok" = "fail"
      const commit = yield* makeGroupCommit(
        (group: ReadonlyArray<number>) =>
          mode === "fail"
            ? Effect.fail("down")
            : mode === "die"
            ? Effect.die("bug")
            : Effect.succeed(group.map((n) => Exit.succeed(n))),
        { maxSize: 8, workers: 2 }
      )
      const failed = yield* Effect.forEach([1, 2, 3], (i) => Effect.exit(commit(i)), { concurrency: "unbounded" })
      assert.isTrue(failed.every((e) => Exit.isFailure(e) && e.cause._tag === "Fail" && e.cause.error === "down"))
      mode = "die"
      const died = yield* Effect.forEach([1, 2], (i) => Effect.exit(commit(i)), { concurrency: "unbounded" })
      assert.isTrue(died.every((e) => Exit.isFailure(e) && e.cause._tag === "Die"))
      mode = "ok"
      assert.strictEqual(yield* commit(5), 5)
    }))

  it.scoped("a write that throws while it is being built is a defect of its group; the next group still runs", () =>
    Effect.gen(function*() {
      let throwing = true
      const commit = yield* makeGroupCommit(
        (group: ReadonlyArray<number>) => {
          if (throwing) throw new Error("cannot encode")
          return Effect.succeed(group.map((n) => Exit.succeed(n)))
        },
        { maxSize: 8, workers: 1 }
      )
      const died = yield* Effect.exit(commit(1))
      assert.isTrue(Exit.isFailure(died) && died.cause._tag === "Die")
      throwing = false
      assert.strictEqual(yield* commit(2), 2)
    }))

  it.scopedLive("at most `workers` groups are under way; the rest wait and go together", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      let running = 0
      let most = 0
      const sizes: Array<number> = []
      const commit = yield* makeGroupCommit(
        (group: ReadonlyArray<number>) =>
          Effect.gen(function*() {
            running++
            most = Math.max(most, running)
            sizes.push(group.length)
            yield* Deferred.await(release)
            running--
            return group.map((n) => Exit.succeed(n))
          }),
        { maxSize: 10, workers: 2 }
      )
      const all = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 32 }, (_, i) => i), commit, { concurrency: "unbounded" })
      )
      yield* Effect.sleep("20 millis")
      assert.strictEqual(running, 2)
      assert.strictEqual(sizes.length, 2)
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual(yield* Fiber.join(all), Array.from({ length: 32 }, (_, i) => i))
      assert.strictEqual(most, 2)
      assert.isTrue(sizes.every((n) => n <= 10))
      assert.strictEqual(sizes.reduce((a, b) => a + b, 0), 32)
    }))

  it.scoped("a caller that goes away does not stop its write", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const written: Array<number> = []
      const commit = yield* makeGroupCommit(
        (group: ReadonlyArray<number>) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(started, undefined)
            yield* Deferred.await(release)
            for (const n of group) written.push(n)
            return group.map((n) => Exit.succeed(n))
          }),
        { maxSize: 10, workers: 1 }
      )
      const caller = yield* Effect.fork(commit(42))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(caller)
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual(yield* commit(43), 43)
      assert.deepStrictEqual(written, [42, 43])
    }))

  it.effect("closing the scope interrupts the writes under way and the callers still waiting", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const started = yield* Deferred.make<void>()
      let interrupted = false
      const commit = yield* makeGroupCommit(
        (group: ReadonlyArray<number>) =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true))),
            Effect.as(group.map((n) => Exit.succeed(n)))
          ),
        { maxSize: 10, workers: 1 }
      ).pipe(Scope.extend(scope))
      const underWay = yield* Effect.fork(commit(1))
      yield* Deferred.await(started)
      const queued = yield* Effect.fork(commit(2))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(interrupted)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(underWay)))
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(queued)))
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(commit(3))))
    }))
})
