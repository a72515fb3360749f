import { assert, describe, it } from "@effect/vitest"
import type { ApiKeyId, ProjectId } from "@tollgate/core"
import { ApiKey, KeyStore } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Option, TestClock } from "effect"
import { projectId, unique } from "./fixtures.js"

const hash = (): string => (globalThis.crypto.randomUUID() + globalThis.crypto.randomUUID()).replaceAll("-", "")

const apiKey = (project: ProjectId, fields: Partial<ConstructorParameters<typeof ApiKey>[0]> = {}): ApiKey =>
  new ApiKey({
    id: unique("key") as ApiKeyId,
    projectId: project,
    hash: hash(),
    prefix: "tg_test_ab12",
    environment: "test",
    status: "active",
    createdAt: 1_000,
    ...fields
  })

/**
 * The KeyStore contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store; the clock is the TestClock, starting at 0.
 */
export const keyStoreContract = (name: string, layer: Layer.Layer<KeyStore, unknown>) =>
  describe(`KeyStore contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, KeyStore>) => Effect.provide(body, layer)

    it.effect("an inserted key is found by id and by hash; unknown ones are not", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const key = apiKey(projectId(), { name: "ci", expiresAt: 90_000 })
        yield* store.insert(key)
        assert.deepStrictEqual(yield* store.get(key.id), Option.some(key))
        assert.deepStrictEqual(yield* store.findByHash(key.hash), Option.some(key))
        const found = Option.getOrThrow(yield* store.get(key.id))
        assert.instanceOf(found, ApiKey)
        assert.isTrue(found.isUsableAt(89_999))
        assert.isTrue(Option.isNone(yield* store.get(unique("key") as ApiKeyId)))
        assert.isTrue(Option.isNone(yield* store.findByHash(hash())))
      })))

    it.effect("a second key with the same id or the same hash is a KeyConflict and is not stored", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const key = apiKey(p)
        yield* store.insert(key)
        const sameId = apiKey(p, { id: key.id })
        const sameHash = apiKey(p, { hash: key.hash })
        assert.strictEqual((yield* Effect.flip(store.insert(sameId)))._tag, "KeyConflict")
        assert.strictEqual((yield* Effect.flip(store.insert(sameHash)))._tag, "KeyConflict")
        assert.deepStrictEqual(yield* store.get(key.id), Option.some(key))
        assert.deepStrictEqual(yield* store.findByHash(key.hash), Option.some(key))
        assert.isTrue(Option.isNone(yield* store.get(sameHash.id)))
        assert.isTrue(Option.isNone(yield* store.findByHash(sameId.hash)))
        assert.deepStrictEqual((yield* store.listByProject(p)).map((k) => k.id), [key.id])
      })))

    it.effect("concurrent inserts of one hash: exactly one is stored", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const shared = hash()
        const keys = Array.from({ length: 8 }, () => apiKey(p, { hash: shared }))
        const results = yield* Effect.all(keys.map((k) => Effect.either(store.insert(k))), { concurrency: "unbounded" })
        assert.strictEqual(results.filter((r) => r._tag === "Right").length, 1)
        assert.strictEqual((yield* store.listByProject(p)).length, 1)
      })))

    it.effect("a project's keys are listed newest first, and only its own", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const older = apiKey(p, { createdAt: 1_000 })
        const newest = apiKey(p, { createdAt: 3_000 })
        const middle = apiKey(p, { createdAt: 2_000 })
        yield* store.insert(older)
        yield* store.insert(newest)
        yield* store.insert(middle)
        yield* store.insert(apiKey(projectId(), { createdAt: 2_500 }))
        assert.deepStrictEqual((yield* store.listByProject(p)).map((k) => k.id), [newest.id, middle.id, older.id])
        assert.deepStrictEqual(yield* store.listByProject(projectId()), [])
      })))

    it.effect("revoking sets the status and time once; revoking again returns the key unchanged", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const key = apiKey(projectId())
        yield* store.insert(key)
        const revoked = yield* store.revoke(key.id, 5_000)
        assert.strictEqual(revoked.status, "revoked")
        assert.strictEqual(revoked.revokedAt, 5_000)
        assert.isFalse(revoked.isUsableAt(5_000))
        const again = yield* store.revoke(key.id, 9_000)
        assert.deepStrictEqual(again, revoked)
        assert.deepStrictEqual(yield* store.get(key.id), Option.some(revoked))
        assert.deepStrictEqual(yield* store.findByHash(key.hash), Option.some(revoked))
        const missing = yield* Effect.flip(store.revoke(unique("key") as ApiKeyId, 5_000))
        assert.strictEqual(missing._tag, "KeyNotFound")
      })))

    it.effect("rotating inserts the successor and lets the old key work until the grace time", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const old = apiKey(p)
        const successor = apiKey(p, { createdAt: 2_000 })
        yield* store.insert(old)
        const { next, previous } = yield* store.rotate(old.id, successor, 60_000)
        assert.deepStrictEqual(next, successor)
        assert.strictEqual(previous.rotatedTo, successor.id)
        assert.strictEqual(previous.expiresAt, 60_000)
        assert.strictEqual(previous.status, "active")
        assert.isTrue(previous.isUsableAt(59_999))
        assert.isFalse(previous.isUsableAt(60_000))
        assert.deepStrictEqual(yield* store.get(old.id), Option.some(previous))
        assert.deepStrictEqual(yield* store.findByHash(old.hash), Option.some(previous))
        assert.deepStrictEqual(yield* store.findByHash(successor.hash), Option.some(successor))
        assert.deepStrictEqual((yield* store.listByProject(p)).map((k) => k.id), [successor.id, old.id])
      })))

    it.effect("rotating never lets the old key live longer than it would have", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const old = apiKey(p, { expiresAt: 30_000 })
        yield* store.insert(old)
        const { previous } = yield* store.rotate(old.id, apiKey(p), 60_000)
        assert.strictEqual(previous.expiresAt, 30_000)
        const other = apiKey(p, { expiresAt: 90_000 })
        yield* store.insert(other)
        const shortened = yield* store.rotate(other.id, apiKey(p), 45_000)
        assert.strictEqual(shortened.previous.expiresAt, 45_000)
      })))

    it.effect("a key rotates once: a rotated, revoked, expired or unknown key cannot rotate, and nothing changes", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const rotated = apiKey(p)
        yield* store.insert(rotated)
        const first = yield* store.rotate(rotated.id, apiKey(p), 60_000)
        const second = apiKey(p)
        const twice = yield* Effect.flip(store.rotate(rotated.id, second, 90_000))
        assert.strictEqual(twice._tag, "KeyConflict")
        assert.isTrue(Option.isNone(yield* store.get(second.id)))
        assert.deepStrictEqual(yield* store.get(rotated.id), Option.some(first.previous))

        const revoked = apiKey(p)
        yield* store.insert(revoked)
        yield* store.revoke(revoked.id, 2_000)
        const successorOfRevoked = apiKey(p)
        assert.strictEqual(
          (yield* Effect.flip(store.rotate(revoked.id, successorOfRevoked, 60_000)))._tag,
          "KeyConflict"
        )
        assert.isTrue(Option.isNone(yield* store.get(successorOfRevoked.id)))

        const expiring = apiKey(p, { expiresAt: 10_000 })
        yield* store.insert(expiring)
        yield* TestClock.setTime(10_000)
        const successorOfExpired = apiKey(p)
        assert.strictEqual(
          (yield* Effect.flip(store.rotate(expiring.id, successorOfExpired, 60_000)))._tag,
          "KeyConflict"
        )
        assert.isTrue(Option.isNone(yield* store.get(successorOfExpired.id)))
        assert.isUndefined(Option.getOrThrow(yield* store.get(expiring.id)).rotatedTo)

        const missing = yield* Effect.flip(store.rotate(unique("key") as ApiKeyId, apiKey(p), 60_000))
        assert.strictEqual(missing._tag, "KeyNotFound")
      })))

    it.effect("a successor that conflicts or belongs to another project fails the rotation as a whole", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const old = apiKey(p)
        const taken = apiKey(p)
        yield* store.insert(old)
        yield* store.insert(taken)
        const sameHash = yield* Effect.flip(store.rotate(old.id, apiKey(p, { hash: taken.hash }), 60_000))
        const sameId = yield* Effect.flip(store.rotate(old.id, apiKey(p, { id: taken.id }), 60_000))
        const itself = yield* Effect.flip(store.rotate(old.id, apiKey(p, { id: old.id }), 60_000))
        const foreign = apiKey(projectId())
        const elsewhere = yield* Effect.flip(store.rotate(old.id, foreign, 60_000))
        assert.deepStrictEqual([sameHash._tag, sameId._tag, itself._tag, elsewhere._tag], [
          "KeyConflict",
          "KeyConflict",
          "KeyConflict",
          "KeyConflict"
        ])
        assert.deepStrictEqual(yield* store.get(old.id), Option.some(old))
        assert.deepStrictEqual(yield* store.get(taken.id), Option.some(taken))
        assert.isTrue(Option.isNone(yield* store.get(foreign.id)))
        assert.strictEqual((yield* store.listByProject(p)).length, 2)
      })))

    it.effect("concurrent rotations of one key: exactly one succeeds and exactly one successor is stored", () =>
      run(Effect.gen(function*() {
        const store = yield* KeyStore
        const p = projectId()
        const old = apiKey(p)
        yield* store.insert(old)
        const successors = Array.from({ length: 8 }, () => apiKey(p))
        const results = yield* Effect.all(
          successors.map((s) => Effect.either(store.rotate(old.id, s, 60_000))),
          { concurrency: "unbounded" }
        )
        const won = results.flatMap((r) => (r._tag === "Right" ? [r.right.next.id] : []))
        assert.strictEqual(won.length, 1)
        assert.isTrue(results.every((r) => r._tag === "Right" || r.left._tag === "KeyConflict"))
        const keys = yield* store.listByProject(p)
        assert.strictEqual(keys.length, 2)
        assert.strictEqual(Option.getOrThrow(yield* store.get(old.id)).rotatedTo, won[0])
      })))
  })
