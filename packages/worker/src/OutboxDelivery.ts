import type { OutboxMessage } from "@tollgate/core"
import { AutoTopUp, AutoTopUpStore, Outbox } from "@tollgate/core"
import { Clock, Config, ConfigError, Context, Duration, Effect, Either, Layer } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import { everyInterval } from "./Loop.js"
import { positiveInteger } from "./WorkerConfig.js"

/** The header a notification's signature travels in. */
export const signatureHeader = "Tollgate-Signature"

/** Topics delivered to the project's endpoint as notifications. */
export const notificationTopics: ReadonlySet<string> = new Set(["balance.low", "topup.required", "topup.failed"])

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, Stripe's scheme: the receiver recomputes it
 * over the raw body and refuses old timestamps.
 */
export const signNotification = (secret: string, timestamp: number, body: string): string =>
  `t=${timestamp},v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`

/** Whether `header` signs `body` with `secret` (any of its `v1` values), in constant time. */
export const verifyNotification = (secret: string, header: string, body: string): boolean => {
  const parts = header.split(",").map((part) => part.split("=", 2) as [string, string | undefined])
  const timestamp = parts.find(([k]) => k === "t")?.[1]
  if (timestamp === undefined || !/^\d+$/.test(timestamp)) return false
  const expected = Buffer.from(createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex"))
  return parts.some(([k, v]) =>
    k === "v1" && v !== undefined && v.length === expected.length && timingSafeEqual(Buffer.from(v), expected)
  )
}

export interface OutboxDeliveryOptions {
  /** How long the delivery loop waits after draining the due messages. */
  readonly pollInterval: Duration.Duration
  readonly batchLimit: number
  readonly leaseMs: number
  /** Deliveries of one message before it is given up (logged as an error and completed). */
  readonly maxAttempts: number
  /** The wait after the first failure; it doubles with each further one, up to `maxBackoffMs`. */
  readonly baseBackoffMs: number
  readonly maxBackoffMs: number
  /** How long a receiver has to answer. */
  readonly requestTimeoutMs: number
  /** Price of one credit in cents, for the auto top-up's charge (as the top-up endpoint prices it). */
  readonly creditPriceCents: number
}

export const defaultOutboxDeliveryOptions: OutboxDeliveryOptions = {
  pollInterval: Duration.seconds(1),
  batchLimit: 50,
  leaseMs: 60_000,
  maxAttempts: 10,
  baseBackoffMs: 1_000,
  maxBackoffMs: 3_600_000,
  requestTimeoutMs: 10_000,
  creditPriceCents: 1
}

/**
 * `WORKER_OUTBOX_POLL_MS` (default 1000), `WORKER_OUTBOX_MAX_ATTEMPTS` (10),
 * `WORKER_OUTBOX_BACKOFF_MS` (1000), `WORKER_OUTBOX_MAX_BACKOFF_MS` (3600000),
 * `WORKER_OUTBOX_TIMEOUT_MS` (10000) and `WORKER_CREDIT_PRICE_CENTS` (1).
 */
export const OutboxDeliveryEnvConfig: Config.Config<OutboxDeliveryOptions> = Config.all({
  pollInterval: positiveInteger("OUTBOX_POLL_MS", 86_400_000, 1_000).pipe(Config.map(Duration.millis)),
  batchLimit: Config.succeed(defaultOutboxDeliveryOptions.batchLimit),
  leaseMs: Config.succeed(defaultOutboxDeliveryOptions.leaseMs),
  maxAttempts: positiveInteger("OUTBOX_MAX_ATTEMPTS", 1_000, defaultOutboxDeliveryOptions.maxAttempts),
  baseBackoffMs: positiveInteger("OUTBOX_BACKOFF_MS", 86_400_000, defaultOutboxDeliveryOptions.baseBackoffMs),
  maxBackoffMs: positiveInteger("OUTBOX_MAX_BACKOFF_MS", 604_800_000, defaultOutboxDeliveryOptions.maxBackoffMs),
  requestTimeoutMs: positiveInteger("OUTBOX_TIMEOUT_MS", 600_000, defaultOutboxDeliveryOptions.requestTimeoutMs),
  creditPriceCents: positiveInteger("CREDIT_PRICE_CENTS", 1_000_000, defaultOutboxDeliveryOptions.creditPriceCents)
}).pipe(Config.nested("WORKER"))

/** The delivery loop's settings; the defaults apply unless a layer provides others. */
export class OutboxDeliveryConfig extends Context.Reference<OutboxDeliveryConfig>()(
  "@tollgate/worker/OutboxDeliveryConfig",
  { defaultValue: (): OutboxDeliveryOptions => defaultOutboxDeliveryOptions }
) {
  static readonly layer = (options: Partial<OutboxDeliveryOptions>): Layer.Layer<OutboxDeliveryConfig> =>
    Layer.succeed(OutboxDeliveryConfig, { ...defaultOutboxDeliveryOptions, ...options })

  static readonly fromEnv = Layer.effect(OutboxDeliveryConfig, OutboxDeliveryEnvConfig)

  /**
   * The `WORKER_*` settings, with the credit price the gateway's top-ups use (the configuration
   * file's `billing.creditPriceCents`), so an auto top-up and a checkout charge one price. A
   * `WORKER_CREDIT_PRICE_CENTS` that says otherwise is a configuration error.
   */
  static readonly fromEnvPricedAt = (creditPriceCents: number) =>
    Layer.effect(
      OutboxDeliveryConfig,
      Effect.gen(function*() {
        const explicit = yield* Config.option(Config.integer("WORKER_CREDIT_PRICE_CENTS"))
        if (explicit._tag === "Some" && explicit.value !== creditPriceCents) {
          return yield* Effect.fail(ConfigError.InvalidData(
            ["WORKER_CREDIT_PRICE_CENTS"],
            `WORKER_CREDIT_PRICE_CENTS is ${explicit.value} but the configuration file's billing.creditPriceCents is ${creditPriceCents}: an auto top-up must cost what a top-up costs; unset one of them`
          ))
        }
        return { ...(yield* OutboxDeliveryEnvConfig), creditPriceCents }
      })
    )
}

/** The wait before delivery number `attempts + 1`: doubling from the base, capped. */
export const backoffMs = (options: OutboxDeliveryOptions, attempts: number): number =>
  Math.min(options.maxBackoffMs, options.baseBackoffMs * 2 ** Math.max(0, Math.min(attempts - 1, 40)))

/** What became of one claimed message. */
export type DeliveryOutcome = "delivered" | "no_endpoint" | "retry" | "dead" | "skipped"

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : JSON.stringify(cause)

/** POSTs the signed notification; fails with a description on a network error or a non-2xx answer. */
const post = (url: string, secret: string, body: string, timeoutMs: number) =>
  Effect.gen(function*() {
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        fetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": "Tollgate-Notifications/1",
            [signatureHeader]: signNotification(secret, timestamp, body)
          },
          body,
          redirect: "manual",
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
        }),
      catch: (e) => `request failed: ${describe(e)}`
    })
    // the body is not needed; reading it lets the connection be reused
    yield* Effect.promise(() => response.arrayBuffer().catch(() => undefined))
    if (response.status < 200 || response.status >= 300) {
      return yield* Effect.fail(`receiver answered ${response.status}`)
    }
  })

