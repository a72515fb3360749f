import { Option } from "effect"
import type { Route } from "../domain/Route.js"

/** A prefix matches at a segment boundary: `/v1/search` matches `/v1/search` and `/v1/search/x`, not `/v1/searchx`. */
export const prefixMatches = (prefix: string, path: string): boolean => {
  if (prefix === "/" || prefix === "") return true
  const p = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix
  return path === p || path.startsWith(`${p}/`)
}

/** The route with the longest matching prefix whose method matches (an exact method beats `*`). */
export const matchRoute = (routes: ReadonlyArray<Route>, method: string, path: string): Option.Option<Route> => {
  let best: Route | undefined
  for (const route of routes) {
    if (route.method !== "*" && route.method !== method) continue
    if (!prefixMatches(route.pathPrefix, path)) continue
    if (
      best === undefined || route.pathPrefix.length > best.pathPrefix.length ||
      (route.pathPrefix.length === best.pathPrefix.length && best.method === "*" && route.method !== "*")
    ) best = route
  }
  return Option.fromNullable(best)
}

/** The dataset id a call names, read from the path segment or query parameter the route says. */
export const datasetOf = (route: Route, path: string, query: URLSearchParams): string | undefined => {
  const param = route.datasetParam
  if (param === undefined) return undefined
  if (param.in === "query") return query.get(param.name) || undefined
  const p = route.pathPrefix.endsWith("/") ? route.pathPrefix.slice(0, -1) : route.pathPrefix
  const rest = path.slice(p.length).split("/").filter((s) => s.length > 0)
  const segment = rest[param.index]
  if (segment === undefined) return undefined
  try {
    return decodeURIComponent(segment)
  } catch {
    // an undecodable id is still an id the caller named: it must not pass as "no dataset"
    return segment
  }
}
