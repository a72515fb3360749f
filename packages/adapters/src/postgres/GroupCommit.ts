/**
 * Group commit: callers' writes are queued and written `maxSize` at a time, one statement (and
 * one commit) per group, `workers` groups in flight. Each caller waits for its own write's
 * outcome. Under low load a group is one write, so nothing waits for company.
 *
 * The queue is a plain array and each caller waits in `Effect.async`: this runs once per usage
 * row and per batched ledger write, and an Effect `Queue` with a `Deferred` per item cost about
 * 20 µs of CPU per item (measured against a write that does nothing), as much as the row's insert.
 */
import type { Scope } from "effect"
import { Effect, Exit, Fiber, Runtime } from "effect"

export interface GroupCommitOptions {
  readonly maxSize: number
  readonly workers: number
}

/**
 * `write` runs a group and returns one outcome per item, in order. A group that fails as a whole
 * fails every caller in it with that error (a defect, with that defect). A caller that goes away
 * while its write is queued or under way does not stop it. When the scope closes, groups under
 * way are interrupted, and so are their callers and the callers still queued.
 */
export const makeGroupCommit = <P, A, E>(
  write: (group: ReadonlyArray<P>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, E>,
  options: GroupCommitOptions
): Effect.Effect<(params: P) => Effect.Effect<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    interface Pending {
      readonly params: P
      /** Cleared once answered, or when its caller went away. */
      resume: ((outcome: Effect.Effect<A, E>) => void) | undefined
    }
    const maxSize = Math.max(1, options.maxSize)
    const workers = Math.max(1, options.workers)
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    let queue: Array<Pending> = []
    let scheduled = false
    let closed = false
    const running = new Set<Fiber.RuntimeFiber<ReadonlyArray<Exit.Exit<A, E>>, E>>()

    const answer = (p: Pending, outcome: Effect.Effect<A, E>) => {
      const resume = p.resume
      p.resume = undefined
      resume?.(outcome)
    }

    const flush = () => {
      scheduled = false
      while (!closed && running.size < workers && queue.length > 0) {
        const group = queue.length <= maxSize ? queue : queue.slice(0, maxSize)
        queue = queue.length <= maxSize ? [] : queue.slice(maxSize)
        // suspended: a write that throws while being built is a defect of its group, not of the caller
        const fiber = runFork(Effect.suspend(() => write(group.map((p) => p.params))))
        running.add(fiber)
        fiber.addObserver((exit) => {
          running.delete(fiber)
          if (Exit.isSuccess(exit)) {
            const outcomes = exit.value
            for (let i = 0; i < group.length; i++) {
              answer(group[i]!, outcomes[i] ?? Exit.die(new Error(`group commit: no outcome for item ${i}`)))
            }
          } else {
            const failed = Exit.failCause(exit.cause)
            for (const p of group) answer(p, failed)
          }
          flush()
        })
      }
    }

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const waiting = queue
        queue = []
        for (const p of waiting) answer(p, Effect.interrupt)
        return Fiber.interruptAll(running)
      })
    )

    return (params) =>
      Effect.async<A, E>((resume) => {
        if (closed) return resume(Effect.interrupt)
        const p: Pending = { params, resume }
        queue.push(p)
        // the first write of an idle moment waits for the rest of this turn's writes to join it
        if (!scheduled && running.size < workers) {
          scheduled = true
          queueMicrotask(flush)
        }
        return Effect.sync(() => {
          p.resume = undefined
        })
      })
  })
