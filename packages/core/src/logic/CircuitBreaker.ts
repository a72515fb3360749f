/**
 * A circuit breaker as a pure state machine over time, one per upstream.
 *
 * - closed: calls flow; `failureThreshold` consecutive failures open it.
 * - open: calls are refused at once until `cooldownMs` has passed since it opened.
 * - half-open: one trial call is let through; success closes the circuit, failure opens it again.
 *   While the trial is in flight other calls are refused, so a struggling upstream sees one call,
 *   not a stampede.
 */
export interface BreakerOptions {
  readonly failureThreshold: number
  readonly cooldownMs: number
}

export type BreakerState =
  | { readonly _tag: "closed"; readonly failures: number }
  | { readonly _tag: "open"; readonly openedAt: number }
  | { readonly _tag: "half_open"; readonly trialInFlight: boolean }

export const closed: BreakerState = { _tag: "closed", failures: 0 }

export type Admission =
  | { readonly admitted: true; readonly state: BreakerState }
  | { readonly admitted: false; readonly state: BreakerState; readonly retryAfterMs: number }

/** Asks to send one call at `now`. */
export const admit = (state: BreakerState, options: BreakerOptions, now: number): Admission => {
  switch (state._tag) {
    case "closed":
      return { admitted: true, state }
    case "open": {
      const reopensAt = state.openedAt + options.cooldownMs
      if (now < reopensAt) return { admitted: false, state, retryAfterMs: reopensAt - now }
      return { admitted: true, state: { _tag: "half_open", trialInFlight: true } }
    }
    case "half_open":
      return state.trialInFlight
        ? { admitted: false, state, retryAfterMs: options.cooldownMs }
        : { admitted: true, state: { _tag: "half_open", trialInFlight: true } }
  }
}

/** Records how an admitted call ended. */
export const record = (state: BreakerState, options: BreakerOptions, succeeded: boolean, now: number): BreakerState => {
  switch (state._tag) {
    case "closed":
      if (succeeded) return state.failures === 0 ? state : closed
      return state.failures + 1 >= options.failureThreshold
        ? { _tag: "open", openedAt: now }
        : { _tag: "closed", failures: state.failures + 1 }
    case "half_open":
      return succeeded ? closed : { _tag: "open", openedAt: now }
    case "open":
      // a call admitted before the circuit opened: its outcome changes nothing
      return state
  }
}
