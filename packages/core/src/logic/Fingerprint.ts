/**
 * A canonical text of a write request (object keys sorted, undefined fields dropped), so that
 * "the same request" can be told from a different one under the same idempotency key.
 */
export const fingerprint = (operation: string, request: unknown): string => `${operation}:${canonical(request)}`

const canonical = (value: unknown): string => {
  if (value === null || typeof value !== "object") {
    return typeof value === "bigint" ? `${value}n` : JSON.stringify(value) ?? "null"
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([k, v]) => v !== undefined && k !== "idempotencyKey")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
}

/** Operations whose remembered outcomes `Ledger.pruneReplays` may forget: the per-call writes. */
export const callOperations = ["hold", "capture", "void"] as const

/** Whether a fingerprint is of a per-call write (hold, capture or void). */
export const isCallReplay = (print: string): boolean =>
  callOperations.some((operation) => print.startsWith(`${operation}:`))
