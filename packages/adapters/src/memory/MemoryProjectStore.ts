import type { Project, ProjectId } from "@tollgate/core"
import { ProjectStore } from "@tollgate/core"
import { Effect, Layer, Option } from "effect"

/** Oldest first; equal creation times by id, so every adapter lists in one order. */
const oldestFirst = (a: Project, b: Project): number =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Projects in process memory: `put` creates or replaces a project whole. */
export const makeMemoryProjectStore = Effect.sync(() => {
  const projects = new Map<ProjectId, Project>()

  const get = Effect.fnUntraced(function*(id: ProjectId) {
    return Option.fromNullable(projects.get(id))
  })

  const put = Effect.fnUntraced(function*(project: Project) {
    projects.set(project.id, project)
  })

  return ProjectStore.of({
    get,
    list: Effect.sync(() => [...projects.values()].sort(oldestFirst)),
    put
  })
})

export const MemoryProjectStoreLive = Layer.effect(ProjectStore, makeMemoryProjectStore)
