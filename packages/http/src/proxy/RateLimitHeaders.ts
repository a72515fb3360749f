/**
 * The IETF rate-limit header fields (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy`
 * names each enforced policy with its quota (`q`) and window in seconds (`w`); `RateLimit` gives
 * what remains of each (`r`) and the seconds until it resets (`t`). Shadow limits are evaluated
 * but not enforced, so they are not advertised.
 */
import type { LimitReport } from "@tollgate/core"

const token = (name: string) => `"${name.replace(/[\\"]/g, "")}"`

export const rateLimitHeaders = (limits: ReadonlyArray<LimitReport>): Record<string, string> => {
  const enforced = limits.filter((l) => !l.shadow)
  if (enforced.length === 0) return {}
  return {
    "ratelimit-policy": enforced.map((l) => `${token(l.name)};q=${l.limit};w=${Math.ceil(l.windowMs / 1000)}`).join(
      ", "
    ),
    ratelimit: enforced.map((l) => `${token(l.name)};r=${Math.max(0, l.remaining)};t=${Math.ceil(l.resetMs / 1000)}`)
      .join(", ")
  }
}
