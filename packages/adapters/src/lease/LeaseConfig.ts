/**
 * Credit leases from the environment: `LEDGER_LEASE_CALLS` (calls' worth of credit a lease
 * reserves, default 64; 0 turns leases off, so every call takes its own hold in the store),
 * `LEDGER_LEASE_SETTLE_DELAY_MS` (default 2) and `LEDGER_LEASE_TTL_MS` (default 120000, at most 3600000).
 */
import type { Ledger, ProjectId } from "@tollgate/core"
import type { Stream } from "effect"
import { Config, Effect, Layer } from "effect"
import { LeasedLedgerLive } from "./LeasedLedger.js"

const positive = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    // the message names the variable: a failed check reports only the enclosing "LEDGER_LEASE"
    Config.validate({
      message: max === Number.MAX_SAFE_INTEGER
        ? `LEDGER_LEASE_${name} must be a whole number of at least ${min}`
        : `LEDGER_LEASE_${name} must be a whole number from ${min} to ${max}`,
      validation: (n) => n >= min && n <= max
    })
  )

export const LeaseConfig = Config.nested(
  Config.all({
    callsPerLease: positive("CALLS", 64, 0),
    settleDelayMs: positive("SETTLE_DELAY_MS", 2, 0),
    // at most an hour: a lease's settlement retries its capture under one key until the lease
    // expires, and the worker forgets replay records after WORKER_REPLAY_RETENTION_HOURS (at least 24)
    leaseTtlMs: positive("TTL_MS", 120_000, 30_000, 3_600_000)
  }),
  "LEDGER_LEASE"
)

/**
 * The ledger `inner` provides, in leases unless `LEDGER_LEASE_CALLS` is 0. With `returnRequests`,
 * the leases of a wallet are given back when another process asks (see `LeaseOptions`).
 */
export const leasedFromConfig = <E, R, R2 = never>(
  inner: Layer.Layer<Ledger, E, R>,
  returnRequests?: Effect.Effect<Stream.Stream<ProjectId, unknown>, never, R2>
) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const options = yield* LeaseConfig
      if (options.callsPerLease === 0) return inner
      const requests = returnRequests === undefined ? undefined : yield* returnRequests
      return LeasedLedgerLive({ ...options, ...(requests === undefined ? {} : { returnRequests: requests }) })(inner)
    })
  )
