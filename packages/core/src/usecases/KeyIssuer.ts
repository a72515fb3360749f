import { Clock, Effect, Option } from "effect"
import { ApiKey } from "../domain/ApiKey.js"
import type { KeyEnvironment } from "../domain/ApiKey.js"
import type { ApiKeyId, ProjectId } from "../domain/Ids.js"
import * as ApiKeyFormat from "../logic/ApiKeyFormat.js"
import { Ids } from "../ports/Ids.js"
import { KeyNotFound, KeyStore } from "../ports/KeyStore.js"
import { ProjectStore } from "../ports/ProjectStore.js"
import { ProjectNotFound } from "./Refusals.js"

/** A key as its owner sees it once: the secret is returned here and never stored or shown again. */
export interface IssuedKey {
  readonly key: ApiKey
  readonly secret: string
}

/** Issues, rotates and revokes keys. Only the SHA-256 hash and a display prefix are stored. */
export class KeyIssuer extends Effect.Service<KeyIssuer>()("@tollgate/core/KeyIssuer", {
  effect: Effect.gen(function*() {
    const keys = yield* KeyStore
    const projects = yield* ProjectStore
    const ids = yield* Ids

    const mint = Effect.fn("KeyIssuer.mint")(function*(
      projectId: ProjectId,
      environment: KeyEnvironment,
      options: { readonly name?: string | undefined; readonly expiresAt?: number | undefined }
    ) {
      const generated = yield* ApiKeyFormat.generateApiKey(environment)
      const key = new ApiKey({
        id: (yield* ids.next("key")) as ApiKeyId,
        projectId,
        hash: generated.hash,
        prefix: generated.prefix,
        environment,
        status: "active",
        createdAt: yield* Clock.currentTimeMillis,
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt })
      })
      return { key, secret: generated.secret } satisfies IssuedKey
    })

    const issue = Effect.fn("KeyIssuer.issue")(function*(
      projectId: ProjectId,
      environment: KeyEnvironment,
      options: { readonly name?: string | undefined; readonly expiresAt?: number | undefined } = {}
    ) {
      if (Option.isNone(yield* projects.get(projectId))) {
        return yield* new ProjectNotFound({ code: "project_not_found", projectId })
      }
      const issued = yield* mint(projectId, environment, options)
      yield* keys.insert(issued.key)
      return issued
    })

    /** A new key now; the old one keeps working for `graceMs`, then stops. */
    const rotate = Effect.fn("KeyIssuer.rotate")(function*(id: ApiKeyId, graceMs: number) {
      const old = yield* keys.get(id)
      if (Option.isNone(old)) return yield* new KeyNotFound({ id })
      const issued = yield* mint(old.value.projectId, old.value.environment, { name: old.value.name })
      const now = yield* Clock.currentTimeMillis
      const rotated = yield* keys.rotate(id, issued.key, now + Math.max(0, graceMs))
      return { previous: rotated.previous, next: rotated.next, secret: issued.secret }
    })

    const revoke = Effect.fn("KeyIssuer.revoke")(function*(id: ApiKeyId) {
      return yield* keys.revoke(id, yield* Clock.currentTimeMillis)
    })

    return { issue, rotate, revoke } as const
  })
}) {}
