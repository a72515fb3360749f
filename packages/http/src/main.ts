/**
 * The Tollgate process: `pnpm start`.
 *
 * - With no `DATABASE_URL` it runs the embedded default: gateway and worker in one process, PGlite
 *   in `TOLLGATE_DATA_DIR` (default `.tollgate`, surviving restarts), the in-process rate
 *   limiter, the sandbox payment provider, and a demo upstream; it seeds the Free/Basic/Pro
 *   catalog, a contributor and one demo project per plan, and prints a ready `curl` line for each.
 * - With `DATABASE_URL` it runs in production mode: PostgreSQL, Redis (`REDIS_URL`), an admin
 *   token (`TOLLGATE_ADMIN_TOKEN`) and optionally a configuration file (`TOLLGATE_CONFIG`); it
 *   keeps no state of its own, so any number of instances can run behind a load balancer. The
 *   worker runs in it too unless `TOLLGATE_WORKER=false`.
 *
 * Every setting is read and validated before anything starts; a bad one stops the process with a
 * message naming the variable (or, for the configuration file, the field).
 */
import { FileSystem, HttpServer } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { StripeConfig, StripePaymentProviderLive } from "@tollgate/adapters/stripe/index"
import type { Credits, IdempotencyKey, PlanId, ProjectId } from "@tollgate/core"
import {
  ApiKeyFormat,
  AutoTopUp,
  defaultPlans,
  demoContributor,
  demoDataset,
  demoRoutes,
  FreePlan,
  KeyIssuer,
  KeyStore,
  Ledger,
  PaymentProvider,
  PaymentProviderError,
  Reconciliation
} from "@tollgate/core"
import {
  AutoTopUpWorkerLive,
  EventTranslator,
  OutboxDeliveryConfig,
  OutboxDeliveryEnvConfig,
  PlanChangeLoopConfig,
  PlanChangeLoopEnvConfig,
  PlanChangeLoopLive,
  ReconcileConfig,
  ReconcileEnvConfig,
  ReconcileLive,
  WorkerConfig,
  WorkerEnvConfig,
  WorkerLive
} from "@tollgate/worker"
import { Config, ConfigError, Console, Effect, Layer, Option, Redacted } from "effect"
import { join, resolve } from "node:path"
import { AdminToken } from "./api/AdminToken.js"
import { BillingSettings } from "./api/BillingSettings.js"
import { ManagementApiRoutes } from "./api/ManagementApi.js"
import { WebhookSecrets } from "./api/WebhookSecrets.js"
import type { ConfigFile } from "./config/ConfigFile.js"
import { applyConfigFile, decodeConfigFile, loadConfigFile } from "./config/ConfigFile.js"
import { startDemoUpstream } from "./demo/DemoUpstream.js"
import { gatewayServer, serverUrl, UseCasesLive } from "./GatewayServer.js"
import { CheckoutReturnRoutes } from "./sandbox/CheckoutReturnPages.js"
import { sandboxWithChargeEvents } from "./sandbox/SandboxChargeEvents.js"
import { SandboxCheckoutRoutes } from "./sandbox/SandboxCheckout.js"
import { embeddedStack, productionStack } from "./Stack.js"

const randomSecret = (bytes: number) =>
  Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url")

/** Every environment setting, validated up front. */
const Settings = Config.all({
  databaseUrl: Config.option(Config.string("DATABASE_URL")),
  port: Config.port("PORT").pipe(Config.withDefault(8080)),
  host: Config.option(Config.string("HOST")),
  dataDir: Config.string("TOLLGATE_DATA_DIR").pipe(Config.withDefault(".tollgate")),
  configFile: Config.option(Config.string("TOLLGATE_CONFIG")),
  adminToken: Config.option(
    Config.string("TOLLGATE_ADMIN_TOKEN").pipe(
      Config.validate({ message: "Expected at least 24 characters", validation: (t) => t.length >= 24 }),
      Config.map(Redacted.make)
    )
  ),
  publicUrl: Config.option(Config.string("TOLLGATE_PUBLIC_URL")),
  stripeWebhookSecret: Config.option(Config.redacted("STRIPE_WEBHOOK_SECRET")),
  stripeSecretKey: Config.option(Config.redacted("STRIPE_SECRET_KEY")),
  demoUpstreamPort: Config.port("TOLLGATE_DEMO_UPSTREAM_PORT").pipe(Config.withDefault(4000)),
  runWorker: Config.boolean("TOLLGATE_WORKER").pipe(Config.withDefault(true)),
  freePlanId: Config.string("TOLLGATE_FREE_PLAN").pipe(Config.withDefault("free"))
})
type Settings = Config.Config.Success<typeof Settings>

