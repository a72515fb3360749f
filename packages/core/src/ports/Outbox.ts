import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { MessageId, ProjectId } from "../domain/Ids.js"

export class OutboxUnavailable extends Schema.TaggedError<OutboxUnavailable>()("OutboxUnavailable", {
  message: Schema.String
}) {}

export interface OutboxMessage {
  /** Deduplicates: enqueuing the same id twice keeps the first. */
  readonly id: MessageId
  readonly projectId: ProjectId
  readonly topic: string
  readonly payload: unknown
  readonly availableAt: number
  readonly attempts: number
}

/** Messages to deliver at least once (top-up prompts, notifications), written with the state change that caused them. */
export class Outbox extends Context.Tag("@tollgate/core/Outbox")<Outbox, {
  readonly enqueue: (
    message: Omit<OutboxMessage, "attempts">
  ) => Effect.Effect<"created" | "exists", OutboxUnavailable>
  readonly claim: (options: {
    readonly now: number
    readonly limit: number
    readonly leaseMs: number
  }) => Effect.Effect<ReadonlyArray<OutboxMessage>, OutboxUnavailable>
  readonly complete: (id: MessageId) => Effect.Effect<void, OutboxUnavailable>
  readonly retry: (id: MessageId, error: string, availableAt: number) => Effect.Effect<void, OutboxUnavailable>
}>() {}
