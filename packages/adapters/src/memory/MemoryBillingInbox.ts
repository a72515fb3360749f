import type { BillingEventStatus, EventId, IncomingEvent } from "@tollgate/core"
import { BillingEvent, BillingInbox, ClaimedBillingEvent } from "@tollgate/core"
import { Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"

interface Stored {
  readonly event: BillingEvent
  /**
   * When the event may next be claimed: unset until first claimed, then the end of its lease,
   * or the retry time once a failure is recorded.
   */
  readonly claimableAt: number | undefined
  /** The current lease's token; unset when no lease is running. */
  readonly leaseToken: string | undefined
}

/** Oldest provider time first (the order the provider meant), then arrival, then id. */
const oldestFirst = (a: Stored, b: Stored): number =>
  a.event.createdAt - b.event.createdAt ||
  a.event.receivedAt - b.event.receivedAt ||
  (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0)

/**
 * The billing inbox in process memory. A claim selects and leases its events in one
 * synchronous block, so two concurrent claims never return the same event, the way
 * `FOR UPDATE SKIP LOCKED` keeps database workers apart.
 */
export const makeMemoryBillingInbox = Effect.sync(() => {
  const events = new Map<EventId, Stored>()

  const store = Effect.fnUntraced(function*(incoming: IncomingEvent, receivedAt: number) {
    if (events.has(incoming.id)) return "duplicate" as const
    const event = new BillingEvent({
      id: incoming.id,
      provider: incoming.provider,
      type: incoming.type,
      createdAt: incoming.createdAt,
      payload: incoming.payload,
      receivedAt,
      status: "pending",
      attempts: 0
    })
    events.set(event.id, { event, claimableAt: undefined, leaseToken: undefined })
    return "stored" as const
  })

  const get = Effect.fnUntraced(function*(id: EventId) {
    return Option.fromNullable(events.get(id)?.event)
  })

  const isDue = (s: Stored, now: number) =>
    s.event.status === "pending" && (s.claimableAt === undefined || s.claimableAt <= now)

  const lease = (s: Stored, now: number, leaseMs: number, leaseToken: string) => {
    const event = new BillingEvent({ ...s.event, attempts: s.event.attempts + 1 })
    events.set(event.id, { event, claimableAt: now + leaseMs, leaseToken })
    return new ClaimedBillingEvent({ ...event, leaseToken })
  }

  const claim = Effect.fnUntraced(
    function*(options: { readonly now: number; readonly limit: number; readonly leaseMs: number }) {
      const { leaseMs, limit, now } = options
      const due = [...events.values()]
        .filter((s) => isDue(s, now))
        .sort(oldestFirst)
        .slice(0, Math.max(0, limit))
      if (due.length === 0) return []
      const leaseToken = randomUUID()
      return due.map((s) => lease(s, now, leaseMs, leaseToken))
    }
  )

  const claimEvent = Effect.fnUntraced(
    function*(id: EventId, options: { readonly now: number; readonly leaseMs: number }) {
      const stored = events.get(id)
      if (stored === undefined || !isDue(stored, options.now)) return Option.none()
      return Option.some(lease(stored, options.now, options.leaseMs, randomUUID()))
    }
  )

  /** The event, if `leaseToken` is its current lease. */
  const leased = (id: EventId, leaseToken: string) => {
    const stored = events.get(id)
    return stored !== undefined && stored.event.status === "pending" && stored.leaseToken === leaseToken
      ? stored
      : undefined
  }

  const complete = Effect.fnUntraced(function*(id: EventId, leaseToken: string, at: number) {
    const stored = leased(id, leaseToken)
    if (stored === undefined) return false
    events.set(id, {
      event: new BillingEvent({ ...stored.event, status: "processed", processedAt: at }),
      claimableAt: undefined,
      leaseToken: undefined
    })
    return true
  })

  const fail = Effect.fnUntraced(
    function*(id: EventId, leaseToken: string, error: string, retryAt: number) {
      const stored = leased(id, leaseToken)
      if (stored === undefined) return false
      events.set(id, {
        event: new BillingEvent({ ...stored.event, lastError: error }),
        claimableAt: retryAt,
        leaseToken: undefined
      })
      return true
    }
  )

  const deadLetter = Effect.fnUntraced(
    function*(id: EventId, leaseToken: string, error: string) {
      const stored = leased(id, leaseToken)
      if (stored === undefined) return false
      events.set(id, {
        event: new BillingEvent({ ...stored.event, status: "dead", lastError: error }),
        claimableAt: undefined,
        leaseToken: undefined
      })
      return true
    }
  )

  const list = Effect.fnUntraced(
    function*(options: { readonly status: BillingEventStatus; readonly limit: number }) {
      return [...events.values()]
        .filter((s) => s.event.status === options.status)
        .sort(oldestFirst)
        .slice(0, Math.max(0, options.limit))
        .map((s) => s.event)
    }
  )

  const requeue = Effect.fnUntraced(function*(id: EventId) {
    const stored = events.get(id)
    if (stored === undefined || stored.event.status !== "dead") return Option.none()
    const event = new BillingEvent({ ...stored.event, status: "pending", attempts: 0 })
    events.set(id, { event, claimableAt: undefined, leaseToken: undefined })
    return Option.some(event)
  })

  return BillingInbox.of({ store, get, claim, claimEvent, complete, fail, deadLetter, list, requeue })
})

export const MemoryBillingInboxLive = Layer.effect(BillingInbox, makeMemoryBillingInbox)
