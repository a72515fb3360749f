import { FileSystem } from "@effect/platform"
import type { PlanDraft, PlanId } from "@tollgate/core"
import { Catalog, Credits, Dataset, Fingerprint, Plan, Project, ProjectStore, Route } from "@tollgate/core"
import { Clock, Effect, Option, ParseResult, Schema, Struct } from "effect"
import type { ConfigFileIssue } from "./ConfigFileError.js"
import { ConfigFileError } from "./ConfigFileError.js"

// The operator's configuration file: plans, routes, datasets and projects as JSON, checked
// field by field with core's own schemas (the file adds no rules of its own to a plan, a route
// or a dataset) and then across fields, so a bad file fails at start naming every bad field.

/** A plan as the file states it: every field of core's `Plan` but the version, which the catalog assigns. */
export const ConfigPlan = Schema.Struct(Struct.omit(Plan.fields, "version"))
export type ConfigPlan = typeof ConfigPlan.Type

/**
 * A project the file asks for. It is created on the plan's latest version (or `planVersion`)
 * when it does not exist yet, and never changed afterwards: plan changes go through the admin API.
 */
export const ConfigProject = Schema.Struct({
  ...Struct.pick(Project.fields, "id", "name", "planId"),
  planVersion: Schema.optionalWith(Project.fields.planVersion, { exact: true })
})
export type ConfigProject = typeof ConfigProject.Type

const PositiveCredits = Credits.pipe(Schema.positive())

/** Top-up settings: what one credit costs and how many credits one top-up may buy. */
export const ConfigBilling = Schema.Struct({
  creditPriceCents: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { exact: true }),
  minTopUpCredits: Schema.optionalWith(PositiveCredits, { exact: true }),
  maxTopUpCredits: Schema.optionalWith(PositiveCredits, { exact: true })
})
export type ConfigBilling = typeof ConfigBilling.Type