/**
 * Handles one claimed message: a `balance.low` first runs the auto top-up, then every notification
 * topic is POSTed to the project's endpoint. A failure is retried with exponential backoff; after
 * `maxAttempts` deliveries the message is given up (an abandoned top-up is queued as `topup.failed`).
 */
export const deliverMessage = Effect.fn("OutboxDelivery.deliverMessage")(function*(message: OutboxMessage) {
  const outbox = yield* Outbox
  const store = yield* AutoTopUpStore
  const autoTopUp = yield* AutoTopUp
  const options = yield* OutboxDeliveryConfig
  const lastAttempt = message.attempts >= options.maxAttempts

  const retryOrGiveUp = (error: string) =>
    Effect.gen(function*() {
      if (lastAttempt) {
        yield* Effect.logError(`outbox message ${message.id} given up after ${message.attempts} attempts`, error)
        yield* outbox.complete(message.id)
        return "dead" as const
      }
      const now = yield* Clock.currentTimeMillis
      yield* outbox.retry(message.id, error, now + backoffMs(options, message.attempts))
      return "retry" as const
    })

  if (message.topic === "balance.low") {
    const topUp = yield* Effect.either(
      autoTopUp.onLowBalance(message, { creditPriceCents: options.creditPriceCents })
    )
    if (Either.isLeft(topUp)) {
      const error = `auto top-up failed: ${topUp.left._tag}: ${topUp.left.message}`
      if (!lastAttempt) return yield* retryOrGiveUp(error)
      yield* autoTopUp.abandon(message, error)
      yield* Effect.logError(`auto top-up for ${message.projectId} abandoned`, error)
    } else {
      yield* Effect.logDebug(`auto top-up for ${message.projectId}: ${topUp.right}`)
    }
  }
  if (!notificationTopics.has(message.topic)) {
    yield* outbox.complete(message.id)
    return "skipped" as const
  }
  const { endpoint } = yield* store.get(message.projectId)
  if (endpoint === undefined) {
    yield* outbox.complete(message.id)
    return "no_endpoint" as const
  }
  const body = JSON.stringify({
    id: message.id,
    type: message.topic,
    projectId: message.projectId,
    attempt: message.attempts,
    data: message.payload
  })
  const sent = yield* Effect.either(post(endpoint.url, endpoint.secret, body, options.requestTimeoutMs))
  if (Either.isLeft(sent)) return yield* retryOrGiveUp(sent.left)
  yield* outbox.complete(message.id)
  return "delivered" as const
})

/** Claims one batch of due outbox messages under a lease and handles each; their outcomes. */
export const deliverOutbox = Effect.gen(function*() {
  const outbox = yield* Outbox
  const options = yield* OutboxDeliveryConfig
  const now = yield* Clock.currentTimeMillis
  const claimed = yield* outbox.claim({ now, limit: options.batchLimit, leaseMs: options.leaseMs })
  return yield* Effect.forEach(claimed, (message) =>
    deliverMessage(message).pipe(
      // an outage mid-message: the lease brings it back
      Effect.catchAll((e) =>
        Effect.as(Effect.logWarning(`outbox message ${message.id} not handled`, e), "retry" as const)
      )
    ), { concurrency: 8 })
}).pipe(Effect.withSpan("Worker.deliverOutbox"))

/**
 * The outbox delivery loop, forked for the life of the layer. Several may run over one store: a
 * claim hands each message to one of them at a time.
 */
export const OutboxDeliveryLive: Layer.Layer<never, never, Outbox | AutoTopUpStore | AutoTopUp> = Layer
  .scopedDiscard(
    Effect.gen(function*() {
      const options = yield* OutboxDeliveryConfig
      const drain = deliverOutbox.pipe(Effect.repeat({ while: (outcomes) => outcomes.length >= options.batchLimit }))
      yield* Effect.forkScoped(everyInterval("deliver_outbox", drain, options.pollInterval))
    })
  )
