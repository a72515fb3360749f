import { assert, describe, it } from "@effect/vitest"
import { MemoryStackLive, SandboxPaymentProviderLive } from "@tollgate/adapters"
import type { BillingAction, Credits, EventId, IdempotencyKey, ProjectId } from "@tollgate/core"
import { Billing, earningsAccount, fundingAccount, Ledger, revenueAccount } from "@tollgate/core"
import { Effect, Layer } from "effect"
import { EventTranslator } from "../src/EventTranslator.js"
import { stripeTranslate } from "../src/StripeTranslate.js"
import { charge, dispute, intent, invoice, refund, session, stripeEvent } from "./stripeEvents.js"

const project = "demo-basic" as ProjectId
const topUp = { project_id: project, credits: "1000" }

const purchased = (paymentId: string, credits = 1000): BillingAction => ({
  _tag: "CreditsPurchased",
  projectId: project,
  credits: credits as Credits,
  paymentId
})

const reversed = (reversalId: string, credits: number, reason: string, paymentId?: string) => ({
  _tag: "CreditsReversed" as const,
  projectId: project,
  credits: credits as Credits,
  reversalId,
  reason,
  ...(paymentId === undefined ? {} : { paymentId })
})

/** A paid charge of 20.00 for 1000 credits, as the checkout's `payment_intent_data.metadata` marks it. */
const paidCharge = (overrides: Record<string, unknown> = {}) =>
  charge({ id: "ch_1", amount: 2000, payment_intent: "pi_1", metadata: topUp, ...overrides })

