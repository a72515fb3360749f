import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive } from "@tollgate/adapters"
import type { PlanId, ProjectId } from "@tollgate/core"
import {
  Catalog,
  Dataset,
  defaultPlans,
  demoDataset,
  demoRoutes,
  Plan,
  Project,
  ProjectStore,
  Route
} from "@tollgate/core"
import { Cause, Effect, Exit, Layer, Option, Schema } from "effect"
import { fileURLToPath } from "node:url"
import { applyConfigFile, loadConfigFile } from "../../src/config/ConfigFile.js"
import type { ConfigFileError } from "../../src/config/ConfigFileError.js"

const TestLive = Layer.merge(MemoryStackLive, NodeFileSystem.layer)

const examplePath = fileURLToPath(new URL("../../../../docs/examples/tollgate.config.json", import.meta.url))

const plan = (id: string, categories: ReadonlyArray<string>, price = 1) => ({
  id,
  name: id.toUpperCase(),
  priceCents: 0,
  allowedCategories: categories,
  rateLimits: [{ name: "per_second", scope: "key", limit: 5, windowMs: 1_000 }],
  monthlyAllowance: 100,
  prices: Object.fromEntries(categories.map((c) => [c, price])),
  defaultPrice: 1,
  concurrencyCap: 2,
  lowBalanceThreshold: 10
})

const route = (id: string, pathPrefix: string, category = "search") => ({
  id,
  method: "GET",
  pathPrefix,
  upstream: "http://127.0.0.1:4000",
  category
})

/** A small valid file; each bad-file case breaks one thing in a copy of it. */
const goodFile = () => ({
  plans: [plan("free", ["search"]), plan("pro", ["search", "query"])],
  routes: [route("search", "/api/search"), route("query", "/api/query", "query")],
  datasets: [{ id: "weather", name: "Weather", contributor: "acme", shareBps: 3_000 }],
  projects: [
    { id: "acme", name: "Acme", planId: "free" },
    { id: "tenant", name: "Tenant", planId: "pro" }
  ],
  billing: { creditPriceCents: 1, minTopUpCredits: 100, maxTopUpCredits: 10_000 }
})

/** Writes `content` to a file in a temporary folder that lives as long as the test's scope. */
const writeFile = (content: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "tollgate-config-" })
    const path = `${dir}/tollgate.config.json`
    yield* fs.writeFileString(path, content)
    return path
  }).pipe(Effect.orDie)

const loadJson = (value: unknown) => Effect.flatMap(writeFile(JSON.stringify(value, null, 2)), loadConfigFile)

/** Runs a load or an apply that must fail with a ConfigFileError, returning it. */
const loadFailure = <E extends { readonly _tag: string }, R>(load: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(load)
    if (Exit.isSuccess(exit)) return assert.fail("the file should have been refused")
    const error = Cause.failureOption(exit.cause)
    assert.isTrue(Option.isSome(error) && error.value._tag === "ConfigFileError", String(exit.cause))
    return Option.getOrThrow(error) as unknown as ConfigFileError
  })

const fields = (error: ConfigFileError) => error.issues.map((i) => i.field)

