import { Schema } from "effect"
import { EpochMillis } from "./Credits.js"
import { ApiKeyId, ProjectId } from "./Ids.js"

export const KeyEnvironment = Schema.Literal("live", "test")
export type KeyEnvironment = typeof KeyEnvironment.Type

export const KeyStatus = Schema.Literal("active", "revoked")
export type KeyStatus = typeof KeyStatus.Type

/**
 * A stored key: only its SHA-256 hash and a short display prefix are kept, never the secret.
 * A rotated key names its successor and keeps working until `expiresAt` (the grace period).
 */
export class ApiKey extends Schema.Class<ApiKey>("ApiKey")({
  id: ApiKeyId,
  projectId: ProjectId,
  hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  prefix: Schema.String,
  environment: KeyEnvironment,
  name: Schema.optional(Schema.String),
  status: KeyStatus,
  createdAt: EpochMillis,
  expiresAt: Schema.optional(EpochMillis),
  revokedAt: Schema.optional(EpochMillis),
  rotatedTo: Schema.optional(ApiKeyId)
}) {
  /** Usable at `now`: active and not past its expiry. */
  isUsableAt(now: number): boolean {
    return this.status === "active" && (this.expiresAt === undefined || now < this.expiresAt)
  }
}
