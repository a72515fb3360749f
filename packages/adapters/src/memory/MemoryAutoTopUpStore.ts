import type {
  AutoTopUpSettings,
  AutoTopUpState,
  BeginRequest,
  ChargeResult,
  NotificationEndpoint,
  ProjectId
} from "@tollgate/core"
import { AutoTopUpStore, beginTransition, emptyAutoTopUpState, finishTransition } from "@tollgate/core"
import { Effect, Layer } from "effect"

/**
 * Auto top-up state in process memory. Each transition reads and writes the project's state in
 * one synchronous step, so it is atomic as the database's row lock makes the PostgreSQL one.
 */
export const makeMemoryAutoTopUpStore = Effect.sync(() => {
  const states = new Map<ProjectId, AutoTopUpState>()
  const read = (projectId: ProjectId) => states.get(projectId) ?? emptyAutoTopUpState(projectId)

  const get = Effect.fnUntraced(function*(projectId: ProjectId) {
    return read(projectId)
  })

  const configure = Effect.fnUntraced(
    function*(projectId: ProjectId, settings: AutoTopUpSettings) {
      const next: AutoTopUpState = { ...read(projectId), settings }
      states.set(projectId, next)
      return next
    }
  )

  const setEndpoint = Effect.fnUntraced(
    function*(projectId: ProjectId, endpoint: NotificationEndpoint) {
      states.set(projectId, { ...read(projectId), endpoint })
    }
  )

  const begin = Effect.fnUntraced(function*(projectId: ProjectId, request: BeginRequest) {
    const [result, next] = beginTransition(read(projectId), request)
    states.set(projectId, next)
    return result
  })

  const finish = Effect.fnUntraced(
    function*(projectId: ProjectId, attempt: number, result: ChargeResult) {
      const [ended, next] = finishTransition(read(projectId), attempt, result)
      if (ended) states.set(projectId, next)
      return ended
    }
  )

  const stalled = Effect.fnUntraced(
    function*(options: { readonly startedBefore: number; readonly limit: number }) {
      return [...states.values()]
        .filter((s) => s.phase === "charging" && s.current !== undefined && s.current.startedAt < options.startedBefore)
        .sort((a, b) =>
          a.current!.startedAt - b.current!.startedAt ||
          (a.projectId < b.projectId ? -1 : a.projectId > b.projectId ? 1 : 0)
        )
        .slice(0, Math.max(0, options.limit))
    }
  )

  return AutoTopUpStore.of({ get, configure, setEndpoint, begin, finish, stalled })
})

export const MemoryAutoTopUpStoreLive = Layer.effect(AutoTopUpStore, makeMemoryAutoTopUpStore)
