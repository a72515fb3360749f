/**
 * RFC 9457 problem documents: every refusal and error the gateway answers with, on the proxy and
 * on the management API alike. `code` is the stable, machine-readable part; `title` names the
 * kind of problem, `detail` explains this occurrence.
 */
import { HttpServerResponse } from "@effect/platform"
import type { Refusal } from "@tollgate/core"
import type { ServerResponse } from "node:http"

export const problemContentType = "application/problem+json"

export interface Problem {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly code: string
  readonly detail: string
  readonly [extension: string]: unknown
}

/** A `type` URI per code, stable across releases and documented in docs/api.md. */
export const problemType = (code: string): string => `urn:tollgate:problem:${code}`

export const makeProblem = (
  status: number,
  code: string,
  title: string,
  detail: string,
  extensions: Record<string, unknown> = {}
): Problem => ({ type: problemType(code), title, status, code, detail, ...extensions })

export const problemResponse = (
  problem: Problem,
  headers: Record<string, string> = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(problem, { status: problem.status, contentType: problemContentType, headers })

/** A path the gateway will not match or forward: it could be read two ways. */
export const invalidPathProblem = makeProblem(
  400,
  "invalid_path",
  "Invalid path",
  "The path has dot segments, encoded separators or bad escapes"
)

/** A defect: logged with its cause, never shown to the caller. */
export const internalErrorProblem = makeProblem(
  500,
  "internal_error",
  "Internal error",
  "The gateway failed to answer this request"
)

/**
 * `problem` written to Node's response, for the proxy (which answers without the platform's
 * response objects); a response already begun is cut off instead.
 */
export const writeProblem = (response: ServerResponse, problem: Problem, headers: Record<string, string> = {}) => {
  if (response.headersSent) {
    response.destroy()
    return
  }
  const body = JSON.stringify(problem)
  response.writeHead(problem.status, {
    ...headers,
    "content-type": problemContentType,
    "content-length": String(Buffer.byteLength(body))
  })
  response.end(body)
}

/** Where a caller short of credit goes to buy more (the consumer API's top-up endpoint). */
export const topUpPath = "/v1/topups"

/** The problem for each refusal of the request path, with the headers it needs. */
export const refusalProblem = (
  refusal: Refusal
): { readonly problem: Problem; readonly headers: Record<string, string> } => {
  switch (refusal._tag) {
    case "Unauthorized":
      return {
        problem: makeProblem(401, refusal.code, "Unauthorized", unauthorizedDetail[refusal.code]),
        headers: { "www-authenticate": "Bearer realm=\"tollgate\"" }
      }
    case "RouteNotFound":
      return {
        problem: makeProblem(
          404,
          refusal.code,
          "Not found",
          refusal.code === "unknown_dataset"
            ? `No dataset matches ${refusal.path}`
            : `No route serves ${refusal.method} ${refusal.path}`,
          { method: refusal.method, path: refusal.path }
        ),
        headers: {}
      }
    case "NotEntitled":
      return {
        problem: makeProblem(
          403,
          refusal.code,
          "Not entitled",
          refusal.upgradeTo === undefined
            ? `Plan ${refusal.plan} does not include the ${refusal.category} category, and no public plan does`
            : `Plan ${refusal.plan} does not include the ${refusal.category} category; ${refusal.upgradeTo.name} does`,
          {
            category: refusal.category,
            plan: refusal.plan,
            ...(refusal.upgradeTo === undefined ? {} : { upgradeTo: refusal.upgradeTo })
          }
        ),
        headers: {}
      }
    case "RateLimited":
      return {
        problem: makeProblem(
          429,
          refusal.code,
          "Too many requests",
          refusal.retryAfterMs === undefined
            ? `The ${refusal.limit} limit can never admit this request`
            : `The ${refusal.limit} limit is exhausted; retry in ${Math.ceil(refusal.retryAfterMs / 1000)} s`,
          {
            limit: refusal.limit,
            limits: refusal.limits.map((l) => ({
              name: l.name,
              limit: l.limit,
              windowSeconds: l.windowMs / 1000,
              remaining: l.remaining,
              resetSeconds: Math.ceil(l.resetMs / 1000),
              exceeded: l.exceeded,
              shadow: l.shadow
            })),
            ...(refusal.retryAfterMs === undefined ? {} : { retryAfterSeconds: Math.ceil(refusal.retryAfterMs / 1000) })
          }
        ),
        headers: refusal.retryAfterMs === undefined
          ? {}
          : { "retry-after": String(Math.max(1, Math.ceil(refusal.retryAfterMs / 1000))) }
      }
    case "InsufficientCredits":
      return {
        problem: makeProblem(
          402,
          refusal.code,
          "Insufficient credits",
          `This call costs ${refusal.required} credits and ${refusal.available} are available`,
          {
            required: refusal.required,
            available: refusal.available,
            balance: refusal.balance,
            topUp: { method: "POST", href: topUpPath }
          }
        ),
        headers: {}
      }
    case "DependencyUnavailable":
      return {
        // the dependency's own message may name hosts; it goes to the log, not to the caller
        problem: makeProblem(
          503,
          refusal.code,
          "Service unavailable",
          `The ${refusal.dependency.replace("_", " ")} is unavailable; retry shortly`,
          { dependency: refusal.dependency }
        ),
        headers: { "retry-after": "1" }
      }
    case "Overloaded": {
      const retryAfter = String(Math.max(1, Math.ceil((refusal.retryAfterMs ?? 1000) / 1000)))
      return refusal.code === "concurrency_limited"
        ? {
          problem: makeProblem(429, refusal.code, "Too many concurrent requests", refusal.message),
          headers: { "retry-after": retryAfter }
        }
        : {
          problem: makeProblem(503, refusal.code, "Upstream unavailable", refusal.message),
          headers: { "retry-after": retryAfter }
        }
    }
  }
}

const unauthorizedDetail: Record<Extract<Refusal, { _tag: "Unauthorized" }>["code"], string> = {
  missing_key: "Send an API key as `Authorization: Bearer <key>` or `x-api-key: <key>`",
  malformed_key: "The API key is not a well-formed Tollgate key (its checksum does not match)",
  unknown_key: "The API key is not known",
  revoked_key: "The API key has been revoked",
  expired_key: "The API key has expired"
}
