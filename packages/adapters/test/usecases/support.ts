import type { Credits, IdempotencyKey, ProjectId, RequestId } from "@tollgate/core"
import { Billing, Gateway, KeyIssuer, Ledger, seedDemoCatalog } from "@tollgate/core"
import { Clock, Effect, Layer } from "effect"
import { MemoryStackLive } from "../../src/memory/MemoryStack.js"
import { unique } from "../contracts/fixtures.js"

export const UPSTREAM = "http://127.0.0.1:9"

/** The use cases over every port in memory, fresh per test; `override` replaces some ports. */
export const useCases = <R>(override?: Layer.Layer<R>) =>
  Layer.mergeAll(Gateway.Default, Billing.Default, KeyIssuer.Default).pipe(
    Layer.provideMerge(override === undefined ? MemoryStackLive : Layer.merge(MemoryStackLive, override))
  )

export const UseCasesLive = useCases()

/** Seeds the demo catalog and returns a key and some credit for the demo project of `plan`. */
export const demoTenant = (plan: "free" | "basic" | "pro", credits: number) =>
  Effect.gen(function*() {
    yield* seedDemoCatalog(UPSTREAM, yield* Clock.currentTimeMillis)
    const projectId = `demo-${plan}` as ProjectId
    const { secret, key } = yield* (yield* KeyIssuer).issue(projectId, "test")
    if (credits > 0) {
      yield* (yield* Ledger).grant({
        idempotencyKey: unique("seed") as IdempotencyKey,
        projectId,
        amount: credits as Credits,
        source: "purchase"
      })
    }
    return { projectId, secret, key }
  })

export const call = (secret: string | undefined, method: string, url: string) => {
  const parsed = new URL(url, "http://gateway.local")
  return {
    requestId: unique("req") as RequestId,
    credential: secret,
    method,
    path: parsed.pathname,
    query: parsed.searchParams
  }
}
