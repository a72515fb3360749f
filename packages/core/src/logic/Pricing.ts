import type { Credits } from "../domain/Credits.js"
import type { Plan } from "../domain/Plan.js"
import type { Route } from "../domain/Route.js"

/** The route's own price, else the plan's price for the route's category, else the plan's default. */
export const priceOf = (route: Route, plan: Plan): Credits => {
  if (route.price !== undefined) return route.price
  // Own properties only: a category named "constructor" must not read Object.prototype.
  const byCategory = Object.hasOwn(plan.prices, route.category) ? plan.prices[route.category] : undefined
  return byCategory ?? plan.defaultPrice
}
