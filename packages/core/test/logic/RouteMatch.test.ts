import { assert, describe, it } from "@effect/vitest"
import type { Category, RouteId } from "@tollgate/core"
import { Route, RouteMatch } from "@tollgate/core"
import { FastCheck as fc, Option } from "effect"

const route = (id: string, method: Route["method"], pathPrefix: string, datasetParam?: Route["datasetParam"]) =>
  new Route({
    id: id as RouteId,
    method,
    pathPrefix,
    upstream: "http://127.0.0.1:1",
    category: "search" as Category,
    ...(datasetParam === undefined ? {} : { datasetParam })
  })

describe("RouteMatch", () => {
  const routes = [
    route("any", "*", "/api"),
    route("search", "GET", "/api/search"),
    route("search-any", "*", "/api/search"),
    route("ds", "*", "/api/datasets", { in: "path", index: 0 }),
    route("q", "GET", "/api/q", { in: "query", name: "dataset" })
  ]
  const match = (method: string, path: string) => Option.getOrUndefined(RouteMatch.matchRoute(routes, method, path))?.id

  it("the longest prefix at a segment boundary wins; an exact method beats '*'", () => {
    assert.strictEqual(match("GET", "/api/search"), "search")
    assert.strictEqual(match("GET", "/api/search/deep"), "search")
    assert.strictEqual(match("POST", "/api/search"), "search-any")
    assert.strictEqual(match("GET", "/api/searchx"), "any")
    assert.strictEqual(match("GET", "/other"), undefined)
  })

  it("reads the dataset from the path segment or the query; an undecodable id is kept, not dropped", () => {
    const ds = routes[3]!
    assert.strictEqual(RouteMatch.datasetOf(ds, "/api/datasets/weather/rows", new URLSearchParams()), "weather")
    assert.strictEqual(RouteMatch.datasetOf(ds, "/api/datasets/a%20b", new URLSearchParams()), "a b")
    assert.strictEqual(RouteMatch.datasetOf(ds, "/api/datasets/%E0%A4%A", new URLSearchParams()), "%E0%A4%A")
    assert.strictEqual(RouteMatch.datasetOf(ds, "/api/datasets", new URLSearchParams()), undefined)
    assert.strictEqual(RouteMatch.datasetOf(routes[4]!, "/api/q", new URLSearchParams("dataset=x")), "x")
    assert.strictEqual(RouteMatch.datasetOf(routes[1]!, "/api/search/x", new URLSearchParams()), undefined)
  })

  it.prop(
    "a matched route's prefix always matches the path at a segment boundary",
    { path: fc.array(fc.constantFrom("api", "search", "searchx", "datasets", "q", "x"), { maxLength: 4 }) },
    ({ path }) => {
      const p = `/${path.join("/")}`
      const m = RouteMatch.matchRoute(routes, "GET", p)
      if (Option.isNone(m)) return
      const prefix = m.value.pathPrefix
      assert.isTrue(p === prefix || p.startsWith(`${prefix}/`))
      for (const r of routes) {
        if (RouteMatch.prefixMatches(r.pathPrefix, p) && (r.method === "GET" || r.method === "*")) {
          assert.isAtMost(r.pathPrefix.length, prefix.length)
        }
      }
    },
    { fastCheck: { numRuns: 1_000 } }
  )
})
