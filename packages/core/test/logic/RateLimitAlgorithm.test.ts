import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { RateLimitPolicy } from "../../src/domain/RateLimitPolicy.js"
import { decide, type LimitCheck, retryAfterMs, roll, type WindowState } from "../../src/logic/RateLimitAlgorithm.js"

const MAX_WINDOW = 31 * 24 * 3_600_000
const runs = { fastCheck: { numRuns: 1000 } }

const policy = (limit: number, windowMs: number, shadow = false, name = "p") =>
  RateLimitPolicy.make({ name, scope: "key", limit, windowMs, shadow })

const check = (p: RateLimitPolicy, cost: number, state?: WindowState): LimitCheck => ({ policy: p, cost, state })

const windowAt = (now: number, windowMs: number) => Number(BigInt(now) / BigInt(windowMs))

/** Counts in the windows the stored state covers, ignoring how it was stored. */
const counts = (s: WindowState) => ({ current: s.current, previous: s.previous })

// Small values explore many window crossings; large ones the BigInt range (products up to ~2^61).
const scale = fc.oneof(
  fc.constant({ limit: 20, windowMs: 50, now: 10_000 }),
  fc.constant({ limit: 1_000_000_000, windowMs: MAX_WINDOW, now: 4_000_000_000_000 })
)

interface Spec {
  readonly limit: number
  readonly windowMs: number
  readonly shadow: boolean
  readonly cost: number
  /** How many windows before now the state was stored; undefined: nothing stored. */
  readonly state: { readonly back: number; readonly current: number; readonly previous: number } | undefined
}

const specArb = (max: { limit: number; windowMs: number }, shadow: fc.Arbitrary<boolean>): fc.Arbitrary<Spec> =>
  fc.record({ limit: fc.integer({ min: 1, max: max.limit }), windowMs: fc.integer({ min: 1, max: max.windowMs }) })
    .chain(
      ({ limit, windowMs }) =>
        fc.record({
          limit: fc.constant(limit),
          windowMs: fc.constant(windowMs),
          shadow,
          cost: fc.oneof(fc.integer({ min: 0, max: limit }), fc.integer({ min: 0, max: limit + 2 })),
          state: fc.option(
            fc.record({
              back: fc.integer({ min: 0, max: 3 }),
              current: fc.integer({ min: 0, max: 2 * limit }),
              previous: fc.integer({ min: 0, max: 2 * limit })
            }),
            { nil: undefined }
          )
        })
    )

const toCheck = (spec: Spec, now: number): LimitCheck =>
  check(
    policy(spec.limit, spec.windowMs, spec.shadow),
    spec.cost,
    spec.state && {
      window: windowAt(now, spec.windowMs) - spec.state.back,
      current: spec.state.current,
      previous: spec.state.previous
    }
  )

const oneLimit = (shadow: fc.Arbitrary<boolean>) =>
  scale.chain((max) => fc.tuple(specArb(max, shadow), fc.integer({ min: 0, max: max.now })))

const manyLimits = scale.chain((max) =>
  fc.tuple(fc.array(specArb(max, fc.boolean()), { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: max.now }))
)

const restate = (checks: ReadonlyArray<LimitCheck>, states: ReadonlyArray<WindowState>): Array<LimitCheck> =>
  checks.map((c, i) => ({ ...c, state: states[i] }))

