import { Clock, Effect, Option, Schema } from "effect"
import { fundingAccount } from "../domain/Account.js"
import { Credits, EpochMillis } from "../domain/Credits.js"
import type { GrantSource } from "../domain/Grant.js"
import type { IdempotencyKey } from "../domain/Ids.js"
import { ProjectId } from "../domain/Ids.js"
import type { IncomingEvent } from "../ports/BillingInbox.js"
import { BillingInbox } from "../ports/BillingInbox.js"
import type { InsufficientCredit, LedgerWriteError } from "../ports/Ledger.js"
import { Ledger } from "../ports/Ledger.js"
import { ProjectStore } from "../ports/ProjectStore.js"
import { dependencyUnavailable, ProjectNotFound } from "./Refusals.js"

const PositiveCredits = Credits.pipe(Schema.positive())

/**
 * What a provider event means for the ledger, whatever the provider. Each carries the
 * provider's own id for the money movement, which becomes the ledger's idempotency key: two
 * different events about one payment (say a completed checkout and a succeeded payment) grant once.
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
  Schema.TaggedStruct("CreditsReversed", {
    projectId: ProjectId,
    credits: PositiveCredits,
    reversalId: Schema.NonEmptyString,
    reason: Schema.String
  })
)
export type BillingAction = typeof BillingAction.Type

/** Provider-neutral events carry their action as `{ "action": … }`; anything else is acknowledged and ignored. */
const NeutralPayload = Schema.Struct({ action: BillingAction })
const decodeNeutral = Schema.decodeUnknownOption(NeutralPayload)
export const neutralAction = (event: Pick<IncomingEvent, "payload">): Option.Option<BillingAction> =>
  Option.map(decodeNeutral(event.payload), (p) => p.action)

/** `refused`: the ledger answered with a refusal (recorded and logged; the event is done). */
export type EventOutcome = "applied" | "ignored" | "duplicate" | "failed" | "refused"

const unavailable = dependencyUnavailable

const RETRY_AFTER_MS = 30_000

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

    const grantCredits = Effect.fn("Billing.grantCredits")(function*(request: GrantCreditsRequest) {
      const project = yield* projects.get(request.projectId).pipe(Effect.mapError(unavailable("project_store")))
      if (Option.isNone(project)) {
        return yield* new ProjectNotFound({ code: "project_not_found", projectId: request.projectId })
      }
      return yield* ledger.grant(request)
    })

    const applyAction = (action: BillingAction): Effect.Effect<unknown, LedgerWriteError | InsufficientCredit> => {
      switch (action._tag) {
        case "CreditsPurchased":
          return ledger.grant({
            idempotencyKey: `purchase:${action.paymentId}` as IdempotencyKey,
            projectId: action.projectId,
            amount: action.credits,
            source: "purchase",
            reason: `payment ${action.paymentId}`
          })
        case "AllowanceRenewed":
          return ledger.grant({
            idempotencyKey: `allowance:${action.invoiceId}` as IdempotencyKey,
            projectId: action.projectId,
            amount: action.credits,
            source: "plan_allowance",
            expiresAt: action.periodEnd,
            reason: `invoice ${action.invoiceId}`
          })
        case "CreditsReversed":
          // a reversal takes back what is left; credit already spent cannot be taken twice
          return ledger.withdraw({
            idempotencyKey: `reversal:${action.reversalId}` as IdempotencyKey,
            projectId: action.projectId,
            amount: action.credits,
            to: fundingAccount,
            reason: action.reason,
            partial: true
          })
      }
    }

    /** Applies a stored event and marks it; a ledger outage leaves it pending for a retry. */
    const process = Effect.fn("Billing.process")(function*(
      event: IncomingEvent,
      translate: (event: IncomingEvent) => Option.Option<BillingAction> = neutralAction
    ) {
      const now = yield* Clock.currentTimeMillis
      const action = translate(event)
      if (Option.isNone(action)) {
        yield* inbox.complete(event.id, now).pipe(Effect.mapError(unavailable("billing_inbox")))
        return "ignored" as EventOutcome
      }
      const applied = yield* Effect.either(applyAction(action.value))
      if (applied._tag === "Left" && applied.left._tag === "LedgerUnavailable") {
        yield* inbox.fail(event.id, applied.left.message, now + RETRY_AFTER_MS).pipe(
          Effect.mapError(unavailable("billing_inbox"))
        )
        return "failed" as EventOutcome
      }
      yield* inbox.complete(event.id, now).pipe(Effect.mapError(unavailable("billing_inbox")))
      if (applied._tag === "Left") {
        // a refusal is an answer, not an outage: retrying would get the same answer
        yield* Effect.logError("billing event refused by the ledger", event.id, applied.left._tag)
        return "refused" as EventOutcome
      }
      return "applied" as EventOutcome
    })

    /** Stores the event once by id and applies it; a duplicate is acknowledged and not applied again. */
    const applyBillingEvent = Effect.fn("Billing.applyBillingEvent")(function*(
      event: IncomingEvent,
      translate?: (event: IncomingEvent) => Option.Option<BillingAction>
    ) {
      const now = yield* Clock.currentTimeMillis
      const stored = yield* inbox.store(event, now).pipe(Effect.mapError(unavailable("billing_inbox")))
      if (stored === "duplicate") return "duplicate" as EventOutcome
      return yield* process(event, translate)
    })

    /** Claims pending events (under a lease) and applies them: what a worker runs. */
    const processPending = Effect.fn("Billing.processPending")(function*(options: {
      readonly limit: number
      readonly leaseMs: number
      readonly translate?: (event: IncomingEvent) => Option.Option<BillingAction>
    }) {
      const now = yield* Clock.currentTimeMillis
      const claimed = yield* inbox.claim({ now, limit: options.limit, leaseMs: options.leaseMs }).pipe(
        Effect.mapError(unavailable("billing_inbox"))
      )
      return yield* Effect.forEach(claimed, (event) => process(event, options.translate))
    })

    return { grantCredits, applyBillingEvent, process, processPending } as const
  })
}) {}
