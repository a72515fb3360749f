import type { RateLimitPolicy } from "../domain/RateLimitPolicy.js"

/**
 * Sliding-window counter over aligned windows of `windowMs`: the estimate of the last
 * `windowMs` is `previous * (W - e) / W + current`, where `e` is the time elapsed in the current
 * window. Every comparison is multiplied through by W and done on BigInt, so the Redis (Lua)
 * port can reproduce the decisions exactly.
 */

/** Counts admitted in the aligned window `window` (= floor(now / windowMs)) and the one before. */
export interface WindowState {
  readonly window: number
  readonly current: number
  readonly previous: number
}

/** One named limit to decide, with the cost of this request and the limit's stored state. */
export interface LimitCheck {
  readonly policy: RateLimitPolicy
  /** A non-negative safe integer. */
  readonly cost: number
  readonly state: WindowState | undefined
}

export interface LimitOutcome {
  readonly name: string
  readonly limit: number
  readonly windowMs: number
  readonly shadow: boolean
  /** This limit alone would not admit the request. */
  readonly exceeded: boolean
  readonly remaining: number
  /** Until the current aligned window ends. */
  readonly resetMs: number
  /** Exceeded only: the smallest wait after which this limit admits the same cost, absent other traffic. */
  readonly retryAfterMs: number | undefined
  /** The cost alone is above the limit: no wait admits it. */
  readonly impossible: boolean
}

export interface Decision {
  readonly allowed: boolean
  /** In the order of the checks. */
  readonly outcomes: ReadonlyArray<LimitOutcome>
  /** What to store back, in the order of the checks; counts change only when allowed. */
  readonly states: ReadonlyArray<WindowState>
}

// Integer operations only, so the Lua port can compute the same window the same way.
const windowOf = (now: number, windowMs: number): number => (now - (now % windowMs)) / windowMs

/** Moves a stored state to the window containing `now`; anything older than the previous window is forgotten. */
export const roll = (state: WindowState | undefined, windowMs: number, now: number): WindowState => {
  const window = windowOf(now, windowMs)
  if (state !== undefined && state.window === window) return state
  if (state !== undefined && state.window === window - 1) return { window, previous: state.current, current: 0 }
  return { window, previous: 0, current: 0 }
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b

interface Evaluated {
  readonly check: LimitCheck
  readonly rolled: WindowState
  readonly admits: boolean
  /** e, elapsed in the current window. */
  readonly elapsed: bigint
}

const evaluate = (check: LimitCheck, now: number): Evaluated => {
  const { limit, windowMs } = check.policy
  const rolled = roll(check.state, windowMs, now)
  const W = BigInt(windowMs)
  const elapsed = BigInt(now - rolled.window * windowMs)
  const carried = BigInt(rolled.previous) * (W - elapsed)
  const admits = carried + (BigInt(rolled.current) + BigInt(check.cost)) * W <= BigInt(limit) * W
  return { check, rolled, admits, elapsed }
}

const retryAfter = ({ check, elapsed: e, rolled }: Evaluated): number | undefined => {
  const W = BigInt(check.policy.windowMs)
  const L = BigInt(check.policy.limit)
  const c = BigInt(check.cost)
  const p = BigInt(rolled.previous)
  const cur = BigInt(rolled.current)
  if (cur + c <= L) {
    // The previous window's weight decays by p per ms; p > 0 here, or the limit would admit.
    return Number(ceilDiv(p * (W - e) + (cur + c - L) * W, p))
  }
  // Not before the next window, where previous = cur (> 0 since c <= L) and current = 0.
  return Number(W - e + ceilDiv((cur + c - L) * W, cur))
}

/**
 * A limit's outcome: the policy's own fields, what was decided, and whether the cost alone is
 * above the limit. (Positional: the Redis limiter builds one per limit per decision.)
 */
export const limitOutcome = (
  policy: RateLimitPolicy,
  cost: number,
  exceeded: boolean,
  remaining: number,
  resetMs: number,
  retryAfterMs: number | undefined
): LimitOutcome => ({
  name: policy.name,
  limit: policy.limit,
  windowMs: policy.windowMs,
  shadow: policy.shadow,
  exceeded,
  remaining,
  resetMs,
  retryAfterMs,
  impossible: cost > policy.limit
})

const outcome = (evaluated: Evaluated, stored: WindowState): LimitOutcome => {
  const { check: { cost, policy }, elapsed: e, admits } = evaluated
  const W = BigInt(policy.windowMs)
  const left = BigInt(policy.limit) * W - BigInt(stored.previous) * (W - e) - BigInt(stored.current) * W
  return limitOutcome(
    policy,
    cost,
    !admits,
    left > 0n ? Number(left / W) : 0,
    Number(W - e),
    admits || cost > policy.limit ? undefined : retryAfter(evaluated)
  )
}

/**
 * Decides all the limits of one request together: it is allowed iff every non-shadow limit
 * admits its cost, and then every limit (shadow too) counts it; otherwise nothing is counted.
 */
export const decide = (checks: ReadonlyArray<LimitCheck>, now: number): Decision => {
  const evaluated = checks.map((check) => evaluate(check, now))
  const allowed = evaluated.every((x) => x.admits || x.check.policy.shadow)
  const states = evaluated.map(({ check: { cost, policy }, rolled }): WindowState => {
    if (!allowed) return rolled
    const current = rolled.current + cost
    // A shadow limit is counted past its limit; the cap keeps a hot key's counter bounded.
    return { ...rolled, current: policy.shadow ? Math.min(current, 2 * policy.limit) : current }
  })
  return {
    allowed,
    outcomes: evaluated.map((x, i) => outcome(x, states[i]!)),
    states
  }
}

/**
 * The wait for a rejected request, for a Retry-After header: the longest wait among the
 * enforced limits it exceeded. Exact, because with no traffic each estimate only decreases
 * (also across a window boundary), so once a limit admits it keeps admitting. Undefined when
 * allowed or when no wait can help.
 */
export const retryAfterMs = (decision: Pick<Decision, "allowed" | "outcomes">): number | undefined => {
  if (decision.allowed) return undefined
  let wait = 0
  for (const o of decision.outcomes) {
    if (o.shadow || !o.exceeded) continue
    if (o.retryAfterMs === undefined) return undefined
    wait = Math.max(wait, o.retryAfterMs)
  }
  return wait
}