describe("ConfigFile", () => {
  it.scoped("a good file loads and applies: plans, routes, datasets and projects", () =>
    Effect.gen(function*() {
      const file = yield* loadJson(goodFile())
      assert.strictEqual(file.plans.length, 2)
      assert.instanceOf(file.routes[0], Route)
      assert.strictEqual(file.routes[0]?.timeoutMs, 30_000)
      assert.strictEqual(file.billing?.maxTopUpCredits, 10_000)

      const applied = yield* applyConfigFile(file)
      assert.deepStrictEqual(applied.plansCreated.map((p) => [p.id, p.version]), [["free", 1], ["pro", 1]])
      assert.strictEqual(applied.routes, 2)
      assert.strictEqual(applied.datasets, 1)
      assert.strictEqual(applied.projects, 2)

      const catalog = yield* Catalog
      assert.deepStrictEqual((yield* catalog.listRoutes).map((r) => r.id), ["query", "search"])
      assert.strictEqual(Option.getOrThrow(yield* catalog.getDataset("weather" as any)).contributor, "acme")
      const tenant = Option.getOrThrow(yield* (yield* ProjectStore).get("tenant" as ProjectId))
      assert.deepStrictEqual([tenant.planId, tenant.planVersion], ["pro", 1])
    }).pipe(Effect.provide(TestLive)))

  it.scoped("applying the same file again creates no plan version and touches no project", () =>
    Effect.gen(function*() {
      const file = yield* loadJson(goodFile())
      yield* applyConfigFile(file)
      // a restart reads the file again: a fresh decode, equal but not the same objects
      const again = yield* applyConfigFile(yield* loadJson(goodFile()))
      assert.deepStrictEqual(again.plansCreated, [])
      assert.strictEqual(again.projects, 0)
      const catalog = yield* Catalog
      assert.deepStrictEqual((yield* catalog.listPlans).map((p) => p.version), [1, 1])
      assert.isTrue(Option.isNone(yield* catalog.getPlan("free" as PlanId, 2)))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a changed plan gets exactly one new version; unchanged plans and existing projects stay", () =>
    Effect.gen(function*() {
      yield* applyConfigFile(yield* loadJson(goodFile()))
      const changed = goodFile()
      changed.plans[1]!.priceCents = 4_900
      changed.projects[1]!.planId = "free" // ignored: the project exists already
      const applied = yield* applyConfigFile(yield* loadJson(changed))
      assert.deepStrictEqual(applied.plansCreated.map((p) => [p.id, p.version, p.priceCents]), [["pro", 2, 4_900]])
      assert.deepStrictEqual(applied.projects, 0)
      // and once more: version 2 is now the latest and equal to the file
      assert.deepStrictEqual((yield* applyConfigFile(yield* loadJson(changed))).plansCreated, [])
      const tenant = Option.getOrThrow(yield* (yield* ProjectStore).get("tenant" as ProjectId))
      assert.deepStrictEqual([tenant.planId, tenant.planVersion], ["pro", 1])
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a project already in the store keeps its plan", () =>
    Effect.gen(function*() {
      yield* (yield* ProjectStore).put(
        new Project({ id: "acme" as ProjectId, name: "Acme", planId: "gold" as PlanId, planVersion: 3, createdAt: 0 })
      )
      const applied = yield* applyConfigFile(yield* loadJson(goodFile()))
      assert.strictEqual(applied.projects, 1)
      const acme = Option.getOrThrow(yield* (yield* ProjectStore).get("acme" as ProjectId))
      assert.deepStrictEqual([acme.planId, acme.planVersion], ["gold", 3])
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a project pinned to a plan version gets it; a version that does not exist names the field", () =>
    Effect.gen(function*() {
      const file = goodFile()
      yield* applyConfigFile(yield* loadJson(file))
      file.plans[1]!.priceCents = 100
      const pinned = {
        ...goodFile(),
        plans: file.plans,
        projects: [...file.projects, { ...file.projects[1]!, id: "old", planVersion: 1 }]
      }
      yield* applyConfigFile(yield* loadJson(pinned))
      const old = Option.getOrThrow(yield* (yield* ProjectStore).get("old" as ProjectId))
      assert.deepStrictEqual([old.planId, old.planVersion], ["pro", 1])

      const missing = {
        ...pinned,
        projects: [...pinned.projects, { id: "new", name: "New", planId: "pro", planVersion: 7 }]
      }
      const error = yield* loadFailure(applyConfigFile(yield* loadJson(missing), "tollgate.config.json"))
      assert.deepStrictEqual(fields(error), ["projects[3].planVersion"])
      assert.include(error.message, "projects[3].planVersion: plan \"pro\" has no version 7 (latest is 2)")
    }).pipe(Effect.provide(TestLive)))

  describe("a bad file fails naming the field", () => {
    it.scoped("a route's upstream that is not an http(s) URL", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.routes[1]!.upstream = "ftp://127.0.0.1:4000"
        const path = yield* writeFile(JSON.stringify(file))
        const error = yield* loadFailure(loadConfigFile(path))
        assert.strictEqual(error.path, path)
        assert.deepStrictEqual(fields(error), ["routes[1].upstream"])
        assert.include(error.message, path)
        assert.include(error.message, "routes[1].upstream: Expected a string matching the pattern")
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a negative price", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.plans[1]!.prices["query"] = -5
        const error = yield* loadFailure(loadJson(file))
        assert.deepStrictEqual(fields(error), ["plans[1].prices.query"])
        assert.include(error.message, "plans[1].prices.query: Expected a non-negative number, actual -5")
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a project on a plan the file does not define", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.projects[1]!.planId = "enterprise"
        const error = yield* loadFailure(loadJson(file))
        assert.deepStrictEqual(fields(error), ["projects[1].planId"])
        assert.include(error.message, "projects[1].planId: unknown plan \"enterprise\"")
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a duplicate route id", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.routes[1]!.id = "search"
        const error = yield* loadFailure(loadJson(file))
        assert.deepStrictEqual(fields(error), ["routes[1].id"])
        assert.include(error.message, "routes[1].id: duplicate route id \"search\" (already at routes[0].id)")
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a dataset whose contributor is not one of the file's projects", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.datasets[0]!.contributor = "nobody"
        const error = yield* loadFailure(loadJson(file))
        assert.deepStrictEqual(fields(error), ["datasets[0].contributor"])
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a route whose category no plan allows, a price for a category its plan does not allow", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.routes[1]!.category = "export"
        file.plans[0]!.prices["query"] = 3
        const error = yield* loadFailure(loadJson(file))
        assert.sameMembers(fields(error), ["routes[1].category", "plans[0].prices.query"])
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a category that is not a valid category name, a duplicate plan id and a misspelt field", () =>
      Effect.gen(function*() {
        const file: any = goodFile()
        file.plans[0].allowedCategories = ["Search"]
        file.plans[0].prices = { "Search!": 1 }
        file.routes[0].upsteam = file.routes[0].upstream
        const error = yield* loadFailure(loadJson(file))
        assert.sameMembers(fields(error), [
          "plans[0].allowedCategories[0]",
          "plans[0].prices[\"Search!\"]",
          "routes[0].upsteam"
        ])
        assert.include(error.message, "(3 problems)")

        const twice = goodFile()
        twice.plans[1]!.id = "free"
        twice.projects[1]!.planId = "free"
        assert.deepStrictEqual(fields(yield* loadFailure(loadJson(twice))), ["plans[1].id"])
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a top-up minimum above the maximum", () =>
      Effect.gen(function*() {
        const file = goodFile()
        file.billing.minTopUpCredits = 50_000
        assert.deepStrictEqual(fields(yield* loadFailure(loadJson(file))), ["billing.maxTopUpCredits"])
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a file that is not JSON", () =>
      Effect.gen(function*() {
        const path = yield* writeFile("{ \"plans\": [ ")
        const error = yield* loadFailure(loadConfigFile(path))
        assert.strictEqual(error.path, path)
        assert.deepStrictEqual(error.issues, [])
        assert.include(error.message, `the configuration file ${path} is not valid JSON`)
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a file that is not there", () =>
      Effect.gen(function*() {
        const path = `${yield* writeFile("{}")}.missing`
        const error = yield* loadFailure(loadConfigFile(path))
        assert.strictEqual(error.path, path)
        assert.include(error.message, `cannot read the configuration file ${path}`)
      }).pipe(Effect.provide(TestLive)))

    it.scoped("a file that is not an object", () =>
      Effect.gen(function*() {
        const error = yield* loadFailure(loadJson([1, 2]))
        assert.deepStrictEqual(fields(error), ["(file)"])
      }).pipe(Effect.provide(TestLive)))
  })

  it.scoped("the example file loads, holds the default plans and the demo catalog, and applies", () =>
    Effect.gen(function*() {
      const file = yield* loadConfigFile(examplePath)
      const encodePlan = Schema.encodeSync(Plan)
      assert.deepStrictEqual(
        file.plans.map((p) => encodePlan(new Plan({ ...p, version: 1 }))),
        defaultPlans.map((p) => encodePlan(new Plan({ ...p, version: 1 })))
      )
      assert.deepStrictEqual(
        file.routes.map((r) => Schema.encodeSync(Route)(r)),
        demoRoutes("http://127.0.0.1:4000").map((r) => Schema.encodeSync(Route)(r))
      )
      assert.deepStrictEqual(file.datasets.map((d) => Schema.encodeSync(Dataset)(d)), [
        Schema.encodeSync(Dataset)(demoDataset)
      ])
      const applied = yield* applyConfigFile(file, examplePath)
      assert.strictEqual(applied.plansCreated.length, 3)
      assert.deepStrictEqual((yield* applyConfigFile(file, examplePath)).plansCreated, [])
    }).pipe(Effect.provide(TestLive)))
})
