import type { MessageId, OutboxMessage } from "@tollgate/core"
import { Outbox } from "@tollgate/core"
import { Effect, Layer } from "effect"

interface Stored {
  readonly message: OutboxMessage
  readonly delivered: boolean
  /** Kept for whoever inspects the store; the port has no read for it. */
  readonly lastError: string | undefined
}

/** Longest waiting first, then by id so every adapter claims in one order. */
const oldestFirst = (a: Stored, b: Stored): number =>
  a.message.availableAt - b.message.availableAt ||
  (a.message.id < b.message.id ? -1 : a.message.id > b.message.id ? 1 : 0)

/**
 * The outbox in process memory. A claimed message's `availableAt` moves to the end of its
 * lease, so another claim skips it until then, and it comes back if its worker never answers.
 * Delivered messages are kept (not delivered again) so their ids still deduplicate.
 */
export const makeMemoryOutbox = Effect.sync(() => {
  const messages = new Map<MessageId, Stored>()

  const enqueue = Effect.fnUntraced(function*(message: Omit<OutboxMessage, "attempts">) {
    if (messages.has(message.id)) return "exists" as const
    const { availableAt, id, payload, projectId, topic } = message
    messages.set(id, {
      message: { id, projectId, topic, payload, availableAt, attempts: 0 },
      delivered: false,
      lastError: undefined
    })
    return "created" as const
  })

  const claim = Effect.fnUntraced(
    function*(options: { readonly now: number; readonly limit: number; readonly leaseMs: number }) {
      const { leaseMs, limit, now } = options
      const due = [...messages.values()]
        .filter((s) => !s.delivered && s.message.availableAt <= now)
        .sort(oldestFirst)
        .slice(0, Math.max(0, limit))
      return due.map((s) => {
        const message: OutboxMessage = { ...s.message, attempts: s.message.attempts + 1, availableAt: now + leaseMs }
        messages.set(message.id, { ...s, message })
        return message
      })
    }
  )

  const complete = Effect.fnUntraced(function*(id: MessageId) {
    const stored = messages.get(id)
    if (stored === undefined || stored.delivered) return
    messages.set(id, { ...stored, delivered: true })
  })

  const retry = Effect.fnUntraced(function*(id: MessageId, error: string, availableAt: number) {
    const stored = messages.get(id)
    if (stored === undefined || stored.delivered) return
    messages.set(id, { ...stored, message: { ...stored.message, availableAt }, lastError: error })
  })

  return Outbox.of({ enqueue, claim, complete, retry })
})

export const MemoryOutboxLive = Layer.effect(Outbox, makeMemoryOutbox)
