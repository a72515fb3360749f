/** API keys: issued (the secret shown once), rotated with a grace period, revoked. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { EpochMillis, KeyEnvironment } from "@tollgate/core"
import { Schema } from "effect"
import { AdminAuthentication, ApiKeyAuthentication } from "../Authentication.js"
import { KeyIdPath, ProjectIdPath } from "../Params.js"
import { BadRequestProblem, ConflictProblem, NotFoundProblem, ServiceUnavailableProblem } from "../Problems.js"
import { KeyList, KeyView } from "../Views.js"

export const IssueKeyRequest = Schema.Struct({
  name: Schema.optional(Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(100))),
  environment: Schema.optionalWith(KeyEnvironment, { default: () => "live" as const }).annotations({
    description: "Default: live"
  }),
  expiresAt: Schema.optional(EpochMillis.annotations({ description: "When the key stops working; epoch ms" }))
}).annotations({ identifier: "IssueKeyRequest", examples: [{ name: "ci", environment: "test" }] })

export const IssuedKey = Schema.Struct({
  key: KeyView,
  secret: Schema.String.annotations({ description: "The key itself. Shown once: store it now" })
}).annotations({ identifier: "IssuedKey" })

export const RotateKeyRequest = Schema.Struct({
  graceSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 30 * 86_400)), { default: () => 86_400 })
    .annotations({ description: "How long the old key keeps working, in seconds (default 86400)" })
}).annotations({ identifier: "RotateKeyRequest", examples: [{ graceSeconds: 3_600 }] })

export const RotatedKey = Schema.Struct({
  previous: KeyView,
  key: KeyView,
  secret: Schema.String.annotations({ description: "The new key. Shown once: store it now" })
}).annotations({ identifier: "RotatedKey" })

export const KeyResponse = Schema.Struct({ key: KeyView }).annotations({ identifier: "KeyResponse" })

export class KeysApi extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.get("list", "/keys")
      .addSuccess(KeyList)
      .annotate(OpenApi.Summary, "My project's keys")
  )
  .add(
    HttpApiEndpoint.post("issue", "/keys")
      .setPayload(IssueKeyRequest)
      .addSuccess(IssuedKey, { status: 201 })
      .addError(BadRequestProblem)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "Issue a key (the secret is returned once)")
  )
  .add(
    HttpApiEndpoint.post("rotate", "/keys/:id/rotate")
      .setPath(KeyIdPath)
      .setPayload(RotateKeyRequest)
      .addSuccess(RotatedKey)
      .addError(NotFoundProblem)
      .addError(ConflictProblem)
      .annotate(OpenApi.Summary, "Rotate a key; the old one works until the grace period ends")
  )
  .add(
    HttpApiEndpoint.del("revoke", "/keys/:id")
      .setPath(KeyIdPath)
      .addSuccess(KeyResponse)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "Revoke a key at once")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(ApiKeyAuthentication)
  .prefix("/v1")
  .annotateContext(OpenApi.annotations({ title: "Keys", description: "The calling project's API keys" }))
{}

export class AdminKeysApi extends HttpApiGroup.make("adminKeys")
  .add(
    HttpApiEndpoint.get("list", "/projects/:id/keys")
      .setPath(ProjectIdPath)
      .addSuccess(KeyList)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "A project's keys")
  )
  .add(
    HttpApiEndpoint.post("issue", "/projects/:id/keys")
      .setPath(ProjectIdPath)
      .setPayload(IssueKeyRequest)
      .addSuccess(IssuedKey, { status: 201 })
      .addError(NotFoundProblem)
      .addError(BadRequestProblem)
      .annotate(OpenApi.Summary, "Issue a key for a project (the secret is returned once)")
  )
  .add(
    HttpApiEndpoint.del("revoke", "/keys/:id")
      .setPath(KeyIdPath)
      .addSuccess(KeyResponse)
      .addError(NotFoundProblem)
      .annotate(OpenApi.Summary, "Revoke any key")
  )
  .addError(ServiceUnavailableProblem)
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotateContext(OpenApi.annotations({ title: "Admin: keys", description: "Keys of any project" }))
{}