describe("RateLimitAlgorithm", () => {
  describe("roll", () => {
    it("keeps the current window, shifts the previous one and forgets older ones", () => {
      const s = { window: 3, current: 5, previous: 2 }
      assert.strictEqual(roll(s, 100, 399), s)
      assert.deepStrictEqual(roll(s, 100, 400), { window: 4, current: 0, previous: 5 })
      assert.deepStrictEqual(roll(s, 100, 500), { window: 5, current: 0, previous: 0 })
      assert.deepStrictEqual(roll(undefined, 100, 250), { window: 2, current: 0, previous: 0 })
    })

    it.prop("aligns windows exactly, even near 2^53", [
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 1, max: MAX_WINDOW })
    ], ([now, windowMs]) => {
      assert.strictEqual(roll(undefined, windowMs, now).window, windowAt(now, windowMs))
    }, runs)
  })

  describe("decide", () => {
    it("weighs the previous window by the time left in the current one", () => {
      const p = policy(10, 1000)
      const state = { window: 1, current: 0, previous: 10 }
      // At 1500 half of the previous window still counts: 5 of 10 are left.
      const ok = decide([check(p, 5, state)], 1500)
      assert.isTrue(ok.allowed)
      assert.deepStrictEqual(ok.states, [{ window: 1, current: 5, previous: 10 }])
      assert.deepStrictEqual(ok.outcomes[0], {
        name: "p",
        limit: 10,
        windowMs: 1000,
        shadow: false,
        exceeded: false,
        remaining: 0,
        resetMs: 500,
        retryAfterMs: undefined,
        impossible: false
      })
      const no = decide([check(p, 6, state)], 1500)
      assert.isFalse(no.allowed)
      assert.deepStrictEqual(no.states, [state])
      assert.strictEqual(no.outcomes[0]?.retryAfterMs, 100)
      assert.strictEqual(retryAfterMs(no), 100)
      assert.isTrue(decide([check(p, 6, state)], 1600).allowed)
      assert.isFalse(decide([check(p, 6, state)], 1599).allowed)
    })

    it("reports remaining after counting the request", () => {
      const d = decide([check(policy(10, 1000), 3, { window: 0, current: 2, previous: 0 })], 100)
      assert.strictEqual(d.outcomes[0]?.remaining, 5)
      assert.strictEqual(d.outcomes[0]?.resetMs, 900)
    })

    it("waits into the next window when the current one is full", () => {
      const p = policy(10, 1000)
      const state = { window: 1, current: 8, previous: 0 }
      const d = decide([check(p, 5, state)], 1200)
      // 800 ms to the boundary, then 8 * (1000 - e) + 5000 <= 10000 needs e >= 375.
      assert.strictEqual(d.outcomes[0]?.retryAfterMs, 1175)
      assert.isTrue(decide([check(p, 5, state)], 2375).allowed)
      assert.isFalse(decide([check(p, 5, state)], 2374).allowed)
    })

    it("marks a cost above the limit as impossible", () => {
      const d = decide([check(policy(10, 1000), 11, undefined)], 0)
      assert.isFalse(d.allowed)
      assert.isTrue(d.outcomes[0]?.exceeded)
      assert.isTrue(d.outcomes[0]?.impossible)
      assert.isUndefined(d.outcomes[0]?.retryAfterMs)
      assert.isUndefined(retryAfterMs(d))
    })

    it("allows a request with no limits", () => {
      assert.deepStrictEqual(decide([], 123), { allowed: true, outcomes: [], states: [] })
    })

    it("rejects all or nothing across limits", () => {
      const perKey = check(policy(100, 1000, false, "key"), 1, { window: 0, current: 10, previous: 0 })
      const perProject = check(policy(10, 1000, false, "project"), 1, { window: 0, current: 10, previous: 0 })
      const d = decide([perKey, perProject], 500)
      assert.isFalse(d.allowed)
      assert.deepStrictEqual(d.outcomes.map((o) => o.exceeded), [false, true])
      assert.deepStrictEqual(d.states, [perKey.state!, perProject.state!])
    })

    it("counts a shadow limit without enforcing it, up to twice its limit", () => {
      const shadow = policy(2, 1000, true, "shadow")
      let state: WindowState | undefined
      for (let i = 0; i < 5; i++) {
        const d = decide([check(shadow, 1, state)], 10)
        assert.isTrue(d.allowed)
        assert.strictEqual(d.outcomes[0]?.exceeded, i >= 2)
        state = d.states[0]
      }
      assert.deepStrictEqual(state, { window: 0, current: 4, previous: 0 })
    })

    it("keeps the counters when a policy's limit changes", () => {
      const state = { window: 0, current: 10, previous: 0 }
      assert.isFalse(decide([check(policy(10, 1000), 1, state)], 0).allowed)
      const raised = decide([check(policy(15, 1000), 5, state)], 0)
      assert.isTrue(raised.allowed)
      assert.deepStrictEqual(raised.states, [{ window: 0, current: 15, previous: 0 }])
      assert.isFalse(decide([check(policy(15, 1000), 1, raised.states[0])], 0).allowed)
      // Lowered below what was already counted: nothing more until the window slides.
      const lowered = decide([check(policy(5, 1000), 0, state)], 999)
      assert.isTrue(lowered.outcomes[0]?.exceeded)
      assert.strictEqual(lowered.outcomes[0]?.remaining, 0)
    })

    it("compares exactly where the products exceed 2^53", () => {
      const W = MAX_WINDOW
      const p = policy(1_000_000_000, W)
      // 666666666 * (W / 2) + (1e9 - 333333333) * W === 1e9 * W: the boundary admits.
      const state = { window: 1, current: 1_000_000_000 - 333_333_333 - 7, previous: 666_666_666 }
      const now = W + W / 2
      assert.isTrue(decide([check(p, 7, state)], now).allowed)
      const over = decide([check(p, 8, state)], now)
      assert.isFalse(over.allowed)
      // One unit over: the carried weight must shrink by W, at 666666666 per ms.
      assert.strictEqual(over.outcomes[0]?.retryAfterMs, Math.ceil(W / 666_666_666))
    })
  })

  describe("properties", () => {
    it.prop(
      "admits what a model of the admitted history admits, and never more than the limit per aligned window",
      [
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 100 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(
          fc.record({
            dt: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 300 })),
            cost: fc.integer({ min: 0, max: 22 })
          }),
          { maxLength: 80 }
        )
      ],
      ([limit, windowMs, shadow, start, requests]) => {
        const p = policy(limit, windowMs, shadow)
        const admitted = new Map<number, number>()
        // What the limiter should have stored: a shadow limit's counts are capped.
        const stored = (w: number) => shadow ? Math.min(admitted.get(w) ?? 0, 2 * limit) : admitted.get(w) ?? 0
        let state: WindowState | undefined
        let now = start
        for (const { cost, dt } of requests) {
          now += dt
          const w = windowAt(now, windowMs)
          const e = now - w * windowMs
          const modelAdmits = stored(w - 1) * (windowMs - e) + (stored(w) + cost) * windowMs <= limit * windowMs
          const d = decide([check(p, cost, state)], now)
          assert.strictEqual(d.outcomes[0]?.exceeded, !modelAdmits)
          assert.strictEqual(d.allowed, shadow || modelAdmits)
          if (d.allowed) admitted.set(w, (admitted.get(w) ?? 0) + cost)
          state = d.states[0]!
          assert.deepStrictEqual(state, { window: w, current: stored(w), previous: stored(w - 1) })
        }
        if (!shadow) { for (const total of admitted.values()) assert.isAtMost(total, limit) }
      },
      runs
    )

    it.prop("a rejection by one enforced limit changes no count", [
      manyLimits,
      fc.nat(),
      fc.integer({ min: 1, max: 3 })
    ], ([[specs, now], at, cost]) => {
      const checks = specs.map((s) => toCheck(s, now))
      const blocker = check(policy(5, 1000, false, "blocker"), cost, {
        window: windowAt(now, 1000),
        current: 5,
        previous: 0
      })
      const index = at % (checks.length + 1)
      checks.splice(index, 0, blocker)
      const d = decide(checks, now)
      assert.isFalse(d.allowed)
      assert.isTrue(d.outcomes[index]?.exceeded)
      checks.forEach((c, i) => {
        assert.deepStrictEqual(counts(d.states[i]!), counts(roll(c.state, c.policy.windowMs, now)))
        assert.strictEqual(d.states[i]?.window, windowAt(now, c.policy.windowMs))
      })
    }, runs)

    it.prop("shadow limits never reject but are counted", [manyLimits], ([[specs, now]]) => {
      const checks = specs.map((s) => toCheck(s, now))
      const d = decide(checks, now)
      const enforced = checks.filter((c) => !c.policy.shadow)
      assert.strictEqual(d.allowed, decide(enforced, now).allowed)
      assert.strictEqual(d.allowed, d.outcomes.every((o) => o.shadow || !o.exceeded))
      checks.forEach((c, i) => {
        const rolled = roll(c.state, c.policy.windowMs, now)
        const added = d.allowed ? rolled.current + c.cost : rolled.current
        const expected = c.policy.shadow && d.allowed ? Math.min(added, 2 * c.policy.limit) : added
        assert.strictEqual(d.states[i]?.current, expected)
        assert.strictEqual(d.states[i]?.previous, rolled.previous)
        // Whether a limit is exceeded does not depend on it being enforced.
        const alone = decide([{ ...c, policy: policy(c.policy.limit, c.policy.windowMs, false) }], now)
        assert.strictEqual(d.outcomes[i]?.exceeded, !alone.allowed)
      })
    }, runs)

    it.prop("retryAfterMs is the exact wait for one limit", [oneLimit(fc.constant(false))], ([[spec, now]]) => {
      const c = toCheck(spec, now)
      const d = decide([c], now)
      const o = d.outcomes[0]!
      assert.strictEqual(o.impossible, spec.cost > spec.limit)
      if (!o.exceeded || o.impossible) {
        assert.isUndefined(o.retryAfterMs)
        return
      }
      const wait = o.retryAfterMs!
      assert.isAtLeast(wait, 1)
      assert.isAtMost(wait, 2 * spec.windowMs)
      for (const state of [c.state, d.states[0]]) {
        assert.isTrue(decide([{ ...c, state }], now + wait).allowed)
        assert.isFalse(decide([{ ...c, state }], now + wait - 1).allowed)
      }
    }, runs)

    it.prop("retryAfterMs of a decision is the exact wait for all its limits", [manyLimits], ([[specs, now]]) => {
      const checks = specs.map((s) => toCheck(s, now))
      const d = decide(checks, now)
      const wait = retryAfterMs(d)
      if (d.allowed) return assert.isUndefined(wait)
      const impossible = d.outcomes.some((o) => !o.shadow && o.impossible)
      assert.strictEqual(wait === undefined, impossible)
      if (wait === undefined) return
      const retried = restate(checks, d.states)
      assert.isTrue(decide(retried, now + wait).allowed)
      assert.isFalse(decide(retried, now + wait - 1).allowed)
    }, runs)

    it.prop(
      "remaining is the largest cost still admitted, and resetMs ends the window",
      [oneLimit(fc.constant(false))],
      ([[spec, now]]) => {
        const c = toCheck(spec, now)
        const d = decide([c], now)
        const o = d.outcomes[0]!
        assert.strictEqual(windowAt(now + o.resetMs, spec.windowMs), windowAt(now, spec.windowMs) + 1)
        assert.strictEqual(windowAt(now + o.resetMs - 1, spec.windowMs), windowAt(now, spec.windowMs))
        if (!d.allowed) return
        const next = { ...c, state: d.states[0] }
        assert.isTrue(decide([{ ...next, cost: o.remaining }], now).allowed)
        assert.isFalse(decide([{ ...next, cost: o.remaining + 1 }], now).allowed)
      },
      runs
    )
  })
})
