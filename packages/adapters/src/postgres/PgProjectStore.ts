import { SqlClient } from "@effect/sql"
import type { ProjectId } from "@tollgate/core"
import { Project, ProjectStore, ProjectStoreUnavailable } from "@tollgate/core"
import { Effect, Layer, Option, Schema } from "effect"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; the table bounds every value to a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

const ProjectRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  plan_id: Schema.String,
  plan_version: Schema.Number,
  created_at: Int8
})

const ProjectFromRow = Schema.transform(ProjectRow, Project, {
  strict: true,
  decode: (row) => ({
    id: row.id,
    name: row.name,
    planId: row.plan_id,
    planVersion: row.plan_version,
    createdAt: row.created_at
  }),
  encode: (project) => ({
    id: project.id,
    name: project.name,
    plan_id: project.planId,
    plan_version: project.planVersion,
    created_at: project.createdAt
  })
})

const decodeProjects = Schema.decodeUnknown(Schema.Array(ProjectFromRow))
const encodeProject = Schema.encode(ProjectFromRow)

const orUnavailable = outage(
  (message) => new ProjectStoreUnavailable({ message }),
  "a stored project could not be read"
)

/** Projects in PostgreSQL: `put` is one upsert that replaces the whole row. */
export const makePgProjectStore = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const get = Effect.fnUntraced(function*(id: ProjectId) {
    const rows = yield* decodeProjects(yield* sql`SELECT * FROM projects WHERE id = ${id}`)
    return Option.fromNullable(rows[0])
  }, orUnavailable)

  const put = Effect.fnUntraced(function*(project: Project) {
    const row = yield* encodeProject(project)
    yield* sql`
      INSERT INTO projects ${sql.insert(row)}
      ON CONFLICT (id) DO UPDATE SET
        name = excluded.name,
        plan_id = excluded.plan_id,
        plan_version = excluded.plan_version,
        created_at = excluded.created_at`
  }, orUnavailable)

  const list = sql`SELECT * FROM projects ORDER BY created_at, id`.pipe(
    Effect.flatMap(decodeProjects),
    orUnavailable,
    Effect.withSpan("ProjectStore.list")
  )

  return ProjectStore.of({ get, list, put })
})

export const PgProjectStoreLive = Layer.effect(ProjectStore, makePgProjectStore)
