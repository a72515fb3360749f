/**
 * The management API's errors. Each is a tagged error inside the process and an RFC 9457 problem
 * document (`application/problem+json`, the shape of `Problem` in ../Problem.ts) on the wire:
 * the class carries the stable `code`, the `detail` and any extensions; the status and title
 * belong to the class. `…Problem` is the schema endpoints declare with `addError`.
 */
import { HttpApiSchema } from "@effect/platform"
import type { DependencyUnavailable } from "@tollgate/core"
import { Effect, Schema } from "effect"
import { makeProblem, problemContentType } from "../Problem.js"

const Extensions = Schema.Record({
  key: Schema.String,
  value: Schema.Unknown.annotations({ jsonSchema: {} })
})

/** The wire form of every error response. */
export const ProblemDocument = Schema.Struct(
  {
    type: Schema.String.annotations({ description: "URI of the problem type: `urn:tollgate:problem:<code>`" }),
    title: Schema.String.annotations({ description: "The kind of problem (the same for every occurrence)" }),
    status: Schema.Int.annotations({ description: "The HTTP status of the response" }),
    code: Schema.String.annotations({ description: "Stable, machine-readable code; branch on this" }),
    detail: Schema.String.annotations({ description: "What went wrong this time, for humans" })
  },
  Extensions
).annotations({
  identifier: "Problem",
  title: "Problem",
  description: "An RFC 9457 problem document with a stable `code`; further members are extensions.",
  examples: [{
    type: "urn:tollgate:problem:invalid_request",
    title: "Invalid request",
    status: 400,
    code: "invalid_request",
    detail: "credits: Expected a positive number, actual -5"
  }]
})
export type ProblemDocument = typeof ProblemDocument.Type

const fields = {
  code: Schema.String,
  detail: Schema.String,
  extensions: Schema.optionalWith(Extensions, { default: () => ({}) })
}

interface ProblemError {
  readonly code: string
  readonly detail: string
  readonly extensions: { readonly [x: string]: unknown }
}

interface ProblemClass<Self extends ProblemError> extends Schema.Schema<Self, any> {
  new(props: { readonly code: string; readonly detail: string; readonly extensions?: ProblemError["extensions"] }): Self
}

const problemSchema = <Self extends ProblemError>(
  self: ProblemClass<Self>,
  status: number,
  title: string,
  description: string
) =>
  Schema.transform(ProblemDocument, Schema.typeSchema(self), {
    strict: true,
    decode: ({ code, detail, status: _status, title: _title, type: _type, ...extensions }) =>
      new self({ code, detail, extensions }),
    encode: (error) => makeProblem(status, error.code, title, error.detail, error.extensions)
  }).pipe(
    HttpApiSchema.withEncoding({ kind: "Json", contentType: problemContentType }),
    (schema) => schema.annotations(HttpApiSchema.annotations({ status, description }))
  )

/** 400: the request is malformed or asks for something impossible. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", fields) {}
export const BadRequestProblem = problemSchema(
  BadRequest,
  400,
  "Invalid request",
  "The request is malformed (invalid_request: bad JSON, a schema violation, a bad path or query parameter) " +
    "or refused as such (top_up_out_of_range, plan_not_found, contributor_not_found, invalid_signature)"
)

/** 401: no usable credential for this surface. */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", fields) {}
export const UnauthenticatedProblem = problemSchema(
  Unauthenticated,
  401,
  "Unauthorized",
  "No usable credential: missing_key, malformed_key, unknown_key, revoked_key, expired_key " +
    "(API keys) or missing_admin_token, invalid_admin_token (admin token)"
)

/** 404: the resource does not exist, or is not the caller's to see. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", fields) {}
export const NotFoundProblem = problemSchema(
  NotFound,
  404,
  "Not found",
  "No such resource for this caller: not_found, project_not_found, key_not_found, plan_not_found, " +
    "route_not_found, dataset_not_found"
)

/** 409: the request conflicts with the current state or with an earlier request under the same key. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", fields) {}
export const ConflictProblem = problemSchema(
  Conflict,
  409,
  "Conflict",
  "The request conflicts with the current state: idempotency_conflict (the key was used with a different " +
    "request), project_exists, key_not_rotatable, insufficient_credit"
)

/** 502: the payment provider refused or failed. */
export class BadGateway extends Schema.TaggedError<BadGateway>()("BadGateway", fields) {}
export const BadGatewayProblem = problemSchema(
  BadGateway,
  502,
  "Bad gateway",
  "The payment provider failed or refused the request: payment_provider_error"
)

/** 503: a dependency is down or a feature is not configured; retry later. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", fields) {}
export const ServiceUnavailableProblem = problemSchema(
  ServiceUnavailable,
  503,
  "Service unavailable",
  "A dependency is unavailable (dependency_unavailable), the process is not ready (not_ready) or the feature " +
    "is not configured (webhook_not_configured)"
)

/** 500: a bug. The cause goes to the log, never to the caller. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", fields) {}
export const InternalErrorProblem = problemSchema(
  InternalError,
  500,
  "Internal server error",
  "An unexpected failure (internal_error); the details are in the server log"
)

/** Every status the management API answers errors with, and the title of each. */
export const problemTitles: Readonly<Record<number, string>> = {
  400: "Invalid request",
  401: "Unauthorized",
  404: "Not found",
  409: "Conflict",
  500: "Internal server error",
  502: "Bad gateway",
  503: "Service unavailable"
}

export const invalidRequest = (detail: string, extensions: Record<string, unknown> = {}) =>
  new BadRequest({ code: "invalid_request", detail, extensions })

export const notFound = (code: string, detail: string) => new NotFound({ code, detail })

/** What a caller learns about an outage: which dependency, never its own message (it may name hosts). */
export const unavailable = (dependency: string) =>
  new ServiceUnavailable({
    code: "dependency_unavailable",
    detail: `The ${dependency.replaceAll("_", " ")} is unavailable; retry shortly`,
    extensions: { dependency }
  })

export const fromDependencyUnavailable = (e: DependencyUnavailable) => unavailable(e.dependency)

/**
 * Maps every failure of `self` (all of them outages of `dependency`) to a 503 problem, logging
 * the original message.
 */
export const orUnavailable = (dependency: string) =>
<A, E extends { readonly message: string }, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, ServiceUnavailable, R> =>
  Effect.catchAll(self, (e) =>
    Effect.zipRight(
      Effect.logWarning(`${dependency} unavailable`, e.message),
      Effect.fail(unavailable(dependency))
    ))
