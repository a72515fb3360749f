import { Clock, Effect, Option, Schedule } from "effect"
import { earningsAccount, revenueAccount } from "../domain/Account.js"
import type { ApiKey } from "../domain/ApiKey.js"
import type { Credits } from "../domain/Credits.js"
import type { Dataset } from "../domain/Dataset.js"
import type { Hold } from "../domain/Hold.js"
import type { DatasetId, IdempotencyKey, MessageId, RequestId } from "../domain/Ids.js"
import type { Plan } from "../domain/Plan.js"
import type { Project } from "../domain/Project.js"
import type { Route } from "../domain/Route.js"
import type { LimiterDecision, UsageOutcome } from "../domain/UsageRecord.js"
import { UsageRecord } from "../domain/UsageRecord.js"
import * as ApiKeyFormat from "../logic/ApiKeyFormat.js"
import * as Entitlement from "../logic/Entitlement.js"
import * as Pricing from "../logic/Pricing.js"
import type { LimitOutcome } from "../logic/RateLimitAlgorithm.js"
import * as RateLimitAlgorithm from "../logic/RateLimitAlgorithm.js"
import * as RevenueSplit from "../logic/RevenueSplit.js"
import * as RouteMatch from "../logic/RouteMatch.js"
import { Catalog } from "../ports/Catalog.js"
import { KeyStore } from "../ports/KeyStore.js"
import type { Balance } from "../ports/Ledger.js"
import { Ledger } from "../ports/Ledger.js"
import { Outbox } from "../ports/Outbox.js"
import { ProjectStore } from "../ports/ProjectStore.js"
import { RateLimiter } from "../ports/RateLimiter.js"
import { UsageLog } from "../ports/UsageLog.js"
import { limitsFor } from "./LimitKeys.js"
import type { LimitReport } from "./Refusals.js"
import {
  DependencyUnavailable,
  dependencyUnavailable,
  InsufficientCredits,
  NotEntitled,
  type Overloaded,
  RateLimited,
  RouteNotFound,
  Unauthorized
} from "./Refusals.js"

export interface AdmitRequest {
  readonly requestId: RequestId
  readonly credential: string | undefined
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  /**
   * Runs once the call is entitled and within its rate limits, before any credit is reserved:
   * the process's own admission checks (concurrency caps, circuit breakers). A refusal here is
   * recorded like any other and reserves nothing.
   */
  readonly guard?: ((call: AdmissionContext) => Effect.Effect<void, Overloaded>) | undefined
}

/** What an admission guard knows about the call. */
export interface AdmissionContext {
  readonly project: Project
  readonly plan: Plan
  readonly route: Route
}

/** An admitted call: who, on what terms, and the credit reserved for it. */
export interface Ticket {
  readonly requestId: RequestId
  readonly startedAt: number
  readonly key: ApiKey
  readonly project: Project
  readonly plan: Plan
  readonly route: Route
  readonly dataset: Dataset | undefined
  readonly price: Credits
  readonly hold: Hold | undefined
  readonly limiter: LimiterDecision
  readonly limits: ReadonlyArray<LimitReport>
}

/** What the upstream did. `status` 0 means no response at all (timeout, connection refused). */
export interface CallOutcome {
  readonly status: number
  readonly latencyMs: number
  /** The upstream's own account of the cost (e.g. from a response header); capped by the price. */
  readonly reportedCost?: number | undefined
}

export interface Settlement {
  readonly outcome: UsageOutcome
  readonly charged: Credits
  /** The wallet after the call; absent when the ledger could not tell it just then. */
  readonly balance: Balance | undefined
}

/** A reservation outlives the route's timeout by this much, so a slow success can still be captured. */
const HOLD_MARGIN_MS = 30_000

const report = (o: LimitOutcome): LimitReport => ({
  name: o.name,
  limit: o.limit,
  windowMs: o.windowMs,
  remaining: o.remaining,
  resetMs: o.resetMs,
  shadow: o.shadow,
  exceeded: o.exceeded
})

const unavailable = dependencyUnavailable

/**
 * Only outages are worth retrying; refusals are answers. Up to three retries, 10, 20 and 40 ms
 * after the failures. The first attempt runs bare and the schedule is made only after it failed:
 * `Effect.retry` builds its schedule's state on every run, which cost about 6 µs per call on the
 * request path, where nearly every attempt succeeds.
 */
