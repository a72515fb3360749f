/** The management API's contract: every group, the API-wide errors and the OpenAPI metadata. */
import { HttpApi, OpenApi } from "@effect/platform"
import { problemContentType } from "../Problem.js"
import { AccountApi } from "./account/Api.js"
import { AutoTopUpApi } from "./autotopup/Api.js"
import { AdminBillingEventsApi } from "./billingevents/Api.js"
import { AdminDatasetsApi, AdminPlansApi, AdminRoutesApi } from "./catalog/Api.js"
import { AdminKeysApi, KeysApi } from "./keys/Api.js"
import { OperationsApi } from "./operations/Api.js"
import { InternalErrorProblem, ProblemDocument, problemTitles } from "./Problems.js"
import { AdminProjectsApi } from "./projects/Api.js"
import { AdminReconciliationsApi } from "./reconciliation/Api.js"
import { SubscriptionApi } from "./subscription/Api.js"
import { AdminUsageApi, UsageApi } from "./usage/Api.js"
import { WebhooksApi } from "./webhooks/Api.js"

const description = `The management API of the Tollgate gateway.

- **/v1**: the calling project (authenticate with an API key: \`Authorization: Bearer <key>\` or \`x-api-key: <key>\`).
- **/admin**: the operator (authenticate with the admin token: \`Authorization: Bearer <token>\`).
- **/webhooks**: signed payment provider events.
- **/healthz**, **/readyz**, **/metrics**: operations.

Every error is an RFC 9457 problem document (\`application/problem+json\`) with a stable \`code\`.
Every timestamp is an integer count of milliseconds since the Unix epoch; every amount is a whole
number of credits.`

const invalidRequestDescription =
  "The request is malformed (invalid_request: bad JSON, a schema violation, a bad path, query or header " +
  "parameter; the `issues` extension lists each) or refused as such"

/**
 * Error responses as they are on the wire. HttpApi documents each status by the schemas declared
 * for it, and where several share a status (the built-in decode error always shares 400) it
 * falls back to `application/json`; the problem middleware answers every error as a problem
 * document, so the document says so.
 */
const documentProblems = (spec: Record<string, any>): Record<string, any> => {
  const problemRef = { $ref: "#/components/schemas/Problem" }
  for (const operations of Object.values<Record<string, any>>(spec.paths ?? {})) {
    for (const operation of Object.values<Record<string, any>>(operations)) {
      for (const [status, response] of Object.entries<Record<string, any>>(operation.responses ?? {})) {
        const code = Number(status)
        if (code < 400) continue
        response.content = { [problemContentType]: { schema: problemRef } }
        if (code === 400) response.description = invalidRequestDescription
        if (response.description === undefined) response.description = problemTitles[code] ?? "Error"
      }
    }
  }
  pruneUnreferencedSchemas(spec)
  return spec
}

/** Drops component schemas nothing refers to any more (the decode error's, each error class's own). */
const pruneUnreferencedSchemas = (spec: Record<string, any>) => {
  const schemas: Record<string, unknown> = spec.components?.schemas ?? {}
  const prefix = "#/components/schemas/"
  const reachable = new Set<string>()
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (node === null || typeof node !== "object") return
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string" && value.startsWith(prefix)) {
        const name = value.slice(prefix.length)
        if (!reachable.has(name)) {
          reachable.add(name)
          visit(schemas[name])
        }
      } else {
        visit(value)
      }
    }
  }
  visit({ ...spec, components: { ...spec.components, schemas: {} } })
  for (const name of Object.keys(schemas)) {
    if (!reachable.has(name)) delete schemas[name]
  }
}

export class ManagementApi extends HttpApi.make("tollgate")
  .add(AccountApi)
  .add(AutoTopUpApi)
  .add(SubscriptionApi)
  .add(UsageApi)
  .add(KeysApi)
  .add(AdminProjectsApi)
  .add(AdminKeysApi)
  .add(AdminPlansApi)
  .add(AdminRoutesApi)
  .add(AdminDatasetsApi)
  .add(AdminUsageApi)
  .add(AdminReconciliationsApi)
  .add(AdminBillingEventsApi)
  .add(WebhooksApi)
  .add(OperationsApi)
  .addError(InternalErrorProblem)
  .annotate(HttpApi.AdditionalSchemas, [ProblemDocument])
  .annotateContext(OpenApi.annotations({
    title: "Tollgate management API",
    version: "1.0.0",
    description,
    license: { name: "Proprietary" },
    transform: documentProblems
  }))
{}
