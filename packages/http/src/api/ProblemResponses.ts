/**
 * Route middleware of the management API that makes every error a problem document. Handler
 * errors are already problems (see Problems.ts); what remains are HttpApi's own answers and
 * failures, which it renders as it likes: a schema violation as `HttpApiDecodeError` JSON, a body
 * that is not JSON as a defect (500). Both become 400 `invalid_request`; other defects become a
 * 500 `internal_error` whose cause is logged, never shown.
 *
 * Bodies must be JSON. HttpApi would also take form, multipart and binary bodies and decode them
 * against the JSON schemas (a form or a byte string can pass for an object with only optional
 * fields, and a broken multipart body is a defect), so other media types are refused up front.
 */
import { HttpLayerRouter, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Effect } from "effect"
import { makeProblem, problemResponse } from "../Problem.js"

interface DecodeIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const parseJson = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return undefined
  }
}

const asDecodeError = (response: HttpServerResponse.HttpServerResponse) => {
  if (response.status !== 400 || response.body._tag !== "Uint8Array") return undefined
  if (!response.body.contentType.startsWith("application/json")) return undefined
  const body = parseJson(response.body.body) as
    | { readonly _tag?: unknown; readonly issues?: ReadonlyArray<DecodeIssue>; readonly message?: unknown }
    | undefined
  return body !== undefined && body !== null && body._tag === "HttpApiDecodeError" ? body : undefined
}

const pathOf = (issue: DecodeIssue) => issue.path.map(String).join(".")

const invalidRequest = (detail: string, issues: ReadonlyArray<DecodeIssue> = []) =>
  problemResponse(
    makeProblem(
      400,
      "invalid_request",
      "Invalid request",
      detail,
      issues.length === 0 ? {} : { issues: issues.map((i) => ({ path: pathOf(i), message: i.message })) }
    )
  )

const rewrite = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const decodeError = asDecodeError(response)
  if (decodeError !== undefined) {
    const issues = decodeError.issues ?? []
    const first = issues[0]
    return invalidRequest(
      first === undefined
        ? "The request does not match the expected schema"
        : `${pathOf(first) === "" ? "" : `${pathOf(first)}: `}${first.message}`,
      issues
    )
  }
  if (response.status === 401 && response.headers["www-authenticate"] === undefined) {
    return HttpServerResponse.setHeader(response, "www-authenticate", "Bearer realm=\"tollgate\"")
  }
  if (response.status === 503 && response.headers["retry-after"] === undefined) {
    return HttpServerResponse.setHeader(response, "retry-after", "1")
  }
  return response
}

const fromCause = (cause: Cause.Cause<unknown>) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<HttpLayerRouter.unhandled>)
  const failure = Cause.squash(cause)
  if (HttpServerError.isServerError(failure) && failure._tag === "RequestError" && failure.reason === "Decode") {
    return Effect.succeed(invalidRequest("The request body is not valid JSON"))
  }
  return Effect.logError("management API request failed", cause).pipe(
    Effect.as(problemResponse(
      makeProblem(500, "internal_error", "Internal server error", "An unexpected error occurred; it has been logged")
    ))
  )
}

const isJson = (contentType: string) => {
  const mediaType = contentType.split(";")[0]!.trim().toLowerCase()
  return mediaType === "application/json" || mediaType.endsWith("+json")
}

const hasForeignBody = (request: HttpServerRequest.HttpServerRequest) => {
  const contentType = request.headers["content-type"]
  return (request.method === "POST" || request.method === "PUT" || request.method === "PATCH") &&
    contentType !== undefined && !isJson(contentType)
}

export const ProblemResponses = HttpLayerRouter.middleware((httpEffect) =>
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) =>
      hasForeignBody(request)
        ? Effect.succeed(invalidRequest("The request body must be JSON (Content-Type: application/json)"))
        : httpEffect.pipe(
          Effect.catchAllCause(fromCause),
          Effect.map(rewrite)
        )
  )
)
