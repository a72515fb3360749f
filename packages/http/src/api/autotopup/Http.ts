import { HttpApiBuilder } from "@effect/platform"
import type { AutoTopUpState } from "@tollgate/core"
import { AutoTopUpStore, monthOf } from "@tollgate/core"
import { Clock, Effect } from "effect"
import { randomBytes } from "node:crypto"
import { ManagementApi } from "../Api.js"
import { CurrentPrincipal } from "../Authentication.js"
import { BillingSettings } from "../BillingSettings.js"
import { invalidRequest, orUnavailable } from "../Problems.js"

const view = (state: AutoTopUpState, now: number) => {
  const month = monthOf(now)
  return {
    ...state.settings,
    state: state.phase,
    lastResult: state.lastResult,
    month,
    monthToDateCredits: state.month === month ? state.monthCharged : 0 as typeof state.monthCharged,
    notificationUrl: state.endpoint?.url
  }
}

export const AutoTopUpLive = HttpApiBuilder.group(ManagementApi, "autoTopUp", (handlers) =>
  Effect.gen(function*() {
    const store = yield* AutoTopUpStore
    const settings = yield* BillingSettings

    return handlers
      .handle("get", () =>
        Effect.gen(function*() {
          const { project } = yield* CurrentPrincipal
          const state = yield* store.get(project.id).pipe(orUnavailable("auto_top_up_store"))
          return view(state, yield* Clock.currentTimeMillis)
        }))
      .handle("put", ({ payload }) =>
        Effect.gen(function*() {
          const { project } = yield* CurrentPrincipal
          if (payload.enabled) {
            if (payload.amountCredits < settings.minTopUpCredits || payload.amountCredits > settings.maxTopUpCredits) {
              return yield* invalidRequest(
                `amountCredits: a top-up buys between ${settings.minTopUpCredits} and ${settings.maxTopUpCredits} credits`,
                { minCredits: settings.minTopUpCredits, maxCredits: settings.maxTopUpCredits }
              )
            }
            if (payload.thresholdCredits <= 0) {
              return yield* invalidRequest("thresholdCredits: must be positive when auto top-up is enabled")
            }
            if (payload.monthlyCapCredits < payload.amountCredits) {
              return yield* invalidRequest("monthlyCapCredits: must be at least amountCredits")
            }
          }
          const state = yield* store.configure(project.id, payload).pipe(orUnavailable("auto_top_up_store"))
          return view(state, yield* Clock.currentTimeMillis)
        }))
      .handle("notifications", ({ payload }) =>
        Effect.gen(function*() {
          const { project } = yield* CurrentPrincipal
          const secret = `whsec_${randomBytes(24).toString("base64url")}`
          yield* store.setEndpoint(project.id, { url: payload.url, secret }).pipe(orUnavailable("auto_top_up_store"))
          return { url: payload.url, secret }
        }))
  }))
