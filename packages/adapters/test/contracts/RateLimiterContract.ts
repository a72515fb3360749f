import { assert, describe, it } from "@effect/vitest"
import { RateLimiter, RateLimitPolicy } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, FastCheck as fc } from "effect"
import { unique } from "./fixtures.js"

const policy = (name: string, limit: number, windowMs: number, shadow = false) =>
  new RateLimitPolicy({ name, scope: "key", limit, windowMs, shadow })

/**
 * The RateLimiter contract: every adapter must pass it. Time is passed in explicitly, so the
 * suite runs the same against an in-process map and a remote store.
 */
export const rateLimiterContract = (
  name: string,
  layer: Layer.Layer<RateLimiter, unknown>,
  options: { readonly numRuns: number }
) =>
  describe(`RateLimiter contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, RateLimiter>) => Effect.provide(body, layer)
    const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 60_000)

    it.effect("admits up to the limit in a window, then refuses with the limit named and a retry time", () =>
      run(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const k = unique("rl")
        const p = policy("per_minute", 3, 60_000)
        const decisions = []
        for (let i = 0; i < 4; i++) decisions.push(yield* limiter.consume([{ key: k, policy: p, cost: 1 }], T0 + i))
        assert.deepStrictEqual(decisions.map((d) => d.allowed), [true, true, true, false])
        assert.deepStrictEqual(decisions.map((d) => d.outcomes[0]!.remaining), [2, 1, 0, 0])
        const refused = decisions[3]!.outcomes[0]!
        assert.strictEqual(refused.name, "per_minute")
        assert.isTrue(refused.exceeded)
        assert.isAbove(refused.retryAfterMs!, 0)
        assert.strictEqual(refused.resetMs, 60_000 - 3)
        const later = yield* limiter.consume([{ key: k, policy: p, cost: 1 }], T0 + 3 + refused.retryAfterMs!)
        assert.isTrue(later.allowed)
      })))

    it.effect("several limits are all-or-nothing: one exhausted limit consumes none of the others", () =>
      run(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const [a, b, c] = [unique("a"), unique("b"), unique("c")]
        const perSecond = policy("per_second", 10, 1_000)
        const perDay = policy("per_day", 100, 86_400_000)
        const tight = policy("tight", 1, 60_000)
        const limits = [{ key: a, policy: perSecond, cost: 1 }, { key: b, policy: perDay, cost: 1 }, {
          key: c,
          policy: tight,
          cost: 1
        }]
        assert.isTrue((yield* limiter.consume(limits, T0)).allowed)
        const refused = yield* limiter.consume(limits, T0 + 1)
        assert.isFalse(refused.allowed)
        assert.deepStrictEqual(refused.outcomes.map((o) => o.exceeded), [false, false, true])
        // had the refused call consumed the first two, they would show one unit less
        const probe = yield* limiter.consume([{ key: a, policy: perSecond, cost: 1 }, {
          key: b,
          policy: perDay,
          cost: 1
        }], T0 + 2)
        assert.deepStrictEqual(probe.outcomes.map((o) => o.remaining), [8, 98])
      })))

    it.effect("a shadow limit is counted and reported but never refuses", () =>
      run(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const k = unique("shadow")
        const p = policy("new_limit", 2, 60_000, true)
        const results = []
        for (let i = 0; i < 4; i++) results.push(yield* limiter.consume([{ key: k, policy: p, cost: 1 }], T0 + i))
        assert.deepStrictEqual(results.map((r) => r.allowed), [true, true, true, true])
        assert.deepStrictEqual(results.map((r) => r.outcomes[0]!.exceeded), [false, false, true, true])
      })))

    it.effect("changing a limit keeps its counter", () =>
      run(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const k = unique("change")
        for (let i = 0; i < 5; i++) {
          yield* limiter.consume([{ key: k, policy: policy("p", 5, 60_000), cost: 1 }], T0 + i)
        }
        const raised = yield* limiter.consume([{ key: k, policy: policy("p", 8, 60_000), cost: 1 }], T0 + 10)
        assert.isTrue(raised.allowed)
        assert.strictEqual(raised.outcomes[0]!.remaining, 2)
        const lowered = yield* limiter.consume([{ key: k, policy: policy("p", 4, 60_000), cost: 1 }], T0 + 11)
        assert.isFalse(lowered.allowed)
      })))

    it.effect("a cost above the limit can never be admitted and says so", () =>
      run(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const d = yield* limiter.consume([{ key: unique("big"), policy: policy("p", 5, 1_000), cost: 6 }], T0)
        assert.isFalse(d.allowed)
        assert.isTrue(d.outcomes[0]!.impossible)
        assert.isUndefined(d.outcomes[0]!.retryAfterMs)
      })))

    it.live.prop(
      "a limit of N never admits more than N in any aligned window, under concurrent fibers",
      {
        limit: fc.integer({ min: 1, max: 20 }),
        windowMs: fc.integer({ min: 10, max: 1_000 }),
        bursts: fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 3_000 }),
            callers: fc.integer({ min: 1, max: 30 }),
            cost: fc.integer({ min: 1, max: 3 })
          }),
          { minLength: 1, maxLength: 8 }
        )
      },
      ({ bursts, limit, windowMs }) =>
        run(Effect.gen(function*() {
          const limiter = yield* RateLimiter
          const k = unique("prop")
          const p = policy("p", limit, windowMs)
          const admitted = new Map<number, number>()
          const ordered = [...bursts].sort((x, y) => x.at - y.at)
          for (const burst of ordered) {
            const now = T0 + burst.at
            const results = yield* Effect.all(
              Array.from(
                { length: burst.callers },
                () => limiter.consume([{ key: k, policy: p, cost: burst.cost }], now)
              ),
              { concurrency: "unbounded" }
            )
            const w = Math.floor(now / windowMs)
            const got = results.filter((r) => r.allowed).length * burst.cost
            admitted.set(w, (admitted.get(w) ?? 0) + got)
          }
          for (const [, total] of admitted) assert.isAtMost(total, limit)
          // and the limiter is not vacuous: the first burst gets at least one call in when it fits
          const first = ordered[0]!
          if (first.cost <= limit) {
            assert.isAtLeast(admitted.get(Math.floor((T0 + first.at) / windowMs)) ?? 0, first.cost)
          }
        })),
      { fastCheck: { numRuns: options.numRuns } }
    )
  })
