import { HttpApiBuilder } from "@effect/platform"
import { LimiterHealth } from "@tollgate/adapters/redis/index"
import type { ApiKeyId, EventId, ProjectId } from "@tollgate/core"
import { BillingInbox, Catalog, KeyStore, Ledger, ProjectStore, revenueAccount, UsageLog } from "@tollgate/core"
import type { Duration } from "effect"
import { Effect, Option } from "effect"
import { prometheusText } from "../../Metrics.js"
import { ManagementApi } from "../Api.js"
import { ServiceUnavailable } from "../Problems.js"

/** Each readiness check must answer within this. */
export const READINESS_TIMEOUT: Duration.DurationInput = "2 seconds"

/** A lookup by an id that never exists: answered from an index, so as cheap as a store query gets. */
const PROBE = "readiness-probe"

export const OperationsLive = HttpApiBuilder.group(ManagementApi, "operations", (handlers) =>
  Effect.gen(function*() {
    const catalog = yield* Catalog
    const ledger = yield* Ledger
    const keys = yield* KeyStore
    const projects = yield* ProjectStore
    const inbox = yield* BillingInbox
    const usage = yield* UsageLog
    // present only with the Redis limiter; its outage degrades routes by their failure policy
    // rather than stopping the gateway, so it is reported and does not fail readiness
    const limiterHealth = yield* Effect.serviceOption(LimiterHealth)

    const checks: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
      ["catalog", catalog.listPlans],
      ["ledger", ledger.accountBalance(revenueAccount)],
      ["key_store", keys.get(PROBE as ApiKeyId)],
      ["project_store", projects.get(PROBE as ProjectId)],
      ["billing_inbox", inbox.get(PROBE as EventId)],
      ["usage_log", usage.list({ projectId: PROBE as ProjectId, from: 0, to: 1 }, { limit: 1 })]
    ]

    const ready = Effect.gen(function*() {
      const results = yield* Effect.forEach(
        checks,
        ([name, check]) =>
          check.pipe(
            Effect.timeoutFail({ duration: READINESS_TIMEOUT, onTimeout: () => "timed out" }),
            Effect.tapError((e) => Effect.logWarning("readiness check failed", name, e)),
            Effect.match({ onFailure: () => [name, "failed"] as const, onSuccess: () => [name, "ok"] as const })
          ),
        { concurrency: "unbounded" }
      )
      const report: Record<string, "ok" | "failed" | "degraded"> = Object.fromEntries(results)
      if (Option.isSome(limiterHealth)) {
        const limiter = yield* limiterHealth.value.snapshot
        report["rate_limiter"] = limiter.connected ? "ok" : "degraded"
      }
      const failed = results.filter(([, status]) => status === "failed").map(([name]) => name)
      if (failed.length > 0) {
        return yield* new ServiceUnavailable({
          code: "not_ready",
          detail: `Not ready: ${failed.join(", ")} did not answer`,
          extensions: { checks: report }
        })
      }
      return { status: "ready" as const, checks: report }
    })

    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () => ready)
      .handle("metrics", () => prometheusText)
  }))