// `exact` keeps `undefined` out of each field's union, so a bad section is reported once, by
// its own rule, and not also as "Expected undefined".
const ConfigFileFields = Schema.Struct({
  plans: Schema.optionalWith(Schema.Array(ConfigPlan), { exact: true, default: () => [] }),
  routes: Schema.optionalWith(Schema.Array(Route), { exact: true, default: () => [] }),
  datasets: Schema.optionalWith(Schema.Array(Dataset), { exact: true, default: () => [] }),
  projects: Schema.optionalWith(Schema.Array(ConfigProject), { exact: true, default: () => [] }),
  billing: Schema.optionalWith(ConfigBilling, { exact: true })
})

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** `["routes", 1, "upstream"]` as `routes[1].upstream`; keys that are not identifiers are quoted. */
export const formatFieldPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`
    else if (typeof key === "string" && identifier.test(key)) out += out === "" ? key : `.${key}`
    else out += `[${JSON.stringify(String(key))}]`
  }
  return out === "" ? "(file)" : out
}

type Fields = typeof ConfigFileFields.Type

/** Reports every item whose key an earlier item already has, pointing back at the first. */
const duplicates = <A>(
  items: ReadonlyArray<A>,
  key: (item: A) => string,
  at: (index: number) => ReadonlyArray<PropertyKey>,
  what: string
): Array<Schema.FilterIssue> => {
  const first = new Map<string, number>()
  const issues: Array<Schema.FilterIssue> = []
  items.forEach((item, index) => {
    const k = key(item)
    const seen = first.get(k)
    if (seen === undefined) first.set(k, index)
    else issues.push({ path: at(index), message: `duplicate ${what} ${k} (already at ${formatFieldPath(at(seen))})` })
  })
  return issues
}

const crossFieldIssues = (file: Fields): Array<Schema.FilterIssue> => {
  const issues: Array<Schema.FilterIssue> = []
  const add = (more: ReadonlyArray<Schema.FilterIssue>) => {
    for (const issue of more) issues.push(issue)
  }
  const q = (s: string) => JSON.stringify(s)

  add(duplicates(file.plans, (p) => q(p.id), (i) => ["plans", i, "id"], "plan id"))
  file.plans.forEach((plan, i) => {
    add(duplicates(plan.allowedCategories, q, (j) => ["plans", i, "allowedCategories", j], "category"))
    const allowed = new Set<string>(plan.allowedCategories)
    for (const category of Object.keys(plan.prices)) {
      if (!allowed.has(category)) {
        issues.push({
          path: ["plans", i, "prices", category],
          message: `price for category ${q(category)}, which the plan's allowedCategories do not include`
        })
      }
    }
    // two limits of one name share one counter (LimitKeys), so the stricter would eat the other's budget
    add(duplicates(plan.rateLimits, (l) => q(l.name), (j) => ["plans", i, "rateLimits", j, "name"], "rate limit name"))
  })

  add(duplicates(file.routes, (r) => q(r.id), (i) => ["routes", i, "id"], "route id"))
  add(
    duplicates(
      file.routes,
      (r) => `${r.method} ${q(r.pathPrefix)}`,
      (i) => ["routes", i, "pathPrefix"],
      "method and path prefix"
    )
  )
  // Routes are checked against the file's plans; a file without plans leaves plans to the
  // admin API, and then there is nothing here to check a category against.
  const allowedSomewhere = new Set<string>(file.plans.flatMap((p) => p.allowedCategories))
  file.routes.forEach((route, i) => {
    add(
      duplicates(route.rateLimits, (l) => q(l.name), (j) => ["routes", i, "rateLimits", j, "name"], "rate limit name")
    )
    if (file.plans.length > 0 && !allowedSomewhere.has(route.category)) {
      issues.push({
        path: ["routes", i, "category"],
        message: `no plan in the file allows category ${q(route.category)}, so no project could call this route`
      })
    }
  })

  const projectIds = new Set<string>(file.projects.map((p) => p.id))
  add(duplicates(file.datasets, (d) => q(d.id), (i) => ["datasets", i, "id"], "dataset id"))
  file.datasets.forEach((dataset, i) => {
    if (!projectIds.has(dataset.contributor)) {
      issues.push({
        path: ["datasets", i, "contributor"],
        message: `unknown project ${q(dataset.contributor)}: a contributor must be one of the file's projects`
      })
    }
  })

  const planIds = new Set<string>(file.plans.map((p) => p.id))
  add(duplicates(file.projects, (p) => q(p.id), (i) => ["projects", i, "id"], "project id"))
  file.projects.forEach((project, i) => {
    if (!planIds.has(project.planId)) {
      issues.push({
        path: ["projects", i, "planId"],
        message: `unknown plan ${q(project.planId)}: a project's plan must be one of the file's plans`
      })
    }
  })

  const billing = file.billing
  if (
    billing?.minTopUpCredits !== undefined && billing.maxTopUpCredits !== undefined &&
    billing.minTopUpCredits > billing.maxTopUpCredits
  ) {
    issues.push({
      path: ["billing", "maxTopUpCredits"],
      message: `must be at least minTopUpCredits (${billing.minTopUpCredits}), got ${billing.maxTopUpCredits}`
    })
  }
  return issues
}

/**
 * The configuration file. Every section is optional (an absent list is empty); fields the
 * schema does not know are errors, so a misspelt optional field is reported instead of ignored.
 */
export const ConfigFile = ConfigFileFields.pipe(Schema.filter(crossFieldIssues))
export type ConfigFile = typeof ConfigFile.Type

const decode = Schema.decodeUnknown(ConfigFile, { errors: "all", onExcessProperty: "error" })

const failure = (path: string, headline: string, issues: ReadonlyArray<ConfigFileIssue>) =>
  new ConfigFileError({
    path,
    message: [headline, ...issues.map((i) => `  ${i.field}: ${i.message}`)].join("\n"),
    issues
  })

const startsWith = (path: ReadonlyArray<PropertyKey>, prefix: ReadonlyArray<PropertyKey>) =>
  prefix.length <= path.length && prefix.every((key, i) => path[i] === key)

/**
 * An optional field (`Schema.optional`) is a union with `undefined`, so a bad value is reported
 * twice: by the rule it broke and as "Expected undefined". The second says nothing; drop it.
 */
const withoutOptionalNoise = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>) =>
  issues.filter((issue) =>
    !(issue._tag === "Type" && issue.message.startsWith("Expected undefined, actual") &&
      issues.some((other) => other !== issue && startsWith(other.path, issue.path)))
  )

