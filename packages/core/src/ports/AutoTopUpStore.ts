import type { Effect } from "effect"
import { Context, Schema } from "effect"
import { Credits } from "../domain/Credits.js"
import type { ProjectId } from "../domain/Ids.js"

export class AutoTopUpStoreUnavailable extends Schema.TaggedError<AutoTopUpStoreUnavailable>()(
  "AutoTopUpStoreUnavailable",
  { message: Schema.String }
) {}

/** What a project opted into: below `thresholdCredits`, buy `amountCredits`, at most `monthlyCapCredits` a month. */
export const AutoTopUpSettings = Schema.Struct({
  enabled: Schema.Boolean,
  thresholdCredits: Credits,
  amountCredits: Credits,
  monthlyCapCredits: Credits
}).annotations({ identifier: "AutoTopUpSettings" })
export type AutoTopUpSettings = typeof AutoTopUpSettings.Type

export const disabledAutoTopUp: AutoTopUpSettings = {
  enabled: false,
  thresholdCredits: 0 as Credits,
  amountCredits: 0 as Credits,
  monthlyCapCredits: 0 as Credits
}

/** Where the project's notifications are POSTed, and the secret they are signed with. */
export interface NotificationEndpoint {
  readonly url: string
  readonly secret: string
}

/**
 * `idle` → `charging` (one attempt in flight) → `idle` when the provider took the payment (the
 * credits arrive with its event), or `needs_customer` when the card needs its owner.
 */
export type AutoTopUpPhase = "idle" | "charging" | "needs_customer"

export type ChargeResult = "succeeded" | "needs_customer" | "failed"

/**
 * One off-session charge, recorded before the provider is called: its idempotency key derives from
 * (project, attempt), so a replay after a crash asks the provider the same question.
 */
export interface ChargeAttempt {
  readonly attempt: number
  /** The message that started it: a message handled twice starts nothing new. */
  readonly trigger: string
  readonly credits: Credits
  readonly amountCents: number
  readonly startedAt: number
}

export interface AutoTopUpState {
  readonly projectId: ProjectId
  readonly settings: AutoTopUpSettings
  readonly endpoint: NotificationEndpoint | undefined
  readonly phase: AutoTopUpPhase
  /** The latest attempt; in flight when `phase` is `charging`. */
  readonly current: ChargeAttempt | undefined
  readonly lastResult: ChargeResult | undefined
  /** The calendar month (UTC, `YYYY-MM`) `monthCharged` counts. */
  readonly month: string
  /** Credits charged or in flight this month; a `needs_customer` attempt gives its share back. */
  readonly monthCharged: Credits
}

export const emptyAutoTopUpState = (projectId: ProjectId): AutoTopUpState => ({
  projectId,
  settings: disabledAutoTopUp,
  endpoint: undefined,
  phase: "idle",
  current: undefined,
  lastResult: undefined,
  month: "",
  monthCharged: 0 as Credits
})

export interface BeginRequest {
  readonly trigger: string
  readonly credits: Credits
  readonly amountCents: number
  readonly now: number
}

export type BeginResult =
  | { readonly _tag: "Started"; readonly charge: ChargeAttempt }
  /** An attempt is in flight (another worker's, or one a crash interrupted): replay it, never start another. */
  | { readonly _tag: "InFlight"; readonly charge: ChargeAttempt }
  /** This trigger already started an attempt and it ended. */
  | { readonly _tag: "Handled"; readonly charge: ChargeAttempt; readonly result: ChargeResult | undefined }
  | { readonly _tag: "Disabled" }
  | { readonly _tag: "CapReached"; readonly monthCharged: Credits; readonly monthlyCapCredits: Credits }

export const monthOf = (now: number): string => new Date(now).toISOString().slice(0, 7)

/**
 * The `begin` transition, the same in every adapter (each applies it atomically): at most one
 * attempt in flight, and the month's charged credits plus this one never above the cap.
 */
export const beginTransition = (
  state: AutoTopUpState,
  request: BeginRequest
): readonly [BeginResult, AutoTopUpState] => {
  const current = state.current
  if (state.phase === "charging" && current !== undefined) return [{ _tag: "InFlight", charge: current }, state]
  if (current !== undefined && current.trigger === request.trigger) {
    return [{ _tag: "Handled", charge: current, result: state.lastResult }, state]
  }
  const { settings } = state
  if (!settings.enabled || request.credits <= 0) return [{ _tag: "Disabled" }, state]
  const month = monthOf(request.now)
  const charged = state.month === month ? state.monthCharged : 0
  if (charged + request.credits > settings.monthlyCapCredits) {
    return [
      { _tag: "CapReached", monthCharged: charged as Credits, monthlyCapCredits: settings.monthlyCapCredits },
      state.month === month ? state : { ...state, month, monthCharged: 0 as Credits }
    ]
  }
  const charge: ChargeAttempt = {
    attempt: (current?.attempt ?? 0) + 1,
    trigger: request.trigger,
    credits: request.credits,
    amountCents: request.amountCents,
    startedAt: request.now
  }
  return [
    { _tag: "Started", charge },
    { ...state, phase: "charging", current: charge, month, monthCharged: (charged + request.credits) as Credits }
  ]
}

/**
 * The `finish` transition: only the attempt in flight can end, once. A `needs_customer` attempt
 * took no money and gives its credits back to the month; a `failed` one keeps them (the provider
 * may have charged before the failure was seen).
 */
export const finishTransition = (
  state: AutoTopUpState,
  attempt: number,
  result: ChargeResult
): readonly [boolean, AutoTopUpState] => {
  if (state.phase !== "charging" || state.current?.attempt !== attempt) return [false, state]
  const released = result === "needs_customer" ? state.current.credits : 0
  return [true, {
    ...state,
    phase: result === "needs_customer" ? "needs_customer" : "idle",
    lastResult: result,
    monthCharged: Math.max(0, state.monthCharged - released) as Credits
  }]
}

/** Per-project auto top-up settings, notification endpoint and the charge state machine. */
export class AutoTopUpStore extends Context.Tag("@tollgate/core/AutoTopUpStore")<AutoTopUpStore, {
  /** The project's state; a project never configured has the empty one. */
  readonly get: (projectId: ProjectId) => Effect.Effect<AutoTopUpState, AutoTopUpStoreUnavailable>
  readonly configure: (
    projectId: ProjectId,
    settings: AutoTopUpSettings
  ) => Effect.Effect<AutoTopUpState, AutoTopUpStoreUnavailable>
  readonly setEndpoint: (
    projectId: ProjectId,
    endpoint: NotificationEndpoint
  ) => Effect.Effect<void, AutoTopUpStoreUnavailable>
  /** {@link beginTransition}, atomically. */
  readonly begin: (projectId: ProjectId, request: BeginRequest) => Effect.Effect<BeginResult, AutoTopUpStoreUnavailable>
  /** {@link finishTransition}, atomically; false when that attempt is not the one in flight. */
  readonly finish: (
    projectId: ProjectId,
    attempt: number,
    result: ChargeResult
  ) => Effect.Effect<boolean, AutoTopUpStoreUnavailable>
  /** Projects with an attempt in flight since before `startedBefore`, oldest first. */
  readonly stalled: (
    options: { readonly startedBefore: number; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<AutoTopUpState>, AutoTopUpStoreUnavailable>
}>() {}
