/** A paying tenant for the HTTP tests: the demo catalog in front of an upstream, credit, a key. */
import type { Credits, IdempotencyKey, ProjectId } from "@tollgate/core"
import { KeyIssuer, Ledger, seedDemoCatalog } from "@tollgate/core"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"

/** Seeds the demo catalog routed to `upstream`, grants `project` `credits` of promotion and returns a new key's secret. */
export const demoTenant = (upstream: string, project: ProjectId, credits: number) =>
  Effect.gen(function*() {
    yield* seedDemoCatalog(upstream, Date.now())
    yield* (yield* Ledger).grant({
      idempotencyKey: `test-grant:${randomUUID()}` as IdempotencyKey,
      projectId: project,
      amount: credits as Credits,
      source: "promotion"
    })
    return (yield* (yield* KeyIssuer).issue(project, "test")).secret
  })
