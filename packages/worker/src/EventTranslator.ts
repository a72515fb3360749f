import type { BillingAction, IncomingEvent } from "@tollgate/core"
import { neutralAction } from "@tollgate/core"
import type { Option } from "effect"
import { Context, Layer } from "effect"
import { sandboxTranslate } from "./SandboxTranslate.js"

/** What a stored provider event means for the ledger; none when the event moves no credit. */
export type Translate = (event: IncomingEvent) => Option.Option<BillingAction>

/**
 * How the worker reads provider events. There is deliberately no implicit default: an event the
 * translator does not understand is acknowledged and never applied, so a process must say which
 * provider's events it reads.
 */
export class EventTranslator extends Context.Tag("@tollgate/worker/EventTranslator")<EventTranslator, {
  readonly translate: Translate
}>() {
  /** Core's provider-neutral `{ action: … }` payloads only. */
  static readonly Default = Layer.succeed(EventTranslator, { translate: neutralAction })
  /** The embedded sandbox's Stripe-shaped checkouts, and neutral payloads. */
  static readonly Sandbox = Layer.succeed(EventTranslator, { translate: sandboxTranslate })
}
