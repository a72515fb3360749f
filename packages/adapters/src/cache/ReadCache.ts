/**
 * Short-lived read caches in front of the stores the request path reads on every call (catalog,
 * projects, keys), so a call costs no lookup for what rarely changes. Built on Effect's `Cache`:
 * concurrent misses for one key share a single lookup, and failures are not kept (an outage is
 * retried on the next call, not remembered).
 *
 * Writes made through a cached store drop what they affect here at once. Writes made by another
 * process are seen within the time to live; keys in a multi-gateway deployment use the Redis
 * key cache instead, whose revocations are pushed.
 */
import type { DatasetId, PlanId, ProjectId } from "@tollgate/core"
import { Catalog, KeyStore, ProjectStore } from "@tollgate/core"
import { Cache, Duration, Effect, Exit, Layer } from "effect"

export interface ReadCacheOptions {
  /** How long an answer is kept (default 1 s). */
  readonly ttl?: Duration.DurationInput
  /** Entries kept per cache (default 10,000). */
  readonly capacity?: number
}

const make = <K, A, E>(lookup: (key: K) => Effect.Effect<A, E>, options: ReadCacheOptions) =>
  Cache.makeWith({
    capacity: options.capacity ?? 10_000,
    lookup,
    timeToLive: (exit) => (Exit.isSuccess(exit) ? options.ttl ?? Duration.seconds(1) : Duration.zero)
  })

/** The catalog with plans, routes and datasets cached; every write empties the caches. */
export const makeCachedCatalog = (inner: Catalog["Type"], options: ReadCacheOptions = {}) =>
  Effect.gen(function*() {
    const routes = yield* make((_: "routes") => inner.listRoutes, options)
    const plans = yield* make((_: "plans") => inner.listPlans, options)
    const plan = yield* make((key: string) => {
      const at = key.lastIndexOf("@")
      const version = key.slice(at + 1)
      return inner.getPlan(key.slice(0, at) as PlanId, version === "latest" ? undefined : Number(version))
    }, options)
    const dataset = yield* make((id: DatasetId) => inner.getDataset(id), options)
    const invalidate = Effect.all([
      routes.invalidateAll,
      plans.invalidateAll,
      plan.invalidateAll,
      dataset.invalidateAll
    ], { discard: true })
    const thenInvalidate = <A, E>(write: Effect.Effect<A, E>) => Effect.ensuring(write, invalidate)
    return Catalog.of({
      getPlan: (id, version) => plan.get(`${id}@${version ?? "latest"}`),
      listPlans: plans.get("plans"),
      putPlan: (draft) => thenInvalidate(inner.putPlan(draft)),
      listRoutes: routes.get("routes"),
      getRoute: inner.getRoute,
      putRoute: (route) => thenInvalidate(inner.putRoute(route)),
      deleteRoute: (id) => thenInvalidate(inner.deleteRoute(id)),
      getDataset: (id) => dataset.get(id),
      listDatasets: inner.listDatasets,
      putDataset: (d) => thenInvalidate(inner.putDataset(d))
    })
  })

/** Projects by id cached; a put drops the project at once. */
export const makeCachedProjectStore = (inner: ProjectStore["Type"], options: ReadCacheOptions = {}) =>
  Effect.gen(function*() {
    const byId = yield* make((id: ProjectId) => inner.get(id), options)
    return ProjectStore.of({
      get: (id) => byId.get(id),
      list: inner.list,
      put: (project) => Effect.ensuring(inner.put(project), byId.invalidate(project.id))
    })
  })

/**
 * Keys by hash cached, for a single gateway process (the embedded default): every write made
 * through it empties the cache, so a revoke or rotate applies to the next call.
 */
export const makeLocalKeyCache = (inner: KeyStore["Type"], options: ReadCacheOptions = {}) =>
  Effect.gen(function*() {
    const byHash = yield* make((hash: string) => inner.findByHash(hash), options)
    const thenInvalidate = <A, E>(write: Effect.Effect<A, E>) => Effect.ensuring(write, byHash.invalidateAll)
    return KeyStore.of({
      insert: (key) => thenInvalidate(inner.insert(key)),
      findByHash: (hash) => byHash.get(hash),
      get: inner.get,
      listByProject: inner.listByProject,
      revoke: (id, at) => thenInvalidate(inner.revoke(id, at)),
      rotate: (id, successor, graceUntil) => thenInvalidate(inner.rotate(id, successor, graceUntil))
    })
  })

/** Wraps the Catalog and ProjectStore below with their caches. */
export const ReadCachesLive = (
  options: ReadCacheOptions = {}
): Layer.Layer<Catalog | ProjectStore, never, Catalog | ProjectStore> =>
  Layer.merge(
    Layer.effect(Catalog, Effect.flatMap(Catalog, (inner) => makeCachedCatalog(inner, options))),
    Layer.effect(ProjectStore, Effect.flatMap(ProjectStore, (inner) => makeCachedProjectStore(inner, options)))
  )

/** Wraps the KeyStore below with the single-process key cache. */
export const LocalKeyCacheLive = (options: ReadCacheOptions = {}): Layer.Layer<KeyStore, never, KeyStore> =>
  Layer.effect(KeyStore, Effect.flatMap(KeyStore, (inner) => makeLocalKeyCache(inner, options)))
