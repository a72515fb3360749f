import { Clock, Effect, Option, Schema } from "effect"
import { fundingAccount } from "../domain/Account.js"
import { Credits, EpochMillis } from "../domain/Credits.js"
import type { GrantSource } from "../domain/Grant.js"
import type { IdempotencyKey } from "../domain/Ids.js"
import { PlanId, ProjectId } from "../domain/Ids.js"
import type { IncomingEvent } from "../ports/BillingInbox.js"
import { BillingInbox } from "../ports/BillingInbox.js"
import { Ledger } from "../ports/Ledger.js"
import { PlanChangeReason } from "../ports/PlanChangeStore.js"
import { ProjectStore } from "../ports/ProjectStore.js"
import { dependencyUnavailable, ProjectNotFound } from "./Refusals.js"
import { Subscriptions } from "./Subscriptions.js"

const PositiveCredits = Credits.pipe(Schema.positive())

/** The ledger key of a payment's credit purchase: every event about one payment grants once. */
const purchaseKey = (paymentId: string) => `purchase:${paymentId}` as IdempotencyKey

/**
 * A reversal (refund, dispute, correction): takes back up to `credits`, keyed by `reversalId`.
 * What it actually took is what the ledger remembers under its key. A refund names the payment
 * it refunds (`paymentId`): what the wallet no longer holds of it was spent on calls, and is
 * reclaimed from those calls' payees (contributors and the platform) in proportion.
 */
export const CreditsReversed = Schema.TaggedStruct("CreditsReversed", {
  projectId: ProjectId,
  credits: PositiveCredits,
  reversalId: Schema.NonEmptyString,
  reason: Schema.String,
  paymentId: Schema.optional(Schema.NonEmptyString)
})
export type CreditsReversed = typeof CreditsReversed.Type

/**
 * A subscription event: the project's subscription is now on `planId` (or, `cancelled`, ends at
 * `effectiveAt`). `version` is the event's own time (Stripe's `created`, seconds), which orders a
 * project's events whatever their arrival; `ended` marks the subscription's deletion. Where the
 * project ends up is decided from all its distinct events (`resolvePlan` in `Subscriptions`).
 */
