/**
 * The two security realms of the management API, as HttpApi middleware: API keys for the
 * consumer surface (`/v1`), the operator's token for the admin surface (`/admin`).
 */
import { HttpApiMiddleware, HttpApiSecurity, OpenApi } from "@effect/platform"
import type { ApiKey, Plan, Project } from "@tollgate/core"
import { Context, Schema } from "effect"
import { ServiceUnavailableProblem, UnauthenticatedProblem } from "./Problems.js"

/** Who is calling the consumer surface: the key, its project and the project's plan version. */
export interface Principal {
  readonly key: ApiKey
  readonly project: Project
  readonly plan: Plan
}

export class CurrentPrincipal extends Context.Tag("@tollgate/http/CurrentPrincipal")<CurrentPrincipal, Principal>() {}

/** `Authorization: Bearer <key>`. */
export const apiKeyBearer = HttpApiSecurity.bearer.pipe(
  HttpApiSecurity.annotate(OpenApi.Description, "An API key as a bearer token: `Authorization: Bearer tg_live_…`"),
  HttpApiSecurity.annotate(OpenApi.Format, "tg_live_… / tg_test_…")
)

/** `x-api-key: <key>`. */
export const apiKeyHeader = HttpApiSecurity.apiKey({ key: "x-api-key", in: "header" }).pipe(
  HttpApiSecurity.annotate(OpenApi.Description, "An API key in the `x-api-key` header")
)

/** Authenticates an API key (either header) and provides the caller as `CurrentPrincipal`. */
export class ApiKeyAuthentication extends HttpApiMiddleware.Tag<ApiKeyAuthentication>()(
  "@tollgate/http/ApiKeyAuthentication",
  {
    failure: Schema.Union(UnauthenticatedProblem, ServiceUnavailableProblem),
    provides: CurrentPrincipal,
    security: { apiKeyBearer, apiKeyHeader }
  }
) {}

/** `Authorization: Bearer <admin token>`. */
export const adminToken = HttpApiSecurity.bearer.pipe(
  HttpApiSecurity.annotate(OpenApi.Description, "The operator's admin token (never an API key)")
)

/** Lets only the holder of the admin token through. */
export class AdminAuthentication extends HttpApiMiddleware.Tag<AdminAuthentication>()(
  "@tollgate/http/AdminAuthentication",
  {
    failure: UnauthenticatedProblem,
    security: { adminToken }
  }
) {}
