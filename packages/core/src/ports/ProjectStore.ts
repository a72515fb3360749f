import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { ProjectId } from "../domain/Ids.js"
import type { Project } from "../domain/Project.js"

export class ProjectStoreUnavailable extends Schema.TaggedError<ProjectStoreUnavailable>()("ProjectStoreUnavailable", {
  message: Schema.String
}) {}

export class ProjectStore extends Context.Tag("@tollgate/core/ProjectStore")<ProjectStore, {
  readonly get: (id: ProjectId) => Effect.Effect<Option.Option<Project>, ProjectStoreUnavailable>
  readonly list: Effect.Effect<ReadonlyArray<Project>, ProjectStoreUnavailable>
  /** Creates or replaces the project (a plan change is a put with the new plan and version). */
  readonly put: (project: Project) => Effect.Effect<void, ProjectStoreUnavailable>
}>() {}