/** Without the Stripe adapter configured, payments are refused, clearly; nothing pretends to be Stripe. */
const PaymentsNotConfigured = Layer.succeed(PaymentProvider, {
  name: "stripe",
  createTopUpCheckout: () =>
    Effect.fail(new PaymentProviderError({ message: "payments are not configured on this deployment" })),
  chargeOffSession: () =>
    Effect.fail(new PaymentProviderError({ message: "payments are not configured on this deployment" }))
})

/** The demo catalog as a configuration file, applied like an operator's (idempotent across restarts). */
const demoConfig = (upstream: string): Effect.Effect<ConfigFile, unknown> =>
  decodeConfigFile({
    plans: defaultPlans.map((p) => ({ ...p })),
    routes: demoRoutes(upstream).map((r) => ({ ...r })),
    datasets: [{ ...demoDataset }],
    projects: [
      { id: demoContributor, name: "Acme Data (contributor)", planId: "free" },
      ...defaultPlans.map((p) => ({ id: `demo-${p.id}`, name: `Demo ${p.name}`, planId: p.id }))
    ]
  }, "<embedded demo catalog>")

const DEMO_CREDITS = 1_000

/**
 * The worker's loops beside the use cases, tuned by the `WORKER_*` variables: expiry sweeps and
 * billing events, outbox delivery with auto top-up (and the replay of stalled charges), the
 * daily reconciliation, and the due plan changes (`WORKER_PLAN_CHANGE_SWEEP_MS`).
 */
const workerWith = <A, E, R>(useCases: Layer.Layer<A, E, R>, creditPriceCents?: number) =>
  Layer.mergeAll(
    WorkerLive.pipe(Layer.provide(WorkerConfig.fromEnv)),
    AutoTopUpWorkerLive.pipe(
      Layer.provide(AutoTopUp.Default),
      Layer.provide(
        creditPriceCents === undefined
          ? OutboxDeliveryConfig.fromEnv
          : OutboxDeliveryConfig.fromEnvPricedAt(creditPriceCents)
      )
    ),
    ReconcileLive.pipe(Layer.provide(Reconciliation.Default), Layer.provide(ReconcileConfig.fromEnv)),
    PlanChangeLoopLive.pipe(Layer.provide(PlanChangeLoopConfig.fromEnv))
  ).pipe(Layer.provideMerge(useCases))

/**
 * One key per demo project, kept in `<dataDir>/demo-keys.json` (the demo's own secrets, never the
 * store's: the store has only hashes) so the printed curl lines stay the same across restarts.
 */
const demoKeys = (dataDir: string, projects: ReadonlyArray<ProjectId>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = join(dataDir, "demo-keys.json")
    const saved: Record<string, string> = yield* fs.readFileString(file).pipe(
      Effect.map((text) => JSON.parse(text) as Record<string, string>),
      Effect.orElseSucceed(() => ({}))
    )
    const keys = yield* KeyStore
    const issuer = yield* KeyIssuer
    const out: Record<string, string> = {}
    for (const project of projects) {
      const secret = saved[project]
      if (secret !== undefined) {
        const found = yield* keys.findByHash(yield* ApiKeyFormat.hashApiKey(secret))
        if (Option.isSome(found) && found.value.isUsableAt(Date.now()) && found.value.projectId === project) {
          out[project] = secret
          continue
        }
      }
      out[project] = (yield* issuer.issue(project, "test", { name: "demo" })).secret
    }
    yield* fs.writeFileString(file, JSON.stringify(out, null, 2), { mode: 0o600 })
    return out
  })

