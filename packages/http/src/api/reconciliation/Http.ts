import { HttpApiBuilder } from "@effect/platform"
import { Reconciliation } from "@tollgate/core"
import { Effect, Option } from "effect"
import { ManagementApi } from "../Api.js"
import { DEFAULT_LIMIT } from "../Params.js"
import { BadRequest, notFound, orUnavailable } from "../Problems.js"

export const AdminReconciliationsLive = HttpApiBuilder.group(
  ManagementApi,
  "adminReconciliations",
  (handlers) =>
    Effect.gen(function*() {
      const reconciliation = yield* Reconciliation
      return handlers
        .handle("run", ({ payload }) =>
          reconciliation.run(payload).pipe(
            Effect.catchTags({
              InvalidReconciliationWindow: (e) => Effect.fail(new BadRequest({ code: e.code, detail: e.message })),
              ReconciliationStoreUnavailable: (e) => orUnavailable("reconciliation_store")(Effect.fail(e))
            })
          ))
        .handle("list", ({ urlParams }) =>
          reconciliation.list({ cursor: urlParams.cursor, limit: urlParams.limit ?? DEFAULT_LIMIT }).pipe(
            Effect.map((page) => ({ data: page.runs, nextCursor: page.nextCursor })),
            orUnavailable("reconciliation_store")
          ))
        .handle("get", ({ path }) =>
          reconciliation.get(path.id).pipe(
            orUnavailable("reconciliation_store"),
            Effect.flatMap(Option.match({
              onNone: () =>
                Effect.fail(notFound("not_found", `No reconciliation report ${path.id}`)),
              onSome: Effect.succeed
            }))
          ))
    })
)
