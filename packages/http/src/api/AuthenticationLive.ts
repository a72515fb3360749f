/** The security middleware of both realms. Header parsing is ours: the built-in decoders are lax. */
import { HttpServerRequest } from "@effect/platform"
import { ApiKeyFormat, Gateway } from "@tollgate/core"
import { Effect, Layer, Option, Redacted } from "effect"
import type { Exit } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { refusalProblem } from "../Problem.js"
import { AdminToken } from "./AdminToken.js"
import type { Principal } from "./Authentication.js"
import { AdminAuthentication, ApiKeyAuthentication } from "./Authentication.js"
import type { ServiceUnavailable } from "./Problems.js"
import { fromDependencyUnavailable, Unauthenticated } from "./Problems.js"

const BEARER = /^Bearer +(\S+) *$/i

/**
 * Both API-key schemes run the same check: `Authorization` wins when present (so a bad bearer key
 * is reported as itself, not as a missing `x-api-key`), else `x-api-key`. HttpApi tries the
 * schemes one after the other, so the outcome is remembered per request and the key is looked up once.
 */
export const ApiKeyAuthenticationLive = Layer.effect(
  ApiKeyAuthentication,
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const outcomes = new WeakMap<HttpServerRequest.HttpServerRequest, Exit.Exit<Principal, Failure>>()

    type Failure = Unauthenticated | ServiceUnavailable

    const authenticate = (credential: string | undefined) =>
      gateway.authenticate(credential).pipe(
        Effect.catchTags({
          Unauthorized: (refusal) =>
            Effect.fail(
              new Unauthenticated({ code: refusal.code, detail: refusalProblem(refusal).problem.detail })
            ),
          DependencyUnavailable: (e) =>
            Effect.zipRight(
              Effect.logWarning("authentication unavailable", e.dependency, e.message),
              Effect.fail(fromDependencyUnavailable(e))
            )
        })
      )

    const fromHeaders = (request: HttpServerRequest.HttpServerRequest) => {
      const authorization = request.headers["authorization"]
      if (authorization !== undefined) {
        const bearer = BEARER.exec(authorization)
        return bearer === null
          ? Effect.fail(
            new Unauthenticated({
              code: "malformed_key",
              detail: "The Authorization header must be `Bearer <key>`"
            })
          )
          : authenticate(bearer[1])
      }
      return authenticate(request.headers["x-api-key"])
    }

    const once = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const known = outcomes.get(request)
      if (known !== undefined) return known
      return Effect.exit(fromHeaders(request)).pipe(
        Effect.tap((exit) => Effect.sync(() => outcomes.set(request, exit))),
        Effect.flatten
      )
    }).pipe(Effect.withSpan("ApiKeyAuthentication"))

    return { apiKeyBearer: () => once, apiKeyHeader: () => once }
  })
)

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest()

/** Compares SHA-256 digests in constant time, so neither the token nor its length leaks by timing. */
export const AdminAuthenticationLive = Layer.effect(
  AdminAuthentication,
  Effect.gen(function*() {
    const token = Redacted.value(yield* AdminToken)
    const expected = digest(token)

    const check = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const authorization = request.headers["authorization"]
      if (authorization === undefined) {
        return yield* new Unauthenticated({
          code: "missing_admin_token",
          detail: "Send the admin token as `Authorization: Bearer <token>`"
        })
      }
      const bearer = BEARER.exec(authorization)
      const presented = bearer === null ? undefined : bearer[1]!
      // an empty configured token opens nothing
      if (presented === undefined || token.length === 0 || !timingSafeEqual(digest(presented), expected)) {
        return yield* new Unauthenticated({
          code: "invalid_admin_token",
          detail: presented !== undefined && Option.isSome(ApiKeyFormat.parseApiKey(presented))
            ? "API keys cannot call the admin API; send the admin token"
            : "The admin token does not match"
        })
      }
    }).pipe(Effect.withSpan("AdminAuthentication"))

    return { adminToken: () => check }
  })
)
