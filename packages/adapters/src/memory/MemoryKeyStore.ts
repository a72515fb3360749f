import type { ApiKeyId, ProjectId } from "@tollgate/core"
import { ApiKey, KeyConflict, KeyNotFound, KeyStore } from "@tollgate/core"
import { Clock, Effect, Layer, Option } from "effect"

/** Newest first; equal creation times by id, descending, so every adapter lists in one order. */
const newestFirst = (a: ApiKey, b: ApiKey): number =>
  b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

/**
 * Keys in process memory, indexed by id and by hash (both unique, as a database's unique
 * constraints would make them). Each write checks and changes state in one synchronous block,
 * so fibers interleave only between whole writes.
 */
export const makeMemoryKeyStore = Effect.sync(() => {
  const keys = new Map<ApiKeyId, ApiKey>()
  const idByHash = new Map<string, ApiKeyId>()

  const conflictWith = (key: ApiKey): Option.Option<KeyConflict> => {
    if (keys.has(key.id)) return Option.some(new KeyConflict({ message: `a key with id ${key.id} exists` }))
    if (idByHash.has(key.hash)) return Option.some(new KeyConflict({ message: "a key with this hash exists" }))
    return Option.none()
  }

  const put = (key: ApiKey) => {
    keys.set(key.id, key)
    idByHash.set(key.hash, key.id)
  }

  const insert = Effect.fnUntraced(function*(key: ApiKey) {
    const conflict = conflictWith(key)
    if (Option.isSome(conflict)) return yield* conflict.value
    put(key)
  })

  const findByHash = Effect.fnUntraced(function*(hash: string) {
    return Option.flatMap(Option.fromNullable(idByHash.get(hash)), (id) => Option.fromNullable(keys.get(id)))
  })

  const get = Effect.fnUntraced(function*(id: ApiKeyId) {
    return Option.fromNullable(keys.get(id))
  })

  const listByProject = Effect.fnUntraced(function*(project: ProjectId) {
    return [...keys.values()].filter((k) => k.projectId === project).sort(newestFirst)
  })

  const revoke = Effect.fnUntraced(function*(id: ApiKeyId, at: number) {
    const key = keys.get(id)
    if (key === undefined) return yield* new KeyNotFound({ id })
    if (key.status === "revoked") return key
    const revoked = new ApiKey({ ...key, status: "revoked", revokedAt: at })
    keys.set(id, revoked)
    return revoked
  })

  const rotate = Effect.fnUntraced(function*(id: ApiKeyId, successor: ApiKey, graceUntil: number) {
    // `rotate` carries no time of its own: expiry is judged against the Clock, read before the
    // synchronous block below so the check and the write cannot be separated.
    const now = yield* Clock.currentTimeMillis
    const old = keys.get(id)
    if (old === undefined) return yield* new KeyNotFound({ id })
    if (old.status !== "active") return yield* new KeyConflict({ message: `key ${id} is revoked` })
    if (old.rotatedTo !== undefined) {
      return yield* new KeyConflict({ message: `key ${id} was already rotated to ${old.rotatedTo}` })
    }
    if (!old.isUsableAt(now)) return yield* new KeyConflict({ message: `key ${id} has expired` })
    if (successor.projectId !== old.projectId) {
      return yield* new KeyConflict({ message: `the successor of key ${id} must belong to project ${old.projectId}` })
    }
    const conflict = conflictWith(successor)
    if (Option.isSome(conflict)) return yield* conflict.value
    const previous = new ApiKey({
      ...old,
      rotatedTo: successor.id,
      expiresAt: old.expiresAt === undefined ? graceUntil : Math.min(old.expiresAt, graceUntil)
    })
    put(successor)
    keys.set(id, previous)
    return { previous, next: successor }
  })

  return KeyStore.of({ insert, findByHash, get, listByProject, revoke, rotate })
})

export const MemoryKeyStoreLive = Layer.effect(KeyStore, makeMemoryKeyStore)
