import { Clock, Effect } from "effect"
import type { Credits } from "../domain/Credits.js"
import type { MessageId, ProjectId } from "../domain/Ids.js"
import type { AutoTopUpState, ChargeAttempt } from "../ports/AutoTopUpStore.js"
import { AutoTopUpStore } from "../ports/AutoTopUpStore.js"
import { Ledger } from "../ports/Ledger.js"
import type { OutboxMessage } from "../ports/Outbox.js"
import { Outbox } from "../ports/Outbox.js"
import { PaymentProvider } from "../ports/PaymentProvider.js"

/** What handling a low-balance message did. */
export type AutoTopUpOutcome =
  | "disabled"
  | "above_threshold"
  | "cap_reached"
  | "charged"
  | "needs_customer"
  | "already_handled"

/** The off-session charge's key: the same attempt always asks the provider the same question. */
export const chargeIdempotencyKey = (projectId: ProjectId, attempt: number) => `autotopup:${projectId}:${attempt}`

export const checkoutIdempotencyKey = (projectId: ProjectId, attempt: number) =>
  `autotopup_checkout:${projectId}:${attempt}`

export interface AutoTopUpPricing {
  /** Price of one credit in cents; a top-up is charged `ceil(credits × creditPriceCents)`. */
  readonly creditPriceCents: number
}

/**
 * Auto top-up: a delivered `balance.low` message charges the saved card off-session when the
 * project opted in. The attempt is recorded before the provider is called; every failure
 * afterwards is replayed with the same idempotency key, so a crash never charges twice.
 */
export class AutoTopUp extends Effect.Service<AutoTopUp>()("@tollgate/core/AutoTopUp", {
  effect: Effect.gen(function*() {
    const store = yield* AutoTopUpStore
    const payments = yield* PaymentProvider
    const outbox = yield* Outbox
    const ledger = yield* Ledger

    /** Asks the provider for the attempt (again, after a crash) and records the answer. */
    const drive = Effect.fn("AutoTopUp.drive")(function*(projectId: ProjectId, charge: ChargeAttempt) {
      const outcome = yield* payments.chargeOffSession({
        projectId,
        credits: charge.credits,
        amountCents: charge.amountCents,
        idempotencyKey: chargeIdempotencyKey(projectId, charge.attempt)
      })
      if (outcome.status === "succeeded") {
        yield* store.finish(projectId, charge.attempt, "succeeded")
        return "charged" as const
      }
      const checkout = yield* payments.createTopUpCheckout({
        projectId,
        credits: charge.credits,
        amountCents: charge.amountCents,
        idempotencyKey: checkoutIdempotencyKey(projectId, charge.attempt),
        saveCard: true
      })
      // enqueued before the attempt ends: a crash in between replays both, and the id deduplicates
      yield* outbox.enqueue({
        id: `topup_required:${projectId}:${charge.attempt}` as MessageId,
        projectId,
        topic: "topup.required",
        payload: {
          projectId,
          credits: charge.credits,
          amountCents: charge.amountCents,
          reason: outcome.reason,
          checkoutUrl: checkout.url,
          sessionId: checkout.sessionId
        },
        availableAt: yield* Clock.currentTimeMillis
      })
      yield* store.finish(projectId, charge.attempt, "needs_customer")
      return "needs_customer" as const
    })

    const onLowBalance = Effect.fn("AutoTopUp.onLowBalance")(
      function*(message: OutboxMessage, pricing: AutoTopUpPricing) {
        const projectId = message.projectId
        const state = yield* store.get(projectId)
        const { settings } = state
        if (!settings.enabled || settings.amountCredits <= 0) return "disabled" as const
        if (state.phase !== "charging") {
          const balance = yield* ledger.balance(projectId)
          if (balance.available >= settings.thresholdCredits) return "above_threshold" as const
        }
        const credits: Credits = settings.amountCredits
        const amountCents = Math.ceil(credits * pricing.creditPriceCents)
        const begun = yield* store.begin(projectId, {
          trigger: message.id,
          credits,
          amountCents,
          now: yield* Clock.currentTimeMillis
        })
        switch (begun._tag) {
          case "Disabled":
            return "disabled" as const
          case "CapReached":
            yield* Effect.logInfo("auto top-up skipped: the monthly cap would be exceeded", {
              projectId,
              monthCharged: begun.monthCharged,
              monthlyCapCredits: begun.monthlyCapCredits
            })
            return "cap_reached" as const
          case "Handled":
            return "already_handled" as const
          case "Started":
          case "InFlight":
            return yield* drive(projectId, begun.charge)
        }
      }
    )

    /** Drives the attempts a crash left in flight since before `startedBefore`; how many. */
    const resumeStalled = Effect.fn("AutoTopUp.resumeStalled")(
      function*(options: { readonly startedBefore: number; readonly limit: number }) {
        const stalled = yield* store.stalled(options)
        yield* Effect.forEach(
          stalled,
          (state: AutoTopUpState) =>
            state.current === undefined ? Effect.void : drive(state.projectId, state.current).pipe(
              Effect.catchAll((e) => Effect.logWarning("stalled auto top-up not resumed", state.projectId, e))
            ),
          { discard: true }
        )
        return stalled.length
      }
    )

    /**
     * Gives up on the attempt a message started (its deliveries ran out): it ends `failed`, its
     * credits stay counted against the month, and a `topup.failed` notification is queued.
     */
    const abandon = Effect.fn("AutoTopUp.abandon")(function*(message: OutboxMessage, error: string) {
      const state = yield* store.get(message.projectId)
      const current = state.current
      if (state.phase !== "charging" || current === undefined) return false
      const ended = yield* store.finish(message.projectId, current.attempt, "failed")
      if (ended) {
        yield* outbox.enqueue({
          id: `topup_failed:${message.projectId}:${current.attempt}` as MessageId,
          projectId: message.projectId,
          topic: "topup.failed",
          payload: { projectId: message.projectId, credits: current.credits, amountCents: current.amountCents, error },
          availableAt: yield* Clock.currentTimeMillis
        })
      }
      return ended
    })

    return { onLowBalance, resumeStalled, abandon } as const
  })
}) {}