/** Validates parsed JSON as a configuration file; `path` names the file in the error. */
export const decodeConfigFile = (input: unknown, path: string): Effect.Effect<ConfigFile, ConfigFileError> =>
  decode(input).pipe(
    Effect.mapError((error) => {
      const issues = withoutOptionalNoise(ParseResult.ArrayFormatter.formatErrorSync(error)).map((issue) => ({
        field: formatFieldPath(issue.path),
        message: issue.message
      }))
      const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`
      return failure(path, `invalid configuration file ${path} (${count}):`, issues)
    })
  )

/** Reads, parses and validates the configuration file at `path`. */
export const loadConfigFile = Effect.fn("ConfigFile.load")(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(path).pipe(
    Effect.mapError((e) => failure(path, `cannot read the configuration file ${path}: ${e.message}`, []))
  )
  const json = yield* Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (e) =>
      failure(
        path,
        `the configuration file ${path} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`,
        []
      )
  })
  return yield* decodeConfigFile(json, path)
})

/** What applying the file changed. */
export interface AppliedConfig {
  /** Plan versions stored by this run: new plans, and plans whose fields differ from their latest version. */
  readonly plansCreated: ReadonlyArray<Plan>
  /** Routes put (created or replaced). */
  readonly routes: number
  /** Datasets put (created or replaced). */
  readonly datasets: number
  /** Projects created; projects that already existed are left as they are. */
  readonly projects: number
}

const encodePlan = Schema.encodeSync(Plan)

/** The draft states exactly the fields of `stored` (its version aside). */
const sameAsStored = (draft: PlanDraft, stored: Plan): boolean =>
  Fingerprint.fingerprint("plan", encodePlan(new Plan({ ...draft, version: stored.version }))) ===
    Fingerprint.fingerprint("plan", encodePlan(stored))

/**
 * Stores the draft as the plan's next version, unless its latest version states exactly these
 * fields already: putting the same plan twice (a restart, a retried admin call) makes no version.
 */
export const putPlanIfChanged = (catalog: Catalog["Type"], draft: PlanDraft) =>
  Effect.gen(function*() {
    const stored = yield* catalog.getPlan(draft.id)
    if (Option.isSome(stored) && sameAsStored(draft, stored.value)) {
      return { plan: stored.value, created: false } as const
    }
    return { plan: yield* catalog.putPlan(draft), created: true } as const
  })

/**
 * Puts the file's contents into the catalog and the project store. Safe to run at every start:
 * a plan gets a new version only when its fields changed, routes and datasets are upserted, and
 * a project is created only when missing (an existing project keeps its plan). Routes and
 * datasets no longer in the file are left in place. `path` names the file in errors.
 */
export const applyConfigFile = Effect.fn("ConfigFile.apply")(function*(file: ConfigFile, source?: string) {
  const path = source ?? "(configuration)"
  const catalog = yield* Catalog
  const store = yield* ProjectStore

  const plansCreated: Array<Plan> = []
  const latest = new Map<PlanId, Plan>()
  for (const draft of file.plans) {
    const { created, plan } = yield* putPlanIfChanged(catalog, draft)
    if (created) plansCreated.push(plan)
    latest.set(plan.id, plan)
  }

  for (const route of file.routes) yield* catalog.putRoute(route)
  for (const dataset of file.datasets) yield* catalog.putDataset(dataset)

  const now = yield* Clock.currentTimeMillis
  let projects = 0
  for (const [index, wanted] of file.projects.entries()) {
    if (Option.isSome(yield* store.get(wanted.id))) continue
    // the schema guarantees the plan is one of the file's, so it was just read or stored
    let planVersion = latest.get(wanted.planId)!.version
    if (wanted.planVersion !== undefined) {
      if (Option.isNone(yield* catalog.getPlan(wanted.planId, wanted.planVersion))) {
        return yield* failure(path, `cannot apply the configuration file ${path}:`, [{
          field: formatFieldPath(["projects", index, "planVersion"]),
          message: `plan ${
            JSON.stringify(wanted.planId)
          } has no version ${wanted.planVersion} (latest is ${planVersion})`
        }])
      }
      planVersion = wanted.planVersion
    }
    yield* store.put(
      new Project({ id: wanted.id, name: wanted.name, planId: wanted.planId, planVersion, createdAt: now })
    )
    projects++
  }

  return { plansCreated, routes: file.routes.length, datasets: file.datasets.length, projects } satisfies AppliedConfig
})
