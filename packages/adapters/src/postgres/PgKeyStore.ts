import { SqlClient } from "@effect/sql"
import type { ApiKeyId, ProjectId } from "@tollgate/core"
import {
  ApiKey,
  KeyConflict,
  KeyEnvironment,
  KeyNotFound,
  KeyStatus,
  KeyStore,
  KeyStoreUnavailable
} from "@tollgate/core"
import { Clock, Effect, Layer, Option, Schema } from "effect"
import { outage } from "./Outage.js"

/** node-postgres returns int8 as text; the table bounds every value to a safe integer. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.filter(Number.isSafeInteger))

/** A row of `api_keys`: absent optional fields are NULL. */
const KeyRow = Schema.Struct({
  id: Schema.String,
  project_id: Schema.String,
  hash: Schema.String,
  prefix: Schema.String,
  environment: KeyEnvironment,
  name: Schema.NullOr(Schema.String),
  status: KeyStatus,
  created_at: Int8,
  expires_at: Schema.NullOr(Int8),
  revoked_at: Schema.NullOr(Int8),
  rotated_to: Schema.NullOr(Schema.String)
})

const ApiKeyFromRow = Schema.transform(KeyRow, ApiKey, {
  strict: true,
  decode: (row) => ({
    id: row.id,
    projectId: row.project_id,
    hash: row.hash,
    prefix: row.prefix,
    environment: row.environment,
    status: row.status,
    createdAt: row.created_at,
    ...(row.name === null ? {} : { name: row.name }),
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
    ...(row.rotated_to === null ? {} : { rotatedTo: row.rotated_to })
  }),
  encode: (key) => ({
    id: key.id,
    project_id: key.projectId,
    hash: key.hash,
    prefix: key.prefix,
    environment: key.environment,
    name: key.name ?? null,
    status: key.status,
    created_at: key.createdAt,
    expires_at: key.expiresAt ?? null,
    revoked_at: key.revokedAt ?? null,
    rotated_to: key.rotatedTo ?? null
  })
})

const decodeKey = Schema.decodeUnknown(ApiKeyFromRow)
const decodeKeys = Schema.decodeUnknown(Schema.Array(ApiKeyFromRow))
const encodeKey = Schema.encode(ApiKeyFromRow)

const orUnavailable = outage((message) => new KeyStoreUnavailable({ message }), "a stored key could not be read")

/**
 * API keys in PostgreSQL. The database enforces unique ids and hashes; inserts use
 * `ON CONFLICT DO NOTHING` so a duplicate is a KeyConflict without aborting anything. Rotation
 * is one transaction: a conditional UPDATE claims the old key (concurrent rotations queue on its
 * row lock and then fail the condition), and the successor is inserted in the same transaction,
 * so a conflicting successor undoes the claim.
 */
export const makePgKeyStore = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /** Inserts unless the id or the hash is taken; true when the row was written. */
  const insertRow = (key: ApiKey) =>
    Effect.flatMap(encodeKey(key), (row) =>
      Effect.map(
        sql`INSERT INTO api_keys ${sql.insert(row)} ON CONFLICT DO NOTHING RETURNING id`,
        (rows) => rows.length > 0
      ))

  const selectById = (id: ApiKeyId) =>
    Effect.flatMap(
      sql`SELECT * FROM api_keys WHERE id = ${id}`,
      (rows) => rows.length === 0 ? Effect.succeedNone : Effect.asSome(decodeKey(rows[0]))
    )

  const insert = Effect.fnUntraced(function*(key: ApiKey) {
    if (!(yield* insertRow(key))) {
      return yield* new KeyConflict({ message: `a key with id ${key.id} or with this hash exists` })
    }
  }, orUnavailable)

  const findByHash = Effect.fnUntraced(function*(hash: string) {
    const rows = yield* sql`SELECT * FROM api_keys WHERE hash = ${hash}`
    return rows.length === 0 ? Option.none() : Option.some(yield* decodeKey(rows[0]))
  }, orUnavailable)

  const get = Effect.fnUntraced(function*(id: ApiKeyId) {
    return yield* selectById(id)
  }, orUnavailable)

  const listByProject = Effect.fnUntraced(function*(project: ProjectId) {
    return yield* decodeKeys(
      yield* sql`SELECT * FROM api_keys WHERE project_id = ${project} ORDER BY created_at DESC, id DESC`
    )
  }, orUnavailable)

  const revoke = Effect.fnUntraced(function*(id: ApiKeyId, at: number) {
    const revoked = yield* sql`
      UPDATE api_keys SET status = 'revoked', revoked_at = ${at}
      WHERE id = ${id} AND status <> 'revoked'
      RETURNING *`
    if (revoked.length > 0) return yield* decodeKey(revoked[0])
    // Already revoked (by us or a concurrent call) or unknown: a fresh statement sees which.
    const existing = yield* selectById(id)
    if (Option.isNone(existing)) return yield* new KeyNotFound({ id })
    return existing.value
  }, orUnavailable)

  /** Why `id` could not be rotated to `successor`, read after the conditional UPDATE matched nothing. */
  const refusal = (id: ApiKeyId, successor: ApiKey, now: number) =>
    Effect.gen(function*() {
      const found = yield* selectById(id)
      if (Option.isNone(found)) return yield* new KeyNotFound({ id })
      const old = found.value
      if (old.status !== "active") return yield* new KeyConflict({ message: `key ${id} is revoked` })
      if (old.rotatedTo !== undefined) {
        return yield* new KeyConflict({ message: `key ${id} was already rotated to ${old.rotatedTo}` })
      }
      if (!old.isUsableAt(now)) return yield* new KeyConflict({ message: `key ${id} has expired` })
      if (successor.projectId !== old.projectId) {
        return yield* new KeyConflict({ message: `the successor of key ${id} must belong to project ${old.projectId}` })
      }
      return yield* new KeyConflict({ message: `key ${id} cannot be its own successor` })
    })

  const rotate = Effect.fnUntraced(function*(id: ApiKeyId, successor: ApiKey, graceUntil: number) {
    // `rotate` carries no time of its own: expiry is judged against the Clock, as in memory.
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(Effect.gen(function*() {
      const claimed = yield* sql`
        UPDATE api_keys
        SET rotated_to = ${successor.id}, expires_at = LEAST(coalesce(expires_at, ${graceUntil}), ${graceUntil})
        WHERE id = ${id}
          AND status = 'active'
          AND rotated_to IS NULL
          AND (expires_at IS NULL OR expires_at > ${now})
          AND project_id = ${successor.projectId}
          AND id <> ${successor.id}
        RETURNING *`
      if (claimed.length === 0) return yield* refusal(id, successor, now)
      if (!(yield* insertRow(successor))) {
        return yield* new KeyConflict({ message: `a key with id ${successor.id} or with the successor's hash exists` })
      }
      return { previous: yield* decodeKey(claimed[0]), next: successor }
    }))
  }, orUnavailable)

  return KeyStore.of({ insert, findByHash, get, listByProject, revoke, rotate })
})

export const PgKeyStoreLive = Layer.effect(KeyStore, makePgKeyStore)
