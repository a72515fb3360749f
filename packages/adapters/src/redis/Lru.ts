/**
 * A bounded least-recently-used map whose entries also expire. A `Map` keeps insertion order, so
 * re-inserting on every hit keeps the least recently used entry first, where eviction takes it.
 */
export interface Lru<K, V> {
  /** The value, if present and not expired at `now`; counts as a use. */
  readonly get: (key: K, now: number) => V | undefined
  /** Inserts or replaces; evicts the least recently used entry when over capacity. */
  readonly set: (key: K, value: V, expiresAt: number) => void
  readonly delete: (key: K) => void
  readonly clear: () => void
  readonly size: () => number
}

export const makeLru = <K, V>(capacity: number): Lru<K, V> => {
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new Error(`LRU capacity must be at least 1, got ${capacity}`)
  }
  const entries = new Map<K, { readonly value: V; readonly expiresAt: number }>()
  return {
    get: (key, now) => {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      entries.delete(key)
      if (entry.expiresAt <= now) return undefined
      entries.set(key, entry)
      return entry.value
    },
    set: (key, value, expiresAt) => {
      entries.delete(key)
      entries.set(key, { value, expiresAt })
      if (entries.size > capacity) entries.delete(entries.keys().next().value as K)
    },
    delete: (key) => {
      entries.delete(key)
    },
    clear: () => entries.clear(),
    size: () => entries.size
  }
}
