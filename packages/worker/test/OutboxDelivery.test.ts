import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive, SandboxPaymentControl, sandboxPaymentProviderLayer } from "@tollgate/adapters"
import type { Credits, MessageId, ProjectId } from "@tollgate/core"
import { AutoTopUp, AutoTopUpStore, Outbox } from "@tollgate/core"
import { Duration, Effect, Layer, Logger, LogLevel, Schedule, TestClock } from "effect"
import { createHmac } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { AutoTopUpWorkerLive } from "../src/AutoTopUpLoop.js"
import {
  backoffMs,
  defaultOutboxDeliveryOptions,
  deliverOutbox,
  OutboxDeliveryConfig,
  signatureHeader,
  signNotification,
  verifyNotification
} from "../src/OutboxDelivery.js"

const SECRET = "whsec_test_endpoint_secret"

interface Received {
  readonly body: string
  readonly signature: string
  readonly contentType: string
}

/** A notification receiver on 127.0.0.1, answering each request with the next of `statuses` (then the last). */
const receiver = (statuses: ReadonlyArray<number>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly received: Array<Received>; readonly close: () => void }>(
      (resume) => {
        const received: Array<Received> = []
        const server = createServer((request, response) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            received.push({
              body: Buffer.concat(chunks).toString("utf8"),
              signature: String(request.headers[signatureHeader.toLowerCase()] ?? ""),
              contentType: String(request.headers["content-type"] ?? "")
            })
            response.statusCode = statuses[Math.min(received.length, statuses.length) - 1] ?? 200
            response.end("ok")
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo
          resume(Effect.succeed({ url: `http://127.0.0.1:${port}/hooks`, received, close: () => server.close() }))
        })
      }
    ),
    (r) => Effect.sync(r.close)
  )

const stack = AutoTopUp.Default.pipe(
  Layer.provideMerge(Layer.merge(MemoryStackLive, sandboxPaymentProviderLayer({ baseUrl: "http://checkout.test" })))
)

const options = { maxAttempts: 4, baseBackoffMs: 1_000, maxBackoffMs: 60_000, requestTimeoutMs: 5_000 }

/** The message's state: due now? (claims with a 1 ms lease so a peek does not hold it). */
const dueAt = (now: number) => Effect.flatMap(Outbox, (outbox) => outbox.claim({ now, limit: 10, leaseMs: 1 }))

