import { HttpApiBuilder } from "@effect/platform"
import type { ApiKeyId, KeyEnvironment, ProjectId } from "@tollgate/core"
import { KeyIssuer, KeyStore, ProjectStore } from "@tollgate/core"
import { Clock, Effect, Option } from "effect"
import { ManagementApi } from "../Api.js"
import { CurrentPrincipal } from "../Authentication.js"
import { Conflict, invalidRequest, notFound, orUnavailable, unavailable } from "../Problems.js"
import { keyView } from "../Views.js"

const keyNotFound = (id: string) => notFound("key_not_found", `No key ${id}`)
const projectNotFound = (id: string) => notFound("project_not_found", `No project ${id}`)

/** Key operations shared by the consumer and the admin surfaces; `owner` confines them to one project. */
const makeKeys = Effect.gen(function*() {
  const store = yield* KeyStore
  const projects = yield* ProjectStore
  const issuer = yield* KeyIssuer

  /** The key, if `owner` may touch it: another project's key is as invisible as a missing one. */
  const find = Effect.fn("Keys.find")(function*(id: ApiKeyId, owner: ProjectId | undefined) {
    const key = yield* store.get(id).pipe(orUnavailable("key_store"))
    if (Option.isNone(key) || (owner !== undefined && key.value.projectId !== owner)) {
      return yield* keyNotFound(id)
    }
    return key.value
  })

  const list = (projectId: ProjectId) =>
    store.listByProject(projectId).pipe(
      Effect.map((keys) => ({ data: keys.map(keyView) })),
      orUnavailable("key_store")
    )

  const issue = Effect.fn("Keys.issue")(function*(
    projectId: ProjectId,
    request: {
      readonly environment: KeyEnvironment
      readonly name?: string | undefined
      readonly expiresAt?: number | undefined
    }
  ) {
    if (request.expiresAt !== undefined && request.expiresAt <= (yield* Clock.currentTimeMillis)) {
      return yield* invalidRequest("expiresAt must be in the future")
    }
    const issued = yield* issuer.issue(projectId, request.environment, {
      name: request.name,
      expiresAt: request.expiresAt
    }).pipe(
      Effect.catchTags({
        ProjectNotFound: () => Effect.fail(projectNotFound(projectId)),
        // ids are random: a collision is a bug, not a state the caller can resolve
        KeyConflict: (e) => Effect.die(e),
        KeyStoreUnavailable: () => Effect.fail(unavailable("key_store")),
        ProjectStoreUnavailable: () => Effect.fail(unavailable("project_store"))
      })
    )
    return { key: keyView(issued.key), secret: issued.secret }
  })

  const rotate = Effect.fn("Keys.rotate")(function*(id: ApiKeyId, owner: ProjectId | undefined, graceSeconds: number) {
    yield* find(id, owner)
    const rotated = yield* issuer.rotate(id, graceSeconds * 1_000).pipe(
      Effect.catchTags({
        KeyNotFound: () => Effect.fail(keyNotFound(id)),
        KeyConflict: () =>
          Effect.fail(
            new Conflict({
              code: "key_not_rotatable",
              detail: `Key ${id} is revoked, expired or already rotated`
            })
          ),
        KeyStoreUnavailable: () => Effect.fail(unavailable("key_store"))
      })
    )
    return { previous: keyView(rotated.previous), key: keyView(rotated.next), secret: rotated.secret }
  })

  const revoke = Effect.fn("Keys.revoke")(function*(id: ApiKeyId, owner: ProjectId | undefined) {
    yield* find(id, owner)
    const revoked = yield* issuer.revoke(id).pipe(
      Effect.catchTags({
        KeyNotFound: () => Effect.fail(keyNotFound(id)),
        KeyStoreUnavailable: () => Effect.fail(unavailable("key_store"))
      })
    )
    return { key: keyView(revoked) }
  })

  const requireProject = Effect.fn("Keys.requireProject")(function*(id: ProjectId) {
    const project = yield* projects.get(id).pipe(orUnavailable("project_store"))
    if (Option.isNone(project)) return yield* projectNotFound(id)
  })

  return { list, issue, rotate, revoke, requireProject } as const
})

export const KeysLive = HttpApiBuilder.group(ManagementApi, "keys", (handlers) =>
  Effect.gen(function*() {
    const keys = yield* makeKeys
    return handlers
      .handle("list", () => Effect.flatMap(CurrentPrincipal, ({ project }) => keys.list(project.id)))
      .handle("issue", ({ payload }) =>
        Effect.flatMap(CurrentPrincipal, ({ project }) => keys.issue(project.id, payload)))
      .handle("rotate", ({ path, payload }) =>
        Effect.flatMap(CurrentPrincipal, ({ project }) =>
          keys.rotate(path.id, project.id, payload.graceSeconds)))
      .handle("revoke", ({ path }) =>
        Effect.flatMap(CurrentPrincipal, ({ project }) =>
          keys.revoke(path.id, project.id)))
  }))

export const AdminKeysLive = HttpApiBuilder.group(ManagementApi, "adminKeys", (handlers) =>
  Effect.gen(function*() {
    const keys = yield* makeKeys
    return handlers
      .handle("list", ({ path }) => Effect.zipRight(keys.requireProject(path.id), keys.list(path.id)))
      .handle("issue", ({ path, payload }) => keys.issue(path.id, payload))
      .handle("revoke", ({ path }) => keys.revoke(path.id, undefined))
  }))
