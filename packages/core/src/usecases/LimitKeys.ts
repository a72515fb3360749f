import type { ApiKeyId, PlanId, ProjectId, RouteId } from "../domain/Ids.js"
import type { RateLimitPolicy } from "../domain/RateLimitPolicy.js"
import type { LimitRequest } from "../ports/RateLimiter.js"

export interface LimitSubject {
  readonly keyId: ApiKeyId
  readonly projectId: ProjectId
  readonly planId: PlanId
  readonly routeId: RouteId
}

/**
 * The counter a policy consumes. Tenant-scoped counters carry the project in braces (a Redis
 * Cluster hash tag) so one request's tenant limits live in one slot and can be decided in one
 * script; route- and plan-wide counters are shared by every tenant. `origin` keeps a plan's
 * and a route's policies of the same name apart.
 */
export const limitKey = (policy: RateLimitPolicy, origin: "plan" | "route", s: LimitSubject): string => {
  const tail = `${origin}:${policy.name}`
  switch (policy.scope) {
    case "key":
      return `{${s.projectId}}:key:${s.keyId}:${tail}`
    case "project":
      return `{${s.projectId}}:project:${tail}`
    case "project_route":
      return `{${s.projectId}}:route:${s.routeId}:${tail}`
    case "route":
      return `route:${s.routeId}:${tail}`
    case "plan":
      return `plan:${s.planId}:${tail}`
  }
}

/** Every limit that applies to one call: the plan's, then the route's, each costing `cost`. */
export const limitsFor = (
  planLimits: ReadonlyArray<RateLimitPolicy>,
  routeLimits: ReadonlyArray<RateLimitPolicy>,
  subject: LimitSubject,
  cost = 1
): ReadonlyArray<LimitRequest> => [
  ...planLimits.map((policy) => ({ key: limitKey(policy, "plan", subject), policy, cost })),
  ...routeLimits.map((policy) => ({ key: limitKey(policy, "route", subject), policy, cost }))
]
