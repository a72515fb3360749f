import type { TranslateEvent } from "@tollgate/core"
import { neutralActions } from "@tollgate/core"
import { Context, Layer } from "effect"
import { sandboxTranslate } from "./SandboxTranslate.js"
import { stripeTranslate } from "./StripeTranslate.js"

/** What a stored provider event means for the ledger, in order; empty when the event moves no credit. */
export type Translate = TranslateEvent

/**
 * How the worker reads provider events. There is deliberately no implicit default: an event the
 * translator does not understand is acknowledged and never applied, so a process must say which
 * provider's events it reads.
 */
export class EventTranslator extends Context.Tag("@tollgate/worker/EventTranslator")<EventTranslator, {
  readonly translate: Translate
}>() {
  /** Core's provider-neutral `{ action: … }` payloads only. */
  static readonly Default = Layer.succeed(EventTranslator, { translate: neutralActions })
  /** The embedded sandbox's Stripe-shaped checkouts, and neutral payloads. */
  static readonly Sandbox = Layer.succeed(EventTranslator, { translate: sandboxTranslate })
  /** Stripe's events for provider "stripe"; neutral payloads from any other provider. */
  static readonly Stripe = Layer.succeed(EventTranslator, {
    translate: (event) => event.provider === "stripe" ? stripeTranslate(event) : neutralActions(event)
  })
}
