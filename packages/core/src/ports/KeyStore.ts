import type { Effect, Option } from "effect"
import { Context, Schema } from "effect"
import type { ApiKey } from "../domain/ApiKey.js"
import type { ApiKeyId, ProjectId } from "../domain/Ids.js"

export class KeyStoreUnavailable extends Schema.TaggedError<KeyStoreUnavailable>()("KeyStoreUnavailable", {
  message: Schema.String
}) {}

export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()("KeyNotFound", { id: Schema.String }) {}

export class KeyConflict extends Schema.TaggedError<KeyConflict>()("KeyConflict", { message: Schema.String }) {}

/** Stores keys by hash. Revoking and rotating are single atomic writes. */
export class KeyStore extends Context.Tag("@tollgate/core/KeyStore")<KeyStore, {
  readonly insert: (key: ApiKey) => Effect.Effect<void, KeyStoreUnavailable | KeyConflict>
  readonly findByHash: (hash: string) => Effect.Effect<Option.Option<ApiKey>, KeyStoreUnavailable>
  readonly get: (id: ApiKeyId) => Effect.Effect<Option.Option<ApiKey>, KeyStoreUnavailable>
  readonly listByProject: (project: ProjectId) => Effect.Effect<ReadonlyArray<ApiKey>, KeyStoreUnavailable>
  /** Idempotent: revoking a revoked key returns it unchanged. */
  readonly revoke: (id: ApiKeyId, at: number) => Effect.Effect<ApiKey, KeyStoreUnavailable | KeyNotFound>
  /**
   * Inserts `successor` and lets the old key work until `graceUntil` (never longer than it
   * would have). Fails with KeyConflict if the old key is not usable or already rotated.
   */
  readonly rotate: (
    id: ApiKeyId,
    successor: ApiKey,
    graceUntil: number
  ) => Effect.Effect<
    { readonly previous: ApiKey; readonly next: ApiKey },
    KeyStoreUnavailable | KeyNotFound | KeyConflict
  >
}>() {}
