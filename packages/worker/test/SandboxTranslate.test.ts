import { assert, describe, it } from "@effect/vitest"
import type { EventId, IncomingEvent, ProjectId } from "@tollgate/core"
import { sandboxTranslate } from "../src/SandboxTranslate.js"
import { checkoutCompleted } from "./support.js"

describe("sandboxTranslate", () => {
  it("a paid checkout buys its metadata's credits for the client reference, keyed by the payment", () => {
    assert.deepStrictEqual(sandboxTranslate(checkoutCompleted("evt_1", {})), [
      {
        _tag: "CreditsPurchased" as const,
        projectId: "demo-basic" as ProjectId,
        credits: 500 as any,
        paymentId: "sbx_pi_1"
      }
    ])
  })

  it("without a payment intent the session's id keys the purchase; numeric credits are read too", () => {
    const actions = sandboxTranslate(checkoutCompleted("evt_2", { payment_intent: null, metadata: { credits: 7 } }))
    assert.deepStrictEqual(actions.map((a) => [a._tag, (a as any).paymentId, (a as any).credits]), [
      ["CreditsPurchased", "sbx_cs_1", 7]
    ])
  })

  it("an unpaid checkout, bad credits or a Stripe event move nothing", () => {
    assert.deepStrictEqual(sandboxTranslate(checkoutCompleted("evt_3", { payment_status: "unpaid" })), [])
    for (const credits of ["abc", "0", "-5", "2.5", ""]) {
      assert.deepStrictEqual(sandboxTranslate(checkoutCompleted("evt_4", { metadata: { credits } })), [], credits)
    }
    assert.deepStrictEqual(sandboxTranslate(checkoutCompleted("evt_5", {}, "stripe")), [])
  })

  it("other events are read as neutral actions", () => {
    const action = {
      _tag: "CreditsReversed",
      projectId: "demo-basic",
      credits: 5,
      reversalId: "re_1",
      reason: "refund"
    }
    const event: IncomingEvent = {
      id: "evt_6" as EventId,
      provider: "sandbox",
      type: "CreditsReversed",
      createdAt: 0,
      payload: { action }
    }
    assert.deepStrictEqual(sandboxTranslate(event), [action as any])
    assert.deepStrictEqual(sandboxTranslate({ ...event, payload: { object: "customer" } }), [])
  })
})
