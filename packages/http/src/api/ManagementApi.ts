/**
 * The management API as routes of an `HttpLayerRouter`: the HttpApi (consumer, admin, webhooks,
 * operations), `/openapi.json`, the `/docs` reference (its script inlined: no CDN, works offline),
 * and problem answers for unknown paths under `/v1` and `/admin`.
 */
import type { HttpServerRequest } from "@effect/platform"
import { HttpApiScalar, HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import type {
  AutoTopUpStore,
  Billing,
  BillingInbox,
  Catalog,
  Gateway,
  Ids,
  KeyIssuer,
  KeyStore,
  Ledger,
  PaymentProvider,
  ProjectStore,
  ReconciliationStore,
  UsageLog
} from "@tollgate/core"
import { Reconciliation } from "@tollgate/core"
import { Effect, Layer } from "effect"
import { makeProblem, problemResponse } from "../Problem.js"
import { AccountLive } from "./account/Http.js"
import type { AdminToken } from "./AdminToken.js"
import { ManagementApi } from "./Api.js"
import { AdminAuthenticationLive, ApiKeyAuthenticationLive } from "./AuthenticationLive.js"
import { AutoTopUpLive } from "./autotopup/Http.js"
import { AdminBillingEventsLive } from "./billingevents/Http.js"
import type { BillingSettings } from "./BillingSettings.js"
import { AdminDatasetsLive, AdminPlansLive, AdminRoutesLive } from "./catalog/Http.js"
import { AdminKeysLive, KeysLive } from "./keys/Http.js"
import { OperationsLive } from "./operations/Http.js"
import { ProblemResponses } from "./ProblemResponses.js"
import { AdminProjectsLive } from "./projects/Http.js"
import { AdminReconciliationsLive } from "./reconciliation/Http.js"
import { SubscriptionLive } from "./subscription/Http.js"
import { AdminUsageLive, UsageLive } from "./usage/Http.js"
import { WebhooksLive } from "./webhooks/Http.js"
import type { WebhookSecrets } from "./WebhookSecrets.js"

export { AdminToken } from "./AdminToken.js"
export { BillingSettings } from "./BillingSettings.js"
export { WebhookSecrets } from "./WebhookSecrets.js"
export { ManagementApi }

const Handlers = Layer.mergeAll(
  AccountLive,
  AutoTopUpLive,
  SubscriptionLive,
  UsageLive,
  KeysLive,
  AdminProjectsLive,
  AdminKeysLive,
  AdminPlansLive,
  AdminRoutesLive,
  AdminDatasetsLive,
  AdminUsageLive,
  // reconciliation needs only ports, so its use case is built here over them
  AdminReconciliationsLive.pipe(Layer.provide(Reconciliation.Default)),
  AdminBillingEventsLive,
  WebhooksLive,
  OperationsLive
).pipe(Layer.provide([ApiKeyAuthenticationLive, AdminAuthenticationLive]))

const ApiRoutes = HttpLayerRouter.addHttpApi(ManagementApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide(Handlers),
  Layer.provide(ProblemResponses.layer)
)

const DocsRoute = HttpApiScalar.layerHttpLayerRouter({
  api: ManagementApi,
  path: "/docs",
  scalar: { withDefaultFonts: false }
})

const noSuchEndpoint = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.succeed(problemResponse(makeProblem(
    404,
    "not_found",
    "Not found",
    `No endpoint serves ${request.method} ${request.url.split("?")[0]}`
  )))

/** The rest of `/v1` and `/admin` belongs to this API too: its unknown paths answer as it does. */
const UnknownPaths = HttpLayerRouter.use((router) =>
  Effect.all([
    router.add("*", "/v1/*", noSuchEndpoint),
    router.add("*", "/admin/*", noSuchEndpoint)
  ])
)

export type ManagementApiRequirements =
  | HttpLayerRouter.HttpRouter
  | AutoTopUpStore
  | Gateway
  | KeyIssuer
  | Billing
  | Ledger
  | UsageLog
  | Catalog
  | ProjectStore
  | ReconciliationStore
  | KeyStore
  | BillingInbox
  | PaymentProvider
  | Ids
  | AdminToken
  | WebhookSecrets
  | BillingSettings

/**
 * Everything the management API serves, registered on the `HttpLayerRouter` it is given. Serve it
 * with `HttpLayerRouter.serve` beside other routes (the proxy); it needs the core ports and use
 * cases and the three settings tags of this folder.
 */
export const ManagementApiRoutes: Layer.Layer<never, never, ManagementApiRequirements> = Layer.mergeAll(
  ApiRoutes,
  DocsRoute,
  UnknownPaths
).pipe(
  // file responses and multipart need these; HttpApi asks for them even when unused
  Layer.provide(NodeHttpServer.layerContext)
)
