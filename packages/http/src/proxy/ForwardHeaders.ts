/**
 * Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1) and those the Connection
 * header names belong to one connection and are dropped both ways; the caller's credentials
 * never reach the upstream; identity headers are set by the gateway only, so a caller cannot
 * forge them.
 */
import type { IncomingHttpHeaders } from "node:http"

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
])

/** Request headers the gateway owns or consumes. */
const consumed = new Set(["host", "authorization", "x-api-key", "forwarded", "x-request-id"])

export const identityPrefix = "x-tollgate-"

const connectionTokens = (value: string | ReadonlyArray<string> | undefined): ReadonlySet<string> => {
  if (value === undefined) return new Set()
  const joined = typeof value === "string" ? value : value.join(",")
  return new Set(joined.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0))
}

/** The caller's headers as the upstream sees them, plus the gateway's identity headers. */
export const upstreamRequestHeaders = (
  incoming: IncomingHttpHeaders,
  identity: Record<string, string>,
  forwarded: { readonly for: string | undefined; readonly proto: string; readonly host: string | undefined }
): Record<string, string | Array<string>> => {
  const named = connectionTokens(incoming.connection)
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue
    if (hopByHop.has(name) || consumed.has(name) || named.has(name) || name.startsWith(identityPrefix)) continue
    if (name.startsWith("x-forwarded-")) continue
    out[name] = value
  }
  const priorFor = incoming["x-forwarded-for"]
  const chain = [typeof priorFor === "string" ? priorFor : undefined, forwarded.for].filter((v) => v !== undefined)
  if (chain.length > 0) out["x-forwarded-for"] = chain.join(", ")
  out["x-forwarded-proto"] = forwarded.proto
  if (forwarded.host !== undefined) out["x-forwarded-host"] = forwarded.host
  for (const [name, value] of Object.entries(identity)) out[name] = value
  return out
}

/** The upstream's response headers as the caller sees them (hop-by-hop dropped). */
export const callerResponseHeaders = (
  upstream: Record<string, string | Array<string> | undefined>
): Record<string, string | Array<string>> => {
  const named = connectionTokens(upstream["connection"])
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (hopByHop.has(lower) || named.has(lower)) continue
    out[lower] = value
  }
  return out
}