describe("stripeTranslate", () => {
  it("a paid checkout buys its metadata's credits for the client reference, keyed by its payment intent", () => {
    const completed = (fields: Record<string, unknown>) =>
      stripeTranslate(
        stripeEvent(
          "evt_cs",
          "checkout.session.completed",
          session({ client_reference_id: project, payment_intent: "pi_1", metadata: { credits: "1000" }, ...fields })
        )
      )
    assert.deepStrictEqual(completed({}), [purchased("pi_1")])
    assert.deepStrictEqual(completed({ payment_intent: { id: "pi_2", object: "payment_intent" } }), [purchased("pi_2")])
    assert.deepStrictEqual(completed({ payment_intent: null, id: "cs_1" }), [purchased("cs_1")])
    assert.deepStrictEqual(completed({ client_reference_id: null, metadata: topUp }), [purchased("pi_1")])
    // paid later (bank debits): the completion moves nothing, the async success buys
    assert.deepStrictEqual(completed({ payment_status: "unpaid" }), [])
    for (const credits of ["abc", "0", "-5", "2.5", ""]) {
      assert.deepStrictEqual(completed({ metadata: { credits } }), [], credits)
    }
    const later = session({ client_reference_id: project, payment_intent: "pi_1", metadata: { credits: "1000" } })
    assert.deepStrictEqual(
      stripeTranslate(stripeEvent("evt_a", "checkout.session.async_payment_succeeded", later)),
      [purchased("pi_1")]
    )
    assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_f", "checkout.session.async_payment_failed", later)), [])
  })

  it("a succeeded payment intent marked with a project and credits buys them under the intent's id", () => {
    assert.deepStrictEqual(
      stripeTranslate(stripeEvent("evt_pi", "payment_intent.succeeded", intent({ id: "pi_1", metadata: topUp }))),
      [purchased("pi_1")]
    )
    // a subscription's payment (no top-up metadata) buys nothing
    assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_pi2", "payment_intent.succeeded", intent({}))), [])
  })

  it("each refund reverses its share of the credits, after the purchase the charge implies", () => {
    const actions = stripeTranslate(
      stripeEvent(
        "evt_r",
        "charge.refunded",
        paidCharge({
          amount_refunded: 1500,
          refunds: {
            object: "list",
            has_more: false,
            data: [
              refund({ id: "re_2", amount: 999, charge: "ch_1" }),
              refund({ id: "re_1", amount: 501, charge: "ch_1" }),
              refund({ id: "re_x", amount: 300, charge: "ch_1", status: "failed" })
            ]
          }
        })
      )
    )
    assert.deepStrictEqual(actions, [
      purchased("pi_1"),
      reversed("refund:re_2", 499, "refund re_2 of pi_1", "pi_1"),
      reversed("refund:re_1", 250, "refund re_1 of pi_1", "pi_1")
    ])
  })

  it("the project and credits may come from the charge's expanded payment intent", () => {
    const onIntent = paidCharge({
      metadata: {},
      payment_intent: intent({ id: "pi_1", amount: 2000, metadata: topUp }),
      refunds: { object: "list", has_more: false, data: [refund({ id: "re_1", amount: 2000 })] }
    })
    assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_r", "charge.refunded", onIntent)), [
      purchased("pi_1"),
      reversed("refund:re_1", 1000, "refund re_1 of pi_1", "pi_1")
    ])
    // a charge that does not say what it bought moves nothing
    assert.deepStrictEqual(
      stripeTranslate(stripeEvent("evt_r2", "charge.refunded", paidCharge({ metadata: {}, amount_refunded: 2000 }))),
      []
    )
  })

  it("without the refund list, each event reverses the slice between the previous and the new amount refunded", () => {
    // 1001 credits for 3 payments of 10.00, 5.00 and 15.00: floors of the cumulative shares
    const slices = [[0, 1000], [1000, 1500], [1500, 3000]].map(([from, to]) =>
      stripeTranslate(
        stripeEvent(
          `evt_${to}`,
          "charge.refunded",
          paidCharge({ amount: 3000, metadata: { ...topUp, credits: "1001" }, refunds: null, amount_refunded: to }),
          { previous: { amount_refunded: from, refunded: false } }
        )
      )
    )
    assert.deepStrictEqual(
      slices.map((actions) => actions.slice(1).map((a) => [(a as any).reversalId, (a as any).credits])),
      [
        [["refund:ch_1:1000", 333]],
        [["refund:ch_1:1500", 167]],
        [["refund:ch_1:3000", 501]]
      ]
    )
  })

  it("a dispute reverses the disputed share; won, it is reinstated; lost, the reversal stands", () => {
    const disputedCharge = (type: string, status: string) =>
      stripeTranslate(
        stripeEvent(`evt_${status}`, type, dispute({ id: "dp_1", amount: 1000, status, charge: paidCharge() }))
      )
    const reversal = reversed("dispute:dp_1", 500, "dispute dp_1 of pi_1")
    assert.deepStrictEqual(disputedCharge("charge.dispute.created", "needs_response"), [purchased("pi_1"), reversal])
    assert.deepStrictEqual(disputedCharge("charge.dispute.closed", "won"), [
      purchased("pi_1"),
      reversal,
      { _tag: "CreditsReinstated", reversal }
    ])
    assert.deepStrictEqual(disputedCharge("charge.dispute.closed", "lost"), [purchased("pi_1"), reversal])
    // an unexpanded charge does not say what was bought
    assert.deepStrictEqual(
      stripeTranslate(stripeEvent("evt_d", "charge.dispute.created", dispute({ id: "dp_1", charge: "ch_1" }))),
      []
    )
    // an expanded payment intent does
    assert.deepStrictEqual(
      stripeTranslate(
        stripeEvent(
          "evt_d2",
          "charge.dispute.created",
          dispute({
            id: "dp_1",
            amount: 1000,
            charge: "ch_1",
            payment_intent: intent({ id: "pi_1", amount: 2000, metadata: topUp })
          })
        )
      ),
      [purchased("pi_1"), reversal]
    )
  })

  it("a paid subscription invoice renews the allowance until its period's end", () => {
    const line = (end: number, metadata: Record<string, string> = {}) => ({
      object: "line_item",
      metadata,
      period: { start: end - 2_592_000, end }
    })
    const renewed = {
      _tag: "AllowanceRenewed" as const,
      projectId: project,
      credits: 5000 as Credits,
      periodEnd: 1_724_632_454_000,
      invoiceId: "in_1"
    }
    const paid = (fields: Record<string, unknown>) =>
      stripeTranslate(stripeEvent("evt_in", "invoice.paid", invoice({ id: "in_1", ...fields })))
    const lines = { object: "list", has_more: false, data: [line(1_724_632_454)] }
    assert.deepStrictEqual(
      paid({
        lines,
        parent: {
          type: "subscription_details",
          subscription_details: { subscription: "sub_1", metadata: { project_id: project, allowance_credits: "5000" } }
        }
      }),
      [renewed]
    )
    assert.deepStrictEqual(
      paid({
        subscription: "sub_1",
        parent: null,
        lines: { ...lines, data: [line(1_724_632_454, { project_id: project, allowance_credits: "5000" })] }
      }),
      [renewed]
    )
    // a one-off invoice, or one that does not name the allowance, grants nothing
    assert.deepStrictEqual(
      paid({
        billing_reason: "manual",
        parent: null,
        lines,
        metadata: { project_id: project, allowance_credits: "5000" }
      }),
      []
    )
    assert.deepStrictEqual(paid({ subscription: "sub_1", lines }), [])
  })

  it.effect("other events are acknowledged and move nothing; the Stripe translator reads others' events as neutral", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_x", "customer.created", { object: "customer" })), [])
      assert.deepStrictEqual(stripeTranslate(stripeEvent("evt_p", "plan.created", { object: "plan" })), [])
      const { translate } = yield* EventTranslator
      const action = purchased("pi_n")
      const neutral = {
        id: "evt_n" as EventId,
        provider: "sandbox" as const,
        type: "x",
        createdAt: 0,
        payload: { action }
      }
      assert.deepStrictEqual(translate(neutral), [action])
      assert.deepStrictEqual(translate({ ...neutral, provider: "stripe" }), [])
    }).pipe(Effect.provide(EventTranslator.Stripe.pipe(Layer.provide(SandboxPaymentProviderLive)))))
})

