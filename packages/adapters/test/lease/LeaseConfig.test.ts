import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit } from "effect"
import { LeaseConfig } from "../../src/lease/LeaseConfig.js"

const read = (env: Record<string, string>) =>
  Effect.exit(
    Effect.withConfigProvider(LeaseConfig, ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))
  )

describe("lease configuration", () => {
  it.effect("defaults: leases of 64 calls, 2 ms settle delay, 120 s time to live", () =>
    Effect.gen(function*() {
      const config = yield* read({})
      assert.deepStrictEqual(Exit.isSuccess(config) ? config.value : undefined, {
        callsPerLease: 64,
        settleDelayMs: 2,
        leaseTtlMs: 120_000
      })
    }))

  it.effect("0 calls is accepted (leases off); a negative count or a time to live out of range fails, naming the variable", () =>
    Effect.gen(function*() {
      const off = yield* read({ LEDGER_LEASE_CALLS: "0" })
      assert.strictEqual(Exit.isSuccess(off) ? off.value.callsPerLease : undefined, 0)
      for (
        const [name, value] of [["LEDGER_LEASE_CALLS", "-1"], ["LEDGER_LEASE_TTL_MS", "1000"], [
          "LEDGER_LEASE_TTL_MS",
          "3600001"
        ], [
          "LEDGER_LEASE_SETTLE_DELAY_MS",
          "soon"
        ]]
      ) {
        const bad = yield* read({ [name!]: value! })
        assert.isTrue(Exit.isFailure(bad))
        if (Exit.isFailure(bad)) assert.include(String(bad.cause), name!.replace("LEDGER_LEASE_", ""))
      }
    }))
})