const curlLines = (base: string, keys: Record<string, string>) =>
  [
    ["demo-free", "Free  ", `"${base}/api/search?q=rain"`],
    ["demo-basic", "Basic ", `"${base}/api/datasets/weather-eu/rows?limit=25"`],
    ["demo-pro", "Pro   ", `-X POST "${base}/api/export?rows=5"`]
  ].filter(([project]) => keys[project!] !== undefined).map(([project, label, rest]) =>
    `  ${label} curl -H "Authorization: Bearer ${keys[project!]}" ${rest}`
  )

const embedded = (settings: Settings) =>
  Effect.gen(function*() {
    const dataDir = resolve(settings.dataDir)
    const { url: upstream } = yield* Effect.acquireRelease(
      Effect.promise(() => startDemoUpstream(settings.demoUpstreamPort)),
      ({ server }) => Effect.sync(() => server.close())
    )
    const host = Option.getOrElse(settings.host, () => "127.0.0.1")
    const publicUrl = Option.getOrElse(settings.publicUrl, () => `http://${host}:${settings.port}`)
    const adminToken = Option.getOrElse(settings.adminToken, () => Redacted.make(`adm_${randomSecret(24)}`))
    const app = gatewayServer(Layer.merge(ManagementApiRoutes, SandboxCheckoutRoutes), { port: settings.port, host })
      .pipe(
        Layer.provide(Layer.mergeAll(
          AdminToken.layer(adminToken),
          WebhookSecrets.layer({
            stripe: settings.stripeWebhookSecret,
            sandbox: Redacted.make(`whsec_sandbox_${randomSecret(24)}`)
          }),
          BillingSettings.layer()
        )),
        Layer.provideMerge(settings.runWorker ? workerWith(UseCasesLive) : UseCasesLive),
        Layer.provideMerge(Layer.mergeAll(
          Layer.succeed(FreePlan, { planId: settings.freePlanId as PlanId }),
          EventTranslator.Sandbox,
          sandboxWithChargeEvents({ baseUrl: publicUrl })
        )),
        Layer.provideMerge(embeddedStack(join(dataDir, "db")))
      )
    const context = yield* Layer.build(app)
    return yield* Effect.gen(function*() {
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      const file = Option.isSome(settings.configFile)
        ? yield* loadConfigFile(settings.configFile.value)
        : yield* demoConfig(upstream)
      const applied = yield* applyConfigFile(file)
      // the demo projects of the built-in catalog; with an operator's file, those of its projects that exist
      const known = new Set((file.projects ?? []).map((p) => p.id as string))
      const projects = defaultPlans.map((p) => `demo-${p.id}` as ProjectId).filter((id) =>
        Option.isNone(settings.configFile) || known.has(id)
      )
      const ledger = yield* Ledger
      for (const project of projects) {
        // once per project, ever: the key makes every later start a no-op
        yield* ledger.grant({
          idempotencyKey: `demo-welcome:${project}` as IdempotencyKey,
          projectId: project,
          amount: DEMO_CREDITS as Credits,
          source: "promotion",
          reason: "demo credit"
        })
      }
      const keys = yield* demoKeys(dataDir, projects)
      yield* Console.log([
        "",
        "Tollgate is running (embedded: PGlite in " + join(dataDir, "db") + ", in-process rate limiter,",
        "sandbox payments — no money moves, nothing is sent to a payment provider).",
        "",
        `  gateway        ${base}`,
        `  API docs       ${base}/docs`,
        `  OpenAPI        ${base}/openapi.json`,
        `  metrics        ${base}/metrics`,
        `  demo upstream  ${upstream}`,
        `  admin token    ${Redacted.value(adminToken)}${
          Option.isNone(settings.adminToken) ? "  (generated; set TOLLGATE_ADMIN_TOKEN to fix it)" : ""
        }`,
        "",
        `Demo projects (${DEMO_CREDITS} credits each on first start; plans created now: ${applied.plansCreated.length}):`,
        ...curlLines(base, keys),
        "",
        "Each answer carries Tollgate-Credits-Charged and Tollgate-Credits-Remaining; try the Free key on the",
        "Basic route for a 403 with the upgrade path, or call it three times a second for a 429.",
        ...(keys["demo-basic"] === undefined
          ? []
          : [`Your balance: curl -H "Authorization: Bearer ${keys["demo-basic"]}" ${base}/v1/project`]),
        ...(keys["demo-basic"] === undefined ? [] : [
          `Top up: curl -X POST -H "Authorization: Bearer ${
            keys["demo-basic"]
          }" -H "content-type: application/json" \\`,
          `          -d '{"credits":500}' ${base}/v1/topups   (open the returned url and press Pay)`
        ]),
        ""
      ].join("\n"))
      return yield* Effect.never
    }).pipe(Effect.provide(context))
  })