const retryOutages = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  isOutage: (e: E) => boolean = () => true
): Effect.Effect<A, E, R> =>
  Effect.catchIf(effect, isOutage, () =>
    Effect.zipRight(
      Effect.sleep("10 millis"),
      Effect.retry(effect, {
        schedule: Schedule.exponential("20 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
        while: isOutage
      })
    ))
const isLedgerOutage = (e: { readonly _tag: string }) => e._tag === "LedgerUnavailable"

/** A call is charged when the upstream answered and did not fail: below 400. */
export const isChargeable = (status: number): boolean => status >= 100 && status < 400

/**
 * The request path as use cases: `admit` authenticates, resolves, entitles, rate-limits and
 * reserves; `settle` captures (with the contributor's share) or voids, and records the usage row.
 *
 * These run on every proxied call, so they are untraced (`Effect.fnUntraced`): a traced
 * `Effect.fn` captures a stack and makes a span on each call, which measured 15–35 µs apiece —
 * a tenth of a call's whole CPU on the proxy (docs/benchmarks.md). The stores they call trace
 * their own queries.
 */
export class Gateway extends Effect.Service<Gateway>()("@tollgate/core/Gateway", {
  effect: Effect.gen(function*() {
    const keys = yield* KeyStore
    const projects = yield* ProjectStore
    const catalog = yield* Catalog
    const limiter = yield* RateLimiter
    const ledger = yield* Ledger
    const usage = yield* UsageLog
    const outbox = yield* Outbox

    /** Format and checksum first, so a forged or mistyped key costs no lookup. */
    const authenticate = Effect.fnUntraced(function*(credential: string | undefined) {
      if (credential === undefined || credential.length === 0) {
        return yield* new Unauthorized({ code: "missing_key" })
      }
      const parsed = ApiKeyFormat.parseApiKey(credential)
      if (Option.isNone(parsed)) return yield* new Unauthorized({ code: "malformed_key" })
      const hash = yield* ApiKeyFormat.hashApiKey(parsed.value.secret)
      const found = yield* keys.findByHash(hash).pipe(Effect.mapError(unavailable("key_store")))
      if (Option.isNone(found)) return yield* new Unauthorized({ code: "unknown_key" })
      const now = yield* Clock.currentTimeMillis
      const key = found.value
      if (key.status === "revoked") return yield* new Unauthorized({ code: "revoked_key" })
      if (!key.isUsableAt(now)) return yield* new Unauthorized({ code: "expired_key" })
      const project = yield* projects.get(key.projectId).pipe(Effect.mapError(unavailable("project_store")))
      if (Option.isNone(project)) return yield* new Unauthorized({ code: "unknown_key" })
      const plan = yield* catalog.getPlan(project.value.planId, project.value.planVersion).pipe(
        Effect.mapError(unavailable("catalog"))
      )
      if (Option.isNone(plan)) {
        return yield* new DependencyUnavailable({
          code: "dependency_unavailable",
          dependency: "catalog",
          message: `plan ${project.value.planId} v${project.value.planVersion} is missing`
        })
      }
      return { key, project: project.value, plan: plan.value } as const
    })

    const recordUsage = (
      t: Pick<Ticket, "requestId" | "key" | "project" | "plan" | "route" | "dataset" | "startedAt" | "limiter">,
      fields: { status: number; outcome: UsageOutcome; credits: number; latencyMs: number; refusal?: string }
    ) =>
      usage.record(
        new UsageRecord({
          requestId: t.requestId,
          at: t.startedAt,
          projectId: t.project.id,
          keyId: t.key.id,
          planId: t.plan.id,
          planVersion: t.plan.version,
          routeId: t.route.id,
          category: t.route.category,
          status: fields.status,
          outcome: fields.outcome,
          latencyMs: Math.max(0, Math.round(fields.latencyMs)),
          credits: fields.credits as Credits,
          limiter: t.limiter,
          ...(t.dataset === undefined ? {} : { datasetId: t.dataset.id }),
          ...(fields.refusal === undefined ? {} : { refusal: fields.refusal })
          // every field comes from values this use case already holds validated (the key, the
          // project, the plan, the route) or computes as integers, so the row is not validated again
        }, true)
      ).pipe(
        // the ledger is the record of money; a lost usage row must not fail the call
        retryOutages,
        Effect.catchAll((e) => Effect.logWarning("usage row not recorded", e.message)),
        Effect.asVoid
      )

    const admit = Effect.fnUntraced(function*(request: AdmitRequest) {
      const startedAt = yield* Clock.currentTimeMillis
      const { key, plan, project } = yield* authenticate(request.credential)

      const routes = yield* catalog.listRoutes.pipe(Effect.mapError(unavailable("catalog")))
      const route = RouteMatch.matchRoute(routes, request.method, request.path)
      if (Option.isNone(route)) {
        return yield* new RouteNotFound({ code: "route_not_found", method: request.method, path: request.path })
      }
      const base = { requestId: request.requestId, startedAt, key, project, plan, route: route.value }

      let dataset: Dataset | undefined
      const refuse = <E extends { readonly code: string }>(error: E, status: number, limiter: LimiterDecision) =>
        recordUsage({ ...base, dataset, limiter }, {
          status,
          outcome: "refused",
          credits: 0,
          latencyMs: 0,
          refusal: error.code
        }).pipe(Effect.zipRight(Effect.fail(error)))

      const datasetId = RouteMatch.datasetOf(route.value, request.path, request.query)
      if (datasetId !== undefined) {
        const found = yield* catalog.getDataset(datasetId as DatasetId).pipe(Effect.mapError(unavailable("catalog")))
        if (Option.isNone(found)) {
          return yield* refuse(
            new RouteNotFound({ code: "unknown_dataset", method: request.method, path: request.path }),
            404,
            "skipped"
          )
        }
        dataset = found.value
      }

      // the catalogue is only needed for the upsell, so an entitled call does not read it
      const entitlement = plan.allowedCategories.includes(route.value.category)
        ? Entitlement.Entitlement.Allowed()
        : Entitlement.entitle(
          plan,
          route.value.category,
          yield* catalog.listPlans.pipe(Effect.mapError(unavailable("catalog")))
        )
      if (entitlement._tag === "NotEntitled") {
        return yield* refuse(
          new NotEntitled({
            code: "not_entitled",
            category: route.value.category,
            plan: plan.id,
            ...Option.match(entitlement.cheapest, {
              onNone: () => ({}),
              onSome: (p) => ({ upgradeTo: { id: p.id, name: p.name, priceCents: p.priceCents } })
            })
          }),
          403,
          "skipped"
        )
      }

      const limits = limitsFor(plan.rateLimits, route.value.rateLimits, {
        keyId: key.id,
        projectId: project.id,
        planId: plan.id,
        routeId: route.value.id
      })
      let limiterDecision: LimiterDecision = "skipped"
      let reports: ReadonlyArray<LimitReport> = []
      if (limits.length > 0) {
        const decided = yield* Effect.either(limiter.consume(limits, startedAt))
        if (decided._tag === "Left") {
          if (route.value.failurePolicy === "closed") {
            return yield* refuse(unavailable("rate_limiter")(decided.left), 503, "degraded_closed")
          }
          yield* Effect.logWarning(
            "rate limiter unavailable; admitting under the fail-open policy",
            decided.left.message
          )
          limiterDecision = "degraded_open"
        } else {
          reports = decided.right.outcomes.map(report)
          if (!decided.right.allowed) {
            const tripped = decided.right.outcomes.find((o) => o.exceeded && !o.shadow)!
            // the caller may retry only once every exceeded limit admits it
            const retryAfterMs = RateLimitAlgorithm.retryAfterMs(decided.right)
            return yield* refuse(
              new RateLimited({
                code: "rate_limited",
                limit: tripped.name,
                limits: reports,
                ...(retryAfterMs === undefined ? {} : { retryAfterMs })
              }),
              429,
              "rejected"
            )
          }
          limiterDecision = "allowed"
        }
      }

      if (request.guard !== undefined) {
        const guarded = yield* Effect.either(request.guard({ project, plan, route: route.value }))
        if (guarded._tag === "Left") {
          return yield* refuse(
            guarded.left,
            guarded.left.code === "concurrency_limited" ? 429 : 503,
            limiterDecision
          )
        }
      }

      const price = Pricing.priceOf(route.value, plan)
      let hold: Hold | undefined
      if (price > 0) {
        const held = yield* ledger.hold({
          idempotencyKey: `hold:${request.requestId}` as IdempotencyKey,
          projectId: project.id,
          amount: price,
          expiresAt: startedAt + route.value.timeoutMs + HOLD_MARGIN_MS
        }).pipe(
          (held) => retryOutages(held, isLedgerOutage),
          Effect.catchTags({
            LedgerUnavailable: (e) => Effect.fail(unavailable("ledger")(e)),
            IdempotencyConflict: (e) => Effect.dieMessage(`request id reused: ${e.idempotencyKey}`),
            InvalidLedgerRequest: (e) => Effect.dieMessage(e.message)
          }),
          Effect.either
        )
        if (held._tag === "Left") {
          if (held.left._tag === "DependencyUnavailable") return yield* held.left
          const balance = yield* ledger.balance(project.id).pipe(Effect.mapError(unavailable("ledger")))
          return yield* refuse(
            new InsufficientCredits({
              code: "insufficient_credits",
              projectId: project.id,
              required: price,
              available: held.left.available,
              balance: balance.balance
            }),
            402,
            limiterDecision
          )
        }
        hold = held.right.hold
      }

      return { ...base, dataset, price, hold, limiter: limiterDecision, limits: reports } satisfies Ticket
    })

    /**
     * Captures the call's cost (the price, or less if the upstream reports less) with the
     * dataset contributor's share, or voids the hold when the upstream failed; records the
     * usage row; queues a low-balance prompt when the call leaves the wallet below the plan's threshold.
     */
    const settle = Effect.fnUntraced(function*(ticket: Ticket, call: CallOutcome) {
      const chargeable = isChargeable(call.status)
      const reported = call.reportedCost
      const cost = (reported !== undefined && Number.isSafeInteger(reported) && reported >= 0
        ? Math.min(reported, ticket.price)
        : ticket.price) as Credits
      let outcome: UsageOutcome = chargeable ? "captured" : "voided"
      let charged = 0 as Credits
      let refusal: string | undefined
      if (ticket.hold !== undefined) {
        const holdId = ticket.hold.id
        if (chargeable) {
          const split = RevenueSplit.splitRevenue(cost, ticket.dataset?.shareBps)
          const payees = [
            ...(ticket.dataset !== undefined && split.contributor > 0
              ? [{ account: earningsAccount(ticket.dataset.contributor), amount: split.contributor }]
              : []),
            { account: revenueAccount, amount: split.platform }
          ]
          const captured = yield* ledger.capture({
            idempotencyKey: `capture:${ticket.requestId}` as IdempotencyKey,
            holdId,
            amount: cost,
            payees
          }).pipe((captured) => retryOutages(captured, isLedgerOutage), Effect.either)
          if (captured._tag === "Right") {
            charged = cost
          } else if (captured.left._tag === "LedgerUnavailable") {
            return yield* unavailable("ledger")(captured.left)
          } else {
            // the hold outlived its deadline (or was resolved elsewhere): the caller is not charged
            outcome = "voided"
            refusal = captured.left.code
            yield* Effect.logWarning("capture refused; the call is not charged", refusal)
          }
        } else {
          yield* ledger.void({ idempotencyKey: `void:${ticket.requestId}` as IdempotencyKey, holdId }).pipe(
            (voided) => retryOutages(voided, isLedgerOutage),
            Effect.catchAll((e) =>
              e._tag === "LedgerUnavailable"
                ? Effect.fail(unavailable("ledger")(e))
                : Effect.logWarning("void refused; the hold resolves on its own", e._tag)
            )
          )
        }
      }
      yield* recordUsage(ticket, {
        status: call.status,
        outcome,
        credits: charged,
        latencyMs: call.latencyMs,
        ...(refusal === undefined ? {} : { refusal })
      })
      // the call is settled: a balance the ledger cannot tell now must not undo that (the caller
      // would be refused an answer it has paid for), so it is only left out
      const balance = Option.getOrUndefined(yield* Effect.option(ledger.balance(ticket.project.id)))
      const threshold = ticket.plan.lowBalanceThreshold
      if (charged > 0 && balance !== undefined && balance.available < threshold) {
        // Concurrent calls each see a different balance, so "crossed the threshold" is not
        // observable exactly; any charged call that leaves the wallet low asks, and the message
        // id lets one prompt per wallet per UTC day through.
        const now = yield* Clock.currentTimeMillis
        const day = new Date(now).toISOString().slice(0, 10)
        yield* outbox.enqueue({
          id: `low_balance:${ticket.project.id}:${day}` as MessageId,
          projectId: ticket.project.id,
          topic: "balance.low",
          payload: { projectId: ticket.project.id, available: balance.available, threshold },
          availableAt: now
        }).pipe(Effect.catchAll((e) => Effect.logWarning("low-balance prompt not queued", e.message)))
      }
      return { outcome, charged, balance } satisfies Settlement
    })

    return { authenticate, admit, settle } as const
  })
}) {}
