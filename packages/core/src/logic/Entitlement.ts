import { Data, Option } from "effect"
import type { Category } from "../domain/Ids.js"
import type { Plan } from "../domain/Plan.js"

export type Entitlement = Data.TaggedEnum<{
  Allowed: {}
  /** `cheapest` is the upsell: the cheapest public plan that allows the category. */
  NotEntitled: { readonly category: Category; readonly cheapest: Option.Option<Plan> }
}>
export const Entitlement = Data.taggedEnum<Entitlement>()

/** Only the latest version of each plan is offered. */
const latestVersions = (catalogue: ReadonlyArray<Plan>): ReadonlyArray<Plan> => {
  const latest = new Map<string, Plan>()
  for (const plan of catalogue) {
    const seen = latest.get(plan.id)
    if (seen === undefined || plan.version > seen.version) latest.set(plan.id, plan)
  }
  return [...latest.values()]
}

// Code-unit order, not locale order, so the suggestion is the same on every host.
const cheaper = (a: Plan, b: Plan): boolean =>
  a.priceCents < b.priceCents || (a.priceCents === b.priceCents && a.id < b.id)

export const entitle = (plan: Plan, category: Category, catalogue: ReadonlyArray<Plan>): Entitlement => {
  if (plan.allowedCategories.includes(category)) return Entitlement.Allowed()
  let cheapest: Plan | undefined
  for (const candidate of latestVersions(catalogue)) {
    if (!candidate.public || !candidate.allowedCategories.includes(category)) continue
    if (cheapest === undefined || cheaper(candidate, cheapest)) cheapest = candidate
  }
  return Entitlement.NotEntitled({ category, cheapest: Option.fromNullable(cheapest) })
}
