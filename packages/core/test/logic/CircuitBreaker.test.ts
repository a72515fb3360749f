import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker } from "@tollgate/core"
import { FastCheck as fc } from "effect"

const options = { failureThreshold: 3, cooldownMs: 1_000 }

describe("CircuitBreaker", () => {
  it("opens after the threshold of consecutive failures and refuses until the cooldown ends", () => {
    let s = CircuitBreaker.closed
    for (let i = 0; i < 2; i++) s = CircuitBreaker.record(s, options, false, 0)
    assert.strictEqual(s._tag, "closed")
    s = CircuitBreaker.record(s, options, false, 10)
    assert.deepStrictEqual(s, { _tag: "open", openedAt: 10 })
    const refused = CircuitBreaker.admit(s, options, 500)
    assert.isFalse(refused.admitted)
    assert.strictEqual(!refused.admitted && refused.retryAfterMs, 510)
  })

  it("a success resets the failure count", () => {
    let s = CircuitBreaker.record(CircuitBreaker.closed, options, false, 0)
    s = CircuitBreaker.record(s, options, false, 0)
    s = CircuitBreaker.record(s, options, true, 0)
    s = CircuitBreaker.record(s, options, false, 0)
    assert.deepStrictEqual(s, { _tag: "closed", failures: 1 })
  })

  it("after the cooldown lets exactly one trial through; its outcome closes or reopens", () => {
    const open = CircuitBreaker.record(
      CircuitBreaker.record(CircuitBreaker.record(CircuitBreaker.closed, options, false, 0), options, false, 0),
      options,
      false,
      0
    )
    const trial = CircuitBreaker.admit(open, options, 1_000)
    assert.isTrue(trial.admitted)
    assert.isFalse(CircuitBreaker.admit(trial.state, options, 1_001).admitted)
    assert.deepStrictEqual(CircuitBreaker.record(trial.state, options, true, 1_002), CircuitBreaker.closed)
    assert.deepStrictEqual(CircuitBreaker.record(trial.state, options, false, 1_002), {
      _tag: "open",
      openedAt: 1_002
    })
  })

  it.prop(
    "never admits a call while open before the cooldown, and never opens on fewer consecutive failures than the threshold",
    [fc.array(fc.record({ ok: fc.boolean(), dt: fc.integer({ min: 0, max: 600 }) }), { maxLength: 200 })],
    ([steps]) => {
      let s = CircuitBreaker.closed
      let now = 0
      let streak = 0
      for (const step of steps) {
        now += step.dt
        const a = CircuitBreaker.admit(s, options, now)
        if (s._tag === "open" && now < s.openedAt + options.cooldownMs) assert.isFalse(a.admitted)
        s = a.state
        if (!a.admitted) continue
        const wasClosed = s._tag === "closed"
        s = CircuitBreaker.record(s, options, step.ok, now)
        streak = step.ok ? 0 : streak + 1
        if (wasClosed && s._tag === "open") assert.isAtLeast(streak, options.failureThreshold)
      }
    },
    { fastCheck: { numRuns: 1_000 } }
  )
})
