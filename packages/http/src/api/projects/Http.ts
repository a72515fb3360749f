import { HttpApiBuilder } from "@effect/platform"
import type { IdempotencyKey, PlanId, ProjectId } from "@tollgate/core"
import { Billing, Catalog, Ids, Ledger, Project, ProjectStore, promotionsAccount } from "@tollgate/core"
import { Clock, Effect, Option } from "effect"
import { ManagementApi } from "../Api.js"
import {
  BadRequest,
  Conflict,
  fromDependencyUnavailable,
  invalidRequest,
  notFound,
  orUnavailable,
  unavailable
} from "../Problems.js"
import { balanceView } from "../Views.js"

const projectNotFound = (id: string) => notFound("project_not_found", `No project ${id}`)

const idempotencyConflict = (key: string) =>
  new Conflict({
    code: "idempotency_conflict",
    detail: `Idempotency-Key ${key} was already used with a different request`
  })

/** Operator keys share one namespace, apart from the gateway's own keys (`hold:`, `purchase:`, …). */
const ledgerKey = (operation: "grant" | "adjust", key: string) => `admin:${operation}:${key}` as IdempotencyKey

export const AdminProjectsLive = HttpApiBuilder.group(
  ManagementApi,
  "adminProjects",
  (handlers) =>
    Effect.gen(function*() {
      const projects = yield* ProjectStore
      const catalog = yield* Catalog
      const ledger = yield* Ledger
      const billing = yield* Billing
      const ids = yield* Ids

      const getProject = Effect.fn("AdminProjects.getProject")(function*(id: ProjectId) {
        const project = yield* projects.get(id).pipe(orUnavailable("project_store"))
        if (Option.isNone(project)) return yield* projectNotFound(id)
        return project.value
      })

      /** The plan a body names; an unknown plan is the body's fault, hence 400. */
      const planFor = Effect.fn("AdminProjects.planFor")(function*(planId: PlanId, version: number | undefined) {
        const plan = yield* catalog.getPlan(planId, version).pipe(orUnavailable("catalog"))
        if (Option.isNone(plan)) {
          return yield* new BadRequest({
            code: "plan_not_found",
            detail: version === undefined ? `No plan ${planId}` : `No plan ${planId} version ${version}`
          })
        }
        return plan.value
      })

      const ledgerErrors = {
        LedgerUnavailable: () => Effect.fail(unavailable("ledger")),
        IdempotencyConflict: (e: { readonly idempotencyKey: string }) =>
          Effect.fail(idempotencyConflict(e.idempotencyKey.replace(/^admin:\w+:/, ""))),
        InvalidLedgerRequest: (e: { readonly message: string }) => Effect.fail(invalidRequest(e.message))
      }

      return handlers
        .handle("list", () => projects.list.pipe(Effect.map((data) => ({ data })), orUnavailable("project_store")))
        .handle("get", ({ path }) =>
          Effect.gen(function*() {
            const project = yield* getProject(path.id)
            const plan = yield* catalog.getPlan(project.planId, project.planVersion).pipe(orUnavailable("catalog"))
            if (Option.isNone(plan)) {
              return yield* Effect.dieMessage(`project ${project.id} is on a missing plan version`)
            }
            const balance = yield* ledger.balance(project.id).pipe(orUnavailable("ledger"))
            return { project, plan: plan.value, balance: balanceView(balance) }
          }))
        .handle("create", ({ payload }) =>
          Effect.gen(function*() {
            const plan = yield* planFor(payload.planId, payload.planVersion)
            const id = payload.id ?? ((yield* ids.next("prj")) as ProjectId)
            if (Option.isSome(yield* projects.get(id).pipe(orUnavailable("project_store")))) {
              return yield* new Conflict({ code: "project_exists", detail: `Project ${id} already exists` })
            }
            const project = new Project({
              id,
              name: payload.name,
              planId: plan.id,
              planVersion: plan.version,
              createdAt: yield* Clock.currentTimeMillis
            })
            yield* projects.put(project).pipe(orUnavailable("project_store"))
            return project
          }))
        .handle("changePlan", ({ path, payload }) =>
          Effect.gen(function*() {
            const project = yield* getProject(path.id)
            const plan = yield* planFor(payload.planId, payload.planVersion)
            const moved = new Project({ ...project, planId: plan.id, planVersion: plan.version })
            yield* projects.put(moved).pipe(orUnavailable("project_store"))
            return moved
          }))
        .handle("grant", ({ headers, path, payload }) =>
          Effect.gen(function*() {
            const granted = yield* billing.grantCredits({
              idempotencyKey: ledgerKey("grant", headers["idempotency-key"]),
              projectId: path.id,
              amount: payload.credits,
              source: payload.source,
              expiresAt: payload.expiresAt,
              reason: payload.reason
            }).pipe(
              Effect.catchTags({
                ...ledgerErrors,
                ProjectNotFound: () => Effect.fail(projectNotFound(path.id)),
                DependencyUnavailable: (e) => Effect.fail(fromDependencyUnavailable(e))
              })
            )
            return { result: granted.code, grant: granted.grant, transaction: granted.transaction }
          }))
        .handle("adjust", ({ headers, path, payload }) =>
          Effect.gen(function*() {
            yield* getProject(path.id)
            if (payload.direction === "credit") {
              const granted = yield* billing.grantCredits({
                idempotencyKey: ledgerKey("adjust", headers["idempotency-key"]),
                projectId: path.id,
                amount: payload.credits,
                source: "adjustment",
                reason: payload.reason
              }).pipe(
                Effect.catchTags({
                  ...ledgerErrors,
                  ProjectNotFound: () => Effect.fail(projectNotFound(path.id)),
                  DependencyUnavailable: (e) => Effect.fail(fromDependencyUnavailable(e))
                })
              )
              return {
                result: granted.code,
                direction: payload.direction,
                credits: granted.grant.amount,
                transaction: granted.transaction
              }
            }
            const withdrawn = yield* ledger.withdraw({
              idempotencyKey: ledgerKey("adjust", headers["idempotency-key"]),
              projectId: path.id,
              amount: payload.credits,
              to: promotionsAccount,
              reason: payload.reason
            }).pipe(
              Effect.catchTags({
                ...ledgerErrors,
                InsufficientCredit: (e) =>
                  Effect.fail(
                    new Conflict({
                      code: "insufficient_credit",
                      detail: `The wallet holds ${e.available} available credits, less than ${e.requested}`,
                      extensions: { requested: e.requested, available: e.available }
                    })
                  )
              })
            )
            return {
              result: withdrawn.code,
              direction: payload.direction,
              credits: withdrawn.withdrawn,
              transaction: withdrawn.transaction
            }
          }))
    })
)