/** Every port in memory plus the billing use case, fresh per test. */
const StackLive = Billing.Default.pipe(Layer.provideMerge(MemoryStackLive))

const apply = (...events: ReadonlyArray<ReturnType<typeof stripeEvent>>) =>
  Effect.flatMap(Billing, (billing) => Effect.forEach(events, (e) => billing.applyBillingEvent(e, stripeTranslate)))

const wallet = Effect.map(Effect.flatMap(Ledger, (ledger) => ledger.balance(project)), (b) => b.balance)

const disputeEvent = (id: string, type: string, status: string) =>
  stripeEvent(id, type, dispute({ id: "dp_1", amount: 2000, status, charge: paidCharge() }))

const checkoutEvent = stripeEvent(
  "evt_cs",
  "checkout.session.completed",
  session({ client_reference_id: project, payment_intent: "pi_1", metadata: { credits: "1000" } })
)

describe("Stripe events in the ledger", () => {
  it.effect("a checkout and its intent's success grant once; re-processing an event (a crash before done) is harmless", () =>
    Effect.gen(function*() {
      const billing = yield* Billing
      const intentEvent = stripeEvent("evt_pi", "payment_intent.succeeded", intent({ id: "pi_1", metadata: topUp }))
      assert.deepStrictEqual(yield* apply(checkoutEvent, intentEvent, checkoutEvent), [
        "applied",
        "applied",
        "duplicate"
      ])
      const refunded = stripeEvent(
        "evt_r",
        "charge.refunded",
        paidCharge({ refunds: { object: "list", has_more: false, data: [refund({ id: "re_1", amount: 500 })] } })
      )
      yield* apply(refunded)
      // replays by workers whose leases have ended
      yield* billing.process({ ...refunded, leaseToken: "ended" }, stripeTranslate)
      yield* billing.process({ ...intentEvent, leaseToken: "ended" }, stripeTranslate)
      assert.strictEqual(yield* wallet, 750)
      assert.strictEqual(yield* (yield* Ledger).accountBalance(fundingAccount), -750n)
    }).pipe(Effect.provide(StackLive)))

  it.effect("a won dispute gives back exactly what its reversal took, even when credit had been spent", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      yield* apply(checkoutEvent)
      // 700 of the 1000 credits spent
      yield* ledger.withdraw({
        idempotencyKey: "spent" as IdempotencyKey,
        projectId: project,
        amount: 700 as Credits,
        to: revenueAccount,
        reason: "calls"
      })
      yield* apply(disputeEvent("evt_dc", "charge.dispute.created", "needs_response"))
      assert.strictEqual(yield* wallet, 0)
      yield* apply(disputeEvent("evt_dw", "charge.dispute.closed", "won"))
      assert.strictEqual(yield* wallet, 300)
      // the closing event again, under a new id: nothing more
      yield* apply(disputeEvent("evt_dw2", "charge.dispute.closed", "won"))
      assert.strictEqual(yield* wallet, 300)
      assert.strictEqual(yield* ledger.accountBalance(fundingAccount), -1000n)
    }).pipe(Effect.provide(StackLive)))

  it.effect("a dispute's events before the purchase's: the purchase, the reversal and the reinstatement each apply once", () =>
    Effect.gen(function*() {
      yield* apply(disputeEvent("evt_dw", "charge.dispute.closed", "won"))
      assert.strictEqual(yield* wallet, 1000)
      yield* apply(disputeEvent("evt_dc", "charge.dispute.created", "needs_response"), checkoutEvent)
      assert.strictEqual(yield* wallet, 1000)
      const { transactions } = yield* (yield* Ledger).history(project, { limit: 100 })
      assert.deepStrictEqual(transactions.map((t) => t.idempotencyKey).sort(), [
        "purchase:pi_1",
        "reinstate:dispute:dp_1",
        "reversal:dispute:dp_1"
      ])
    }).pipe(Effect.provide(StackLive)))

  it.effect("a refund before its purchase takes its share once the purchase is in, whatever the order", () =>
    Effect.gen(function*() {
      const refunded = stripeEvent(
        "evt_r",
        "charge.refunded",
        paidCharge({ refunds: { object: "list", has_more: false, data: [refund({ id: "re_1", amount: 1000 })] } })
      )
      assert.deepStrictEqual(yield* apply(refunded, checkoutEvent), ["applied", "applied"])
      assert.strictEqual(yield* wallet, 500)
    }).pipe(Effect.provide(StackLive)))

  it.effect("a refund of credit already spent reclaims the shares its calls paid; a dispute only holds credit back", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const contributor = earningsAccount("prj_maps" as ProjectId)
      yield* apply(checkoutEvent)
      // 800 of the 1000 credits spent on calls: a quarter to the dataset's contributor
      const held = yield* ledger.hold({
        idempotencyKey: "call" as IdempotencyKey,
        projectId: project,
        amount: 800 as Credits,
        expiresAt: 3_600_000
      })
      yield* ledger.capture({
        idempotencyKey: "call:capture" as IdempotencyKey,
        holdId: held.hold.id,
        amount: 800 as Credits,
        payees: [
          { account: contributor, amount: 200 as Credits },
          { account: revenueAccount, amount: 600 as Credits }
        ]
      })
      // half the payment refunded: 200 from the wallet, then 300 of the 800 spent, in proportion
      const half = (id: string, amount: number) =>
        stripeEvent(
          id,
          "charge.refunded",
          paidCharge({ refunds: { object: "list", has_more: false, data: [refund({ id: `re_${id}`, amount })] } })
        )
      yield* apply(half("a", 1000))
      assert.strictEqual(yield* wallet, 0)
      assert.deepStrictEqual(
        [yield* ledger.accountBalance(contributor), yield* ledger.accountBalance(revenueAccount)],
        [200n - 75n, 600n - 225n]
      )
      // a dispute of the rest finds nothing in the wallet and reclaims nothing
      yield* apply(disputeEvent("evt_dc", "charge.dispute.created", "needs_response"))
      assert.strictEqual(yield* ledger.accountBalance(contributor), 125n)
      // the other half refunded: everything spent is reclaimed
      yield* apply(half("b", 1000))
      assert.deepStrictEqual(
        [yield* ledger.accountBalance(contributor), yield* ledger.accountBalance(revenueAccount)],
        [0n, 0n]
      )
      assert.strictEqual(yield* ledger.accountBalance(fundingAccount), 0n)
    }).pipe(Effect.provide(StackLive)))
})