const production = (settings: Settings, databaseUrl: string) =>
  Effect.gen(function*() {
    void databaseUrl
    if (Option.isNone(settings.adminToken)) {
      return yield* Effect.fail(
        ConfigError.MissingData(["TOLLGATE_ADMIN_TOKEN"], "Expected TOLLGATE_ADMIN_TOKEN to be set in production mode")
      )
    }
    const file = Option.isSome(settings.configFile)
      ? Option.some(yield* loadConfigFile(settings.configFile.value))
      : Option.none()
    const host = Option.getOrElse(settings.host, () => "0.0.0.0")
    const app = gatewayServer(Layer.merge(ManagementApiRoutes, CheckoutReturnRoutes), { port: settings.port, host })
      .pipe(
        Layer.provide(Layer.mergeAll(
          AdminToken.layer(settings.adminToken.value),
          WebhookSecrets.layer({
            stripe: settings.stripeWebhookSecret,
            // no sandbox in production: its endpoint verifies against a secret nobody knows
            sandbox: Redacted.make(randomSecret(32))
          }),
          BillingSettings.layer(Option.match(file, { onNone: () => ({}), onSome: (f) => f.billing ?? {} }))
        )),
        Layer.provideMerge(
          settings.runWorker
            ? workerWith(UseCasesLive, Option.getOrUndefined(file)?.billing?.creditPriceCents)
            : UseCasesLive
        ),
        // Stripe's events are translated for provider "stripe"; others must be neutral payloads
        Layer.provideMerge(EventTranslator.Stripe.pipe(
          Layer.provideMerge(
            Option.isSome(settings.stripeSecretKey) ? StripePaymentProviderLive : PaymentsNotConfigured
          ),
          Layer.merge(Layer.succeed(FreePlan, { planId: settings.freePlanId as PlanId }))
        )),
        Layer.provideMerge(productionStack)
      )
    const context = yield* Layer.build(app)
    return yield* Effect.gen(function*() {
      if (Option.isSome(file)) {
        const applied = yield* applyConfigFile(file.value)
        yield* Effect.logInfo(
          `configuration applied: ${applied.plansCreated.length} plan versions created, ${applied.routes} routes, ${applied.datasets} datasets`
        )
      }
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      yield* Effect.logInfo(`Tollgate listening on ${base} (PostgreSQL + Redis)`)
      return yield* Effect.never
    }).pipe(Effect.provide(context))
  })

const main = Effect.gen(function*() {
  const settings = yield* Settings
  // every other setting is read again by its layer; reading it here first makes a bad value stop
  // the process before anything connects
  yield* Effect.all([WorkerEnvConfig, OutboxDeliveryEnvConfig, ReconcileEnvConfig, PlanChangeLoopEnvConfig], {
    discard: true
  })
  if (Option.isSome(settings.databaseUrl) && Option.isSome(settings.stripeSecretKey)) yield* StripeConfig
  return yield* Option.match(settings.databaseUrl, {
    onNone: () => embedded(settings),
    onSome: (url) => production(settings, url)
  })
}).pipe(
  Effect.scoped,
  Effect.tapErrorCause((cause) => Effect.logError("Tollgate could not start", cause)),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, { disableErrorReporting: true })
