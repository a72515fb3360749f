import { SqlClient } from "@effect/sql"
import type { DatasetId, PlanDraft, PlanId, RouteId } from "@tollgate/core"
import { Catalog, CatalogUnavailable, Dataset, Plan, Route } from "@tollgate/core"
import { Effect, Layer, Option, Schema } from "effect"
import { outage } from "./Outage.js"

/** A row of `plan_versions` as read: the version column plus the body it was stored without. */
const PlanRow = Schema.Struct({ version: Schema.Int, body: Schema.Object })

const decodePlanRow = Schema.decodeUnknown(PlanRow)
const decodePlanFields = Schema.decodeUnknown(Plan)
const encodePlan = Schema.encode(Plan)

const decodePlan = (row: unknown) =>
  Effect.flatMap(decodePlanRow(row), ({ body, version }) => decodePlanFields({ ...body, version }))

const decodeRoute = Schema.decodeUnknown(Route)
const encodeRoute = Schema.encode(Route)

const DatasetRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  contributor: Schema.String,
  share_bps: Schema.Number
})

const DatasetFromRow = Schema.transform(DatasetRow, Dataset, {
  strict: true,
  decode: (row) => ({ id: row.id, name: row.name, contributor: row.contributor, shareBps: row.share_bps }),
  encode: (dataset) => ({
    id: dataset.id,
    name: dataset.name,
    contributor: dataset.contributor,
    share_bps: dataset.shareBps
  })
})

const decodeDatasets = Schema.decodeUnknown(Schema.Array(DatasetFromRow))
const encodeDataset = Schema.encode(DatasetFromRow)

/**
 * How many times `putPlan` recomputes the next version after losing a race for it. Every round
 * lets at least one writer through, so this only bounds a pathological pile-up.
 */
const maxVersionAttempts = 100

const orUnavailable = outage(
  (message) => new CatalogUnavailable({ message }),
  "a stored catalog entry could not be read"
)

/**
 * The catalog in PostgreSQL. Plans and routes are stored as their Schema encoding in jsonb,
 * next to the columns the queries sort on; datasets are plain columns. Nothing is cached: every
 * read is a query (the gateway reads plans and routes on every request, so a short-lived cache
 * belongs in front of this adapter).
 *
 * `putPlan` computes the next version and inserts it in one statement. Two concurrent puts may
 * compute the same version; the primary key on (id, version) lets one in and `ON CONFLICT DO
 * NOTHING` returns nothing to the other, which recomputes from what is now committed.
 */
export const makePgCatalog = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const getPlan = Effect.fnUntraced(function*(id: PlanId, version?: number) {
    const rows = version === undefined
      ? yield* sql`SELECT version, body FROM plan_versions WHERE id = ${id} ORDER BY version DESC LIMIT 1`
      : Number.isSafeInteger(version)
      ? yield* sql`SELECT version, body FROM plan_versions WHERE id = ${id} AND version = ${version}`
      : []
    return rows.length === 0 ? Option.none() : Option.some(yield* decodePlan(rows[0]))
  }, orUnavailable)

  const listPlans = sql`
    SELECT version, body FROM (
      SELECT DISTINCT ON (id) id, version, price_cents, body FROM plan_versions ORDER BY id, version DESC
    ) latest
    ORDER BY price_cents, id`.pipe(
    Effect.flatMap(Effect.forEach(decodePlan)),
    orUnavailable,
    Effect.withSpan("Catalog.listPlans")
  )

  const putPlan = Effect.fnUntraced(function*(draft: PlanDraft) {
    // Validates the draft the way the in-memory catalog does; the body is stored without a
    // version, which the statement below assigns.
    const { version: _, ...body } = yield* encodePlan(new Plan({ ...draft, version: 1 }))
    const json = JSON.stringify(body)
    for (let attempt = 1; attempt <= maxVersionAttempts; attempt++) {
      const rows = yield* sql`
        INSERT INTO plan_versions (id, version, price_cents, body)
        SELECT ${draft.id}::text, coalesce(max(version), 0) + 1, ${draft.priceCents}::bigint, ${json}::jsonb
        FROM plan_versions WHERE id = ${draft.id}
        ON CONFLICT (id, version) DO NOTHING
        RETURNING version, body`
      if (rows.length > 0) return yield* decodePlan(rows[0])
    }
    return yield* new CatalogUnavailable({ message: `too many concurrent versions of plan ${draft.id}` })
  }, orUnavailable)

  const listRoutes = sql<{ readonly body: unknown }>`SELECT body FROM routes ORDER BY id`.pipe(
    Effect.flatMap(Effect.forEach((row) => decodeRoute(row.body))),
    orUnavailable,
    Effect.withSpan("Catalog.listRoutes")
  )

  const getRoute = Effect.fnUntraced(function*(id: RouteId) {
    const rows = yield* sql<{ readonly body: unknown }>`SELECT body FROM routes WHERE id = ${id}`
    return rows.length === 0 ? Option.none() : Option.some(yield* decodeRoute(rows[0]!.body))
  }, orUnavailable)

  const putRoute = Effect.fnUntraced(function*(route: Route) {
    const body = JSON.stringify(yield* encodeRoute(route))
    yield* sql`
      INSERT INTO routes (id, body) VALUES (${route.id}, ${body}::jsonb)
      ON CONFLICT (id) DO UPDATE SET body = excluded.body`
  }, orUnavailable)

  const deleteRoute = Effect.fnUntraced(function*(id: RouteId) {
    const rows = yield* sql`DELETE FROM routes WHERE id = ${id} RETURNING id`
    return rows.length > 0
  }, orUnavailable)

  const getDataset = Effect.fnUntraced(function*(id: DatasetId) {
    const rows = yield* decodeDatasets(yield* sql`SELECT * FROM datasets WHERE id = ${id}`)
    return Option.fromNullable(rows[0])
  }, orUnavailable)

  const listDatasets = sql`SELECT * FROM datasets ORDER BY id`.pipe(
    Effect.flatMap(decodeDatasets),
    orUnavailable,
    Effect.withSpan("Catalog.listDatasets")
  )

  const putDataset = Effect.fnUntraced(function*(dataset: Dataset) {
    const row = yield* encodeDataset(dataset)
    yield* sql`
      INSERT INTO datasets ${sql.insert(row)}
      ON CONFLICT (id) DO UPDATE SET
        name = excluded.name,
        contributor = excluded.contributor,
        share_bps = excluded.share_bps`
  }, orUnavailable)

  return Catalog.of({
    getPlan,
    listPlans,
    putPlan,
    listRoutes,
    getRoute,
    putRoute,
    deleteRoute,
    getDataset,
    listDatasets,
    putDataset
  })
})

export const PgCatalogLive = Layer.effect(Catalog, makePgCatalog)