export const PlanChanged = Schema.TaggedStruct("PlanChanged", {
  projectId: ProjectId,
  planId: PlanId,
  subscriptionId: Schema.NonEmptyString,
  effectiveAt: EpochMillis,
  version: Schema.Int.pipe(Schema.nonNegative()),
  reason: PlanChangeReason,
  ended: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type PlanChanged = typeof PlanChanged.Type

/**
 * What a provider event means for the ledger, whatever the provider. Each carries the
 * provider's own id for the money movement, which becomes the ledger's idempotency key: two
 * different events about one payment (say a completed checkout and a succeeded payment) grant once.
 * `CreditsReinstated` gives back exactly what the reversal it names took (a dispute won).
 */
export const BillingAction = Schema.Union(
  Schema.TaggedStruct("CreditsPurchased", {
    projectId: ProjectId,
    credits: PositiveCredits,
    paymentId: Schema.NonEmptyString
  }),
  Schema.TaggedStruct("AllowanceRenewed", {
    projectId: ProjectId,
    credits: PositiveCredits,
    periodEnd: EpochMillis,
    invoiceId: Schema.NonEmptyString
  }),
  CreditsReversed,
  Schema.TaggedStruct("CreditsReinstated", { reversal: CreditsReversed }),
  PlanChanged
)
export type BillingAction = typeof BillingAction.Type

/**
 * A translation that could not finish because something it asked (the payment provider, for an
 * event that names a charge without saying what it paid for) did not answer: the event is retried.
 */
export class TranslationUnavailable extends Schema.TaggedError<TranslationUnavailable>()("TranslationUnavailable", {
  message: Schema.String
}) {}

/**
 * What a stored provider event means for the ledger, in order; empty when it moves no credit. A
 * translation that must ask the provider first is an effect.
 */
export type TranslateEvent = (
  event: IncomingEvent
) => ReadonlyArray<BillingAction> | Effect.Effect<ReadonlyArray<BillingAction>, TranslationUnavailable>

/** Provider-neutral events carry their action as `{ "action": … }`; anything else is acknowledged and ignored. */
const NeutralPayload = Schema.Struct({ action: BillingAction })
const decodeNeutral = Schema.decodeUnknownOption(NeutralPayload)
export const neutralActions = (event: Pick<IncomingEvent, "payload">): ReadonlyArray<BillingAction> =>
  Option.match(decodeNeutral(event.payload), { onNone: () => [], onSome: (p) => [p.action] })

/**
 * `refused`: the ledger answered with a refusal (recorded and logged; the event is done).
 * `dead`: the event failed its last allowed attempt and is parked with its error for an operator.
 * `stale`: this worker's lease ended and another worker claimed the event before this one could
 * mark it; what it applied is keyed, so the new holder's run finds it done.
 */
export type EventOutcome = "applied" | "ignored" | "duplicate" | "failed" | "refused" | "stale" | "dead"

const unavailable = dependencyUnavailable

const RETRY_AFTER_MS = 30_000

/** How many attempts an event gets before it is parked as dead, unless the caller says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 10

export interface ProcessOptions {
  /** Attempts an event gets before it is parked as dead (default `DEFAULT_MAX_ATTEMPTS`). */
  readonly maxAttempts?: number | undefined
}

/** The lease of an event applied as it arrives (outside the worker's batches). */
const INLINE_LEASE_MS = 60_000

/**
 * An event under a lease (as `BillingInbox.claim` returns it): only its lease may mark it.
 * `attempts` is the lease's attempt number (unknown: never parked as dead for it).
 */
export type LeasedEvent = IncomingEvent & { readonly leaseToken: string; readonly attempts?: number }

export interface GrantCreditsRequest {
  readonly idempotencyKey: IdempotencyKey
  readonly projectId: ProjectId
  readonly amount: Credits
  readonly source: GrantSource
  readonly expiresAt?: number | undefined
  readonly reason: string
}

/**
 * Credits in and out through billing: operator grants, and provider events applied exactly
 * once in effect: stored once by id, then applied under idempotency keys derived from the
 * provider's ids, so a crash between applying and marking done re-applies harmlessly.
 */
export class Billing extends Effect.Service<Billing>()("@tollgate/core/Billing", {
  effect: Effect.gen(function*() {
    const ledger = yield* Ledger
    const inbox = yield* BillingInbox
    const projects = yield* ProjectStore
    // plan changes need their own store: a process wired without it acknowledges them unapplied
    const subscriptions = yield* Effect.serviceOption(Subscriptions)

    const grantCredits = Effect.fn("Billing.grantCredits")(function*(request: GrantCreditsRequest) {
      const project = yield* projects.get(request.projectId).pipe(Effect.mapError(unavailable("project_store")))
      if (Option.isNone(project)) {
        return yield* new ProjectNotFound({ code: "project_not_found", projectId: request.projectId })
      }
      return yield* ledger.grant(request)
    })

    /** A reversal's withdrawal; a reinstatement replays exactly this request to learn what it took. */
    const reversalRequest = (reversal: CreditsReversed) => ({
      idempotencyKey: `reversal:${reversal.reversalId}` as IdempotencyKey,
      projectId: reversal.projectId,
      amount: reversal.credits,
      to: fundingAccount,
      reason: reversal.reason,
      // a reversal takes back what is left of the wallet; a refund reclaims the rest from the payees
      partial: true,
      reclaimSpentOf: reversal.paymentId === undefined ? undefined : purchaseKey(reversal.paymentId)
    })

    const applyAction = Effect.fn("Billing.applyAction")(function*(action: BillingAction) {
      switch (action._tag) {
        case "CreditsPurchased":
          return yield* ledger.grant({
            idempotencyKey: purchaseKey(action.paymentId),
            projectId: action.projectId,
            amount: action.credits,
            source: "purchase",
            reason: `payment ${action.paymentId}`
          })
        case "AllowanceRenewed":
          return yield* ledger.grant({
            idempotencyKey: `allowance:${action.invoiceId}` as IdempotencyKey,
            projectId: action.projectId,
            amount: action.credits,
            source: "plan_allowance",
            expiresAt: action.periodEnd,
            reason: `invoice ${action.invoiceId}`
          })
        case "CreditsReversed":
          return yield* ledger.withdraw(reversalRequest(action))
        case "CreditsReinstated": {
          // Exact and idempotent without reading history: the ledger answers a replayed write with
          // its first outcome, so replaying the reversal's own request returns what it actually
          // withdrew (partial when credit had been spent). If the reversal was never applied (the
          // reinstatement arrived first), the replay applies it now, so whatever the order the
          // wallet ends at "reversed, then given back". The grant is keyed by the reversal, and its
          // amount is that first outcome, so a replayed reinstatement is the same request again.
          const reversed = yield* ledger.withdraw(reversalRequest(action.reversal))
          if (reversed.withdrawn === 0) return reversed
          return yield* ledger.grant({
            idempotencyKey: `reinstate:${action.reversal.reversalId}` as IdempotencyKey,
            projectId: action.reversal.projectId,
            amount: reversed.withdrawn,
            // back from the funding account the reversal paid into
            source: "purchase",
            reason: `reinstated: ${action.reversal.reason}`
          })
        }
        case "PlanChanged": {
          if (Option.isNone(subscriptions)) {
            yield* Effect.logWarning("plan change not applied: no subscription store here", action.projectId)
            return false
          }
          const { _tag, projectId, ...change } = action
          return yield* subscriptions.value.apply(projectId, change)
        }
      }
    })

    /** Marks the claimed event done; a lease that is no longer this worker's changes nothing and says so. */
    const complete = Effect.fn("Billing.complete")(function*(event: LeasedEvent, at: number) {
      const completed = yield* inbox.complete(event.id, event.leaseToken, at).pipe(
        Effect.mapError(unavailable("billing_inbox"))
      )
      if (!completed) {
        yield* Effect.logWarning("billing event not completed: its lease is no longer this worker's", event.id)
      }
      return completed
    })

    /** Ends this attempt: retried later, or parked as dead when it was the last one allowed. */
    const failAttempt = Effect.fn("Billing.failAttempt")(
      function*(event: LeasedEvent, error: string, now: number, maxAttempts: number) {
        const last = event.attempts !== undefined && event.attempts >= maxAttempts
        const recorded = yield* (last
          ? inbox.deadLetter(event.id, event.leaseToken, error)
          : inbox.fail(event.id, event.leaseToken, error, now + RETRY_AFTER_MS)).pipe(
            Effect.mapError(unavailable("billing_inbox"))
          )
        if (!recorded) {
          yield* Effect.logWarning("billing event failure not recorded: its lease is no longer this worker's", event.id)
          return "stale" as EventOutcome
        }
        if (!last) return "failed" as EventOutcome
        yield* Effect.logError(`billing event dead after ${event.attempts} attempts`, event.id, event.type, error)
        return "dead" as EventOutcome
      }
    )

    /**
     * Applies a claimed event's actions in order and marks it. A ledger outage (or a translation that
     * could not ask the provider) leaves it pending for a retry, which re-applies every action
     * harmlessly (each is keyed by the provider's ids), until its last allowed attempt, which parks
     * it as dead. A refusal is an answer, not an outage: it is
     * logged, the other actions still apply, and the event is done, since retrying would get the same
     * answer. An event claimed more often than allowed (its workers died each time) is parked unapplied.
     */
    const process = Effect.fn("Billing.process")(function*(
      event: LeasedEvent,
      translate: TranslateEvent = neutralActions,
      options: ProcessOptions = {}
    ) {
      const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
      const now = yield* Clock.currentTimeMillis
      if (event.attempts !== undefined && event.attempts > maxAttempts) {
        return yield* failAttempt(event, `no attempt finished in ${maxAttempts} tries`, now, maxAttempts)
      }
      const translated = translate(event)
      let actions: ReadonlyArray<BillingAction>
      if (Effect.isEffect(translated)) {
        const read = yield* Effect.either(translated)
        if (read._tag === "Left") return yield* failAttempt(event, read.left.message, now, maxAttempts)
        actions = read.right
      } else {
        actions = translated
      }
      if (actions.length === 0) {
        return (yield* complete(event, now)) ? "ignored" as EventOutcome : "stale" as EventOutcome
      }
      let refused = false
      for (const action of actions) {
        const applied = yield* Effect.either(applyAction(action))
        if (applied._tag === "Right") continue
        if (applied.left._tag === "LedgerUnavailable" || applied.left._tag === "PlanChangeUnavailable") {
          return yield* failAttempt(event, applied.left.message, now, maxAttempts)
        }
        refused = true
        yield* Effect.logError("billing action refused by the ledger", event.id, action._tag, applied.left)
      }
      if (!(yield* complete(event, now))) return "stale" as EventOutcome
      return (refused ? "refused" : "applied") as EventOutcome
    })

    /**
     * Stores the event once by id and applies it at once under its own lease; a duplicate is
     * acknowledged and not applied again.
     */
    const applyBillingEvent = Effect.fn("Billing.applyBillingEvent")(function*(
      event: IncomingEvent,
      translate?: TranslateEvent
    ) {
      const now = yield* Clock.currentTimeMillis
      const stored = yield* inbox.store(event, now).pipe(Effect.mapError(unavailable("billing_inbox")))
      if (stored === "duplicate") return "duplicate" as EventOutcome
      const claimed = yield* inbox.claimEvent(event.id, { now, leaseMs: INLINE_LEASE_MS }).pipe(
        Effect.mapError(unavailable("billing_inbox"))
      )
      // a worker claimed it between the store and this claim: it is that worker's to apply
      if (Option.isNone(claimed)) return "stale" as EventOutcome
      return yield* process(claimed.value, translate)
    })

    /** Claims pending events (under a lease) and applies them: what a worker runs. */
    const processPending = Effect.fn("Billing.processPending")(function*(options: {
      readonly limit: number
      readonly leaseMs: number
      readonly translate?: TranslateEvent
      readonly maxAttempts?: number
    }) {
      const now = yield* Clock.currentTimeMillis
      const claimed = yield* inbox.claim({ now, limit: options.limit, leaseMs: options.leaseMs }).pipe(
        Effect.mapError(unavailable("billing_inbox"))
      )
      return yield* Effect.forEach(claimed, (event) => process(event, options.translate, options))
    })

    return { grantCredits, applyBillingEvent, process, processPending } as const
  })
}) {}
