/**
 * The embedded default's sandbox, with its off-session charges reporting themselves: a charge that
 * succeeds stores a payment event in the billing inbox (as a provider's webhook would deliver it),
 * so an auto top-up's credits arrive from the event, applied once by the worker, like every other
 * purchase. The event id is the payment's, so a replayed charge (same idempotency key, same
 * payment) stores nothing new.
 */
import type { SandboxPaymentProviderOptions } from "@tollgate/adapters/memory/index"
import { makeSandboxPaymentProvider, SandboxPaymentControl } from "@tollgate/adapters/memory/index"
import type { EventId, OffSessionCharge } from "@tollgate/core"
import { BillingInbox, PaymentProvider } from "@tollgate/core"
import { Clock, Context, Effect, Layer } from "effect"

export const sandboxWithChargeEvents = (options: SandboxPaymentProviderOptions = {}) =>
  Layer.effectContext(Effect.gen(function*() {
    const { control, provider } = yield* makeSandboxPaymentProvider(options)
    const inbox = yield* BillingInbox
    const chargeOffSession = (request: OffSessionCharge) =>
      provider.chargeOffSession(request).pipe(
        Effect.tap((outcome) =>
          outcome.status !== "succeeded" ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) =>
            inbox.store({
              id: `evt_${outcome.paymentId}` as EventId,
              provider: "sandbox",
              type: "payment_intent.succeeded",
              createdAt: now,
              payload: {
                action: {
                  _tag: "CreditsPurchased",
                  projectId: request.projectId,
                  credits: request.credits,
                  paymentId: outcome.paymentId
                }
              }
            }, now).pipe(
              // the charge stands; a replay of the same attempt stores the event then
              Effect.catchAll((e) => Effect.logWarning("sandbox payment event not stored", e.message))
            ))
        )
      )
    return Context.make(PaymentProvider, PaymentProvider.of({ ...provider, chargeOffSession })).pipe(
      Context.add(SandboxPaymentControl, control)
    )
  }))