describe("outbox delivery", () => {
  it("signs as Stripe does: t=<unix>,v1=<hex HMAC-SHA256 of t.body>", () => {
    const body = "{\"a\":1}"
    const expected = createHmac("sha256", SECRET).update(`1700000000.${body}`).digest("hex")
    assert.strictEqual(signNotification(SECRET, 1_700_000_000, body), `t=1700000000,v1=${expected}`)
    assert.isTrue(verifyNotification(SECRET, `t=1700000000,v1=${expected}`, body))
    assert.isFalse(verifyNotification(SECRET, `t=1700000000,v1=${expected}`, "{\"a\":2}"))
    assert.isFalse(verifyNotification("other", `t=1700000000,v1=${expected}`, body))
  })

  it("backs off exponentially up to the cap", () => {
    const o = { ...defaultOutboxDeliveryOptions, ...options }
    assert.deepStrictEqual([1, 2, 3, 4, 7, 8, 50].map((n) => backoffMs(o, n)), [
      1_000,
      2_000,
      4_000,
      8_000,
      60_000,
      60_000,
      60_000
    ])
  })

  it.scoped("a low balance with auto top-up on: charges, then POSTs a signed balance.low to the endpoint", () =>
    Effect.gen(function*() {
      const r = yield* receiver([200])
      const store = yield* AutoTopUpStore
      const outbox = yield* Outbox
      const control = yield* SandboxPaymentControl
      const p = "prj_notify_1" as ProjectId
      yield* store.setEndpoint(p, { url: r.url, secret: SECRET })
      yield* store.configure(p, {
        enabled: true,
        thresholdCredits: 100 as Credits,
        amountCredits: 700 as Credits,
        monthlyCapCredits: 10_000 as Credits
      })
      yield* TestClock.setTime(Date.UTC(2026, 5, 1, 12))
      yield* outbox.enqueue({
        id: "low_balance:prj_notify_1:2026-06-01" as MessageId,
        projectId: p,
        topic: "balance.low",
        payload: { projectId: p, available: 3, threshold: 100 },
        availableAt: 0
      })
      assert.deepStrictEqual(yield* deliverOutbox, ["delivered"])
      assert.strictEqual(r.received.length, 1)
      const [got] = r.received
      assert.isTrue(verifyNotification(SECRET, got!.signature, got!.body))
      const [t, v1] = got!.signature.split(",")
      assert.strictEqual(t, `t=${Date.UTC(2026, 5, 1, 12) / 1000}`)
      assert.strictEqual(
        v1,
        `v1=${createHmac("sha256", SECRET).update(`${t!.slice(2)}.${got!.body}`).digest("hex")}`
      )
      assert.strictEqual(got!.contentType, "application/json")
      const body = JSON.parse(got!.body)
      assert.strictEqual(body.type, "balance.low")
      assert.deepStrictEqual(body.data, { projectId: p, available: 3, threshold: 100 })
      assert.deepStrictEqual((yield* control.charges()).map((c) => c.credits), [700])
      assert.deepStrictEqual(yield* dueAt(Number.MAX_SAFE_INTEGER), [])
    }).pipe(Effect.provide(Layer.merge(stack, OutboxDeliveryConfig.layer(options)))))

  it.scoped("a card that needs its customer: the endpoint receives topup.required with the Checkout link", () =>
    Effect.gen(function*() {
      const r = yield* receiver([200])
      const store = yield* AutoTopUpStore
      const outbox = yield* Outbox
      const control = yield* SandboxPaymentControl
      const p = "prj_notify_2" as ProjectId
      yield* store.setEndpoint(p, { url: r.url, secret: SECRET })
      yield* store.configure(p, {
        enabled: true,
        thresholdCredits: 100 as Credits,
        amountCredits: 700 as Credits,
        monthlyCapCredits: 10_000 as Credits
      })
      yield* control.requireCustomerFor(p)
      yield* outbox.enqueue({
        id: "low_balance:prj_notify_2:x" as MessageId,
        projectId: p,
        topic: "balance.low",
        payload: { projectId: p, available: 3, threshold: 100 },
        availableAt: 0
      })
      assert.deepStrictEqual(yield* deliverOutbox, ["delivered"])
      assert.deepStrictEqual(yield* deliverOutbox, ["delivered"])
      const bodies = r.received.map((x) => JSON.parse(x.body))
      assert.deepStrictEqual(bodies.map((b) => b.type), ["balance.low", "topup.required"])
      assert.isTrue(r.received.every((x) => verifyNotification(SECRET, x.signature, x.body)))
      const [session] = yield* control.sessions()
      assert.strictEqual(bodies[1].data.checkoutUrl, session!.url)
      assert.match(bodies[1].data.checkoutUrl, /^http:\/\/checkout\.test\/sandbox\/checkout\//)
    }).pipe(Effect.provide(Layer.merge(stack, OutboxDeliveryConfig.layer(options)))))

  it.scoped("500s are retried with exponential backoff and given up after the attempt cap", () =>
    Effect.gen(function*() {
      const r = yield* receiver([500])
      const store = yield* AutoTopUpStore
      const outbox = yield* Outbox
      const p = "prj_notify_3" as ProjectId
      yield* store.setEndpoint(p, { url: r.url, secret: SECRET })
      yield* outbox.enqueue({
        id: "topup_failed:prj_notify_3:1" as MessageId,
        projectId: p,
        topic: "topup.failed",
        payload: { projectId: p },
        availableAt: 0
      })
      const outcomes: Array<ReadonlyArray<string>> = []
      outcomes.push(yield* deliverOutbox)
      // each retry waits twice as long as the one before: nothing is due a moment early
      for (const wait of [1_000, 2_000, 4_000]) {
        yield* TestClock.adjust(wait - 1)
        assert.deepStrictEqual(yield* deliverOutbox, [])
        yield* TestClock.adjust(1)
        outcomes.push(yield* deliverOutbox)
      }
      assert.deepStrictEqual(outcomes, [["retry"], ["retry"], ["retry"], ["dead"]])
      assert.strictEqual(r.received.length, 4)
      assert.isTrue(r.received.every((x) => verifyNotification(SECRET, x.signature, x.body)))
      yield* TestClock.adjust("1 day")
      assert.deepStrictEqual(yield* deliverOutbox, [])
    }).pipe(
      Effect.provide(Layer.merge(stack, OutboxDeliveryConfig.layer(options))),
      Logger.withMinimumLogLevel(LogLevel.None)
    ))

  it.scoped("no endpoint configured: completed without delivery; a failing receiver recovers on retry", () =>
    Effect.gen(function*() {
      const r = yield* receiver([503, 200])
      const store = yield* AutoTopUpStore
      const outbox = yield* Outbox
      const quiet = "prj_notify_4" as ProjectId
      const loud = "prj_notify_5" as ProjectId
      yield* store.setEndpoint(loud, { url: r.url, secret: SECRET })
      for (const p of [quiet, loud]) {
        yield* outbox.enqueue({
          id: `balance_low:${p}` as MessageId,
          projectId: p,
          topic: "balance.low",
          payload: { projectId: p },
          availableAt: 0
        })
      }
      assert.sameMembers([...(yield* deliverOutbox)], ["no_endpoint", "retry"])
      yield* TestClock.adjust(1_000)
      assert.deepStrictEqual(yield* deliverOutbox, ["delivered"])
      assert.strictEqual(r.received.length, 2)
      assert.strictEqual(r.received[0]!.body, r.received[1]!.body.replace("\"attempt\":2", "\"attempt\":1"))
    }).pipe(
      Effect.provide(Layer.merge(stack, OutboxDeliveryConfig.layer(options))),
      Logger.withMinimumLogLevel(LogLevel.None)
    ))

  it.live("the running layer delivers what is enqueued while it runs", () =>
    Effect.gen(function*() {
      const r = yield* receiver([200])
      const store = yield* AutoTopUpStore
      const outbox = yield* Outbox
      const p = "prj_notify_6" as ProjectId
      yield* store.setEndpoint(p, { url: r.url, secret: SECRET })
      yield* Effect.gen(function*() {
        yield* outbox.enqueue({
          id: "topup_required:prj_notify_6:1" as MessageId,
          projectId: p,
          topic: "topup.required",
          payload: { checkoutUrl: "http://checkout.test/sandbox/checkout/x" },
          availableAt: 0
        })
        yield* Effect.sync(() => r.received.length).pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n > 0 }),
          Effect.timeout("5 seconds")
        )
      }).pipe(
        Effect.provide(
          AutoTopUpWorkerLive.pipe(
            Layer.provide(OutboxDeliveryConfig.layer({ ...options, pollInterval: Duration.millis(20) }))
          )
        )
      )
      assert.strictEqual(r.received.length, 1)
      assert.isTrue(verifyNotification(SECRET, r.received[0]!.signature, r.received[0]!.body))
      assert.strictEqual(JSON.parse(r.received[0]!.body).type, "topup.required")
    }).pipe(Effect.scoped, Effect.provide(stack)))
})
