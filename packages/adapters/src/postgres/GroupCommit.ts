/**
 * Group commit: callers' writes are queued and written `maxSize` at a time, one statement (and
 * one commit) per group, `workers` groups in flight. Each caller waits for its own write's
 * outcome. Under low load a group is one write, so nothing waits for company.
 */
import type { Scope } from "effect"
import { Chunk, Deferred, Effect, Exit, Queue } from "effect"

export interface GroupCommitOptions {
  readonly maxSize: number
  readonly workers: number
}

/**
 * `write` runs a group and returns one outcome per item, in order. A group that fails as a whole
 * fails every caller in it with that error.
 */
export const makeGroupCommit = <P, A, E>(
  write: (group: ReadonlyArray<P>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>, E>,
  options: GroupCommitOptions
): Effect.Effect<(params: P) => Effect.Effect<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    type Pending = { readonly params: P; readonly done: Deferred.Deferred<A, E> }
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Pending>(), Queue.shutdown)
    const flush = (group: ReadonlyArray<Pending>) =>
      write(group.map((p) => p.params)).pipe(
        Effect.flatMap((outcomes) =>
          Effect.forEach(
            group,
            (p, i) =>
              Deferred.done(p.done, outcomes[i] ?? Exit.die(new Error(`group commit: no outcome for item ${i}`)))
          )
        ),
        Effect.catchAll((e) => Effect.forEach(group, (p) => Deferred.fail(p.done, e)))
      )
    const worker = Queue.takeBetween(queue, 1, options.maxSize).pipe(
      Effect.flatMap((chunk) => flush(Chunk.toReadonlyArray(chunk))),
      Effect.forever
    )
    yield* Effect.replicateEffect(Effect.forkScoped(worker), options.workers)
    return (params) =>
      Effect.flatMap(
        Deferred.make<A, E>(),
        (done) => Queue.offer(queue, { params, done }).pipe(Effect.zipRight(Deferred.await(done)))
      )
  })
