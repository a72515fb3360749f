import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type {
  AccountId,
  Balance,
  CaptureRequest,
  GrantRequest,
  HoldId,
  HoldRequest,
  ProjectId,
  VoidRequest,
  WithdrawRequest
} from "@tollgate/core"
import {
  CaptureExceedsHold,
  Fingerprint,
  Grant,
  Hold,
  HoldAlreadyResolved,
  HoldNotFound,
  IdempotencyConflict,
  InsufficientCredit,
  type InvalidLedgerRequest,
  Ledger,
  LedgerUnavailable,
  LedgerValidation,
  sourceAccount,
  Transaction
} from "@tollgate/core"
import type { Scope } from "effect"
import { Clock, Effect, Exit, Layer, Option } from "effect"
import { leaseReturnChannel } from "../lease/LeaseKeys.js"
import type { GroupCommitOptions } from "./GroupCommit.js"
import { makeGroupCommit } from "./GroupCommit.js"

/** What the ledger's SQL functions return: the first outcome of the key, and whether this was a replay. */
interface Outcome {
  readonly ok?: Record<string, unknown>
  readonly err?: { readonly _tag: string } & Record<string, unknown>
  readonly replay?: boolean
}

type Refusal = InsufficientCredit | HoldNotFound | HoldAlreadyResolved | CaptureExceedsHold | IdempotencyConflict

const refusal = ({ _tag, ...fields }: { readonly _tag: string } & Record<string, unknown>): Refusal => {
  switch (_tag) {
    case "InsufficientCredit":
      return new InsufficientCredit(fields as any)
    case "HoldNotFound":
      return new HoldNotFound(fields as any)
    case "HoldAlreadyResolved":
      return new HoldAlreadyResolved(fields as any)
    case "CaptureExceedsHold":
      return new CaptureExceedsHold(fields as any)
    case "IdempotencyConflict":
      return new IdempotencyConflict(fields as any)
    default:
      throw new Error(`unknown ledger refusal ${_tag}`)
  }
}

// Rows come from the ledger's own SQL functions, whose shapes the contract suite pins down, so
// they are constructed without validating them again on every call of the hot path.
const decodeGrant = (raw: unknown) => new Grant(raw as ConstructorParameters<typeof Grant>[0], true)
const decodeHold = (raw: unknown) => new Hold(raw as ConstructorParameters<typeof Hold>[0], true)
const decodeTransaction = (raw: unknown) => new Transaction(raw as ConstructorParameters<typeof Transaction>[0], true)
const optionalTransaction = (raw: unknown) => (raw === null || raw === undefined ? undefined : decodeTransaction(raw))

const newId = (prefix: string) => `${prefix}_${globalThis.crypto.randomUUID().replaceAll("-", "")}`

const unavailable = (e: SqlError) => new LedgerUnavailable({ message: e.message })

export interface PgLedgerOptions {
  /**
   * Before a withdrawal, how long to wait for the wallet's pending holds to resolve: credit
   * leases, which every gateway process is asked to give back, and calls in flight with holds of
   * their own (0, the default, waits for nothing; the production stack waits up to 3,000 ms).
   */
  readonly pendingHoldsWaitMs?: number
  /**
   * Whether other processes may hold leases of the wallets (default true): a withdrawal then
   * asks them for their leases (`NOTIFY`) and trusts "no hold pending" only after 100 ms, in case
   * one of them was opening a lease. The embedded stack is one process.
   */
  readonly otherProcesses?: boolean
  /**
   * Group concurrent holds and captures into one statement and one commit each: up to
   * `maxSize` calls per batch, `workers` batches in flight. Under low load a batch is one call.
   */
  readonly batch?: { readonly maxSize: number; readonly workers: number } | undefined
}

type Execute = (params: Record<string, unknown>) => Effect.Effect<Outcome, SqlError>

/**
 * Queues calls and runs them `maxSize` at a time through `many` (a batch SQL function); if a
 * batch as a whole fails, its calls run one by one through `single`, so every caller still
 * gets the outcome of its own write.
 */
const makeBatcher = (
  sql: SqlClient.SqlClient,
  many: string,
  single: Execute,
  options: GroupCommitOptions
): Effect.Effect<Execute, never, Scope.Scope> =>
  // Even a batch of one goes through the batch function: its capture takes no wallet lock.
  makeGroupCommit<Record<string, unknown>, Outcome, SqlError>(
    (batch) =>
      sql.unsafe<{ i: number; result: Outcome }>(
        `SELECT i, result FROM ${many}($1::jsonb)`,
        [JSON.stringify(batch.map((params, i) => ({ ...params, i })))]
      ).pipe(
        Effect.map((rows) => {
          const outcomes: Array<Exit.Exit<Outcome, SqlError>> = []
          for (const row of rows) outcomes[row.i] = Exit.succeed(row.result)
          return outcomes
        }),
        Effect.catchAll((e) =>
          Effect.zipRight(
            Effect.logWarning(`${many} failed as a whole; running its calls one by one`, e),
            Effect.forEach(batch, (params) => Effect.exit(single(params)))
          )
        )
      ),
    options
  )

/**
 * The ledger on PostgreSQL (and embedded PGlite, which runs the same SQL). Each write is one
 * call of a SQL function from the ledger migration: it checks the key, takes the wallet's lock,
 * applies the write and records its outcome in one transaction and one round trip.
 */
const make = (options: PgLedgerOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /**
     * Validates, then calls one ledger function. Which refusals come back is the SQL function's
     * contract (see the migration), so the result is typed where the port is assembled below.
     */
    const single = (query: string): Execute => (params) =>
      sql.unsafe<{ result: Outcome }>(query, Object.values(params) as any).pipe(Effect.map((rows) => rows[0]!.result))

    const write = <A>(
      request: { readonly idempotencyKey: string },
      operation: string,
      validate: (now: number) => Option.Option<InvalidLedgerRequest>,
      execute: Execute,
      params: (fingerprint: string, now: number) => Record<string, unknown>,
      decode: (ok: Record<string, unknown>) => A
    ) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const malformed = validate(now)
        if (Option.isSome(malformed)) return yield* Effect.fail(malformed.value)
        const fingerprint = Fingerprint.fingerprint(operation, request)
        const outcome = yield* execute(params(fingerprint, now)).pipe(Effect.mapError(unavailable))
        if (outcome.err !== undefined) return yield* Effect.fail(refusal(outcome.err))
        return { ...decode(outcome.ok!), code: outcome.replay === true ? "exists" as const : "created" as const }
      })

    const grantOne = single(
      "SELECT tg_grant($1, $2, $3, $4, $5::bigint, $6, $7, $8::bigint, $9, $10::bigint) AS result"
    )
    const holdOne = single("SELECT tg_hold($1, $2, $3, $4, $5::bigint, $6::bigint, $7::bigint) AS result")
    const captureOne = single(
      "SELECT tg_capture($1, $2, $3, $4::bigint, $5::text[], $6::bigint[], $7::bigint) AS result"
    )
    const holdMany = options.batch === undefined
      ? holdOne
      : yield* makeBatcher(sql, "tg_hold_many", holdOne, options.batch)
    const captureMany = options.batch === undefined
      ? captureOne
      : yield* makeBatcher(sql, "tg_capture_many", captureOne, options.batch)

    const grant = (r: GrantRequest) =>
      write(
        r,
        "grant",
        (now) => LedgerValidation.grant(r, now),
        grantOne,
        (fp, now) => ({
          key: r.idempotencyKey,
          fingerprint: fp,
          grantId: newId("grant"),
          projectId: r.projectId,
          amount: r.amount,
          source: r.source,
          sourceAccount: sourceAccount(r.source),
          expiresAt: r.expiresAt ?? null,
          reason: r.reason ?? null,
          now
        }),
        (ok) => ({ grant: decodeGrant(ok.grant), transaction: decodeTransaction(ok.transaction) })
      )

    const hold = (r: HoldRequest) =>
      write(
        r,
        "hold",
        (now) => LedgerValidation.hold(r, now),
        holdMany,
        (fp, now) => ({
          key: r.idempotencyKey,
          fingerprint: fp,
          holdId: newId("hold"),
          projectId: r.projectId,
          amount: r.amount,
          expiresAt: r.expiresAt,
          now
        }),
        (ok) => ({ hold: decodeHold(ok.hold) })
      )

    const capture = (r: CaptureRequest) =>
      write(
        r,
        "capture",
        () => LedgerValidation.capture(r),
        captureMany,
        (fp, now) => ({
          key: r.idempotencyKey,
          fingerprint: fp,
          holdId: r.holdId,
          amount: r.amount,
          accounts: r.payees.map((p) => p.account),
          amounts: r.payees.map((p) => p.amount),
          now
        }),
        (ok) => ({
          hold: decodeHold(ok.hold),
          transaction: optionalTransaction(ok.transaction),
          released: Number(ok.released) as any
        })
      )

    const voidHold = (r: VoidRequest) =>
      write(
        r,
        "void",
        () => Option.none(),
        single("SELECT tg_void($1, $2, $3, $4::bigint) AS result"),
        (fp, now) => ({ key: r.idempotencyKey, fingerprint: fp, holdId: r.holdId, now }),
        (ok) => ({ hold: decodeHold(ok.hold) })
      )

    /**
     * Before a withdrawal: asks every gateway process to give the wallet's credit leases back
     * (a notice on `leaseReturnChannel`; see `LeaseOptions.returnRequests`), then waits, at most
     * `pendingHoldsWaitMs`, until none of the wallet's holds taken before the withdrawal (or
     * within `LATE_MS` of it) is pending, so that the withdrawal takes the wallet's credit rather
     * than reclaiming from the payees what holds had reserved: a lease's unspent credit, and that
     * of a call in flight whose hold is then voided (it would come back to the wallet after the
     * refund). Holds taken later, by calls that keep arriving on a busy wallet, are not waited
     * for: a refund would otherwise always wait the whole time there, and still find holds.
     * A replay (the key already has an outcome) returns that outcome without waiting.
     */
    const holdsWait = options.pendingHoldsWaitMs ?? 0
    const others = options.otherProcesses ?? true
    // the calls in flight when the withdrawal began, and those whose leases it gives back (they
    // take holds of their own within milliseconds), are waited for; later calls are not
    const LATE_MS = 500
    const pendingHolds =
      "SELECT count(*)::int AS n FROM holds WHERE project_id = $1 AND status = 'pending' AND created_at <= $2"
    // a lease another process was opening when the notice went out commits within a round trip
    // or two: no hold seen is trusted only after this long
    const holdsSettle = others ? Math.min(100, holdsWait) : 0
    // on the wall clock, not the fiber's Clock (a test clock must not stall a withdrawal)
    const pause = (ms: number) => Effect.promise(() => new Promise<void>((resume) => setTimeout(resume, ms)))
    const awaitPendingHolds = (r: WithdrawRequest) =>
      Effect.gen(function*() {
        const replay = yield* sql.unsafe("SELECT 1 AS seen FROM ledger_idempotency WHERE key = $1", [r.idempotencyKey])
        if (replay.length > 0) return
        if (others) yield* sql.unsafe("SELECT pg_notify($1, $2)", [leaseReturnChannel, r.projectId])
        const started = Date.now()
        for (;;) {
          const [row] = yield* sql.unsafe<{ n: number }>(pendingHolds, [r.projectId, started + LATE_MS])
          const waited = Date.now() - started
          if ((Number(row?.n ?? 0) === 0 && waited >= holdsSettle) || waited >= holdsWait) return
          yield* pause(20)
        }
      }).pipe(Effect.mapError(unavailable))

    const withdraw = (r: WithdrawRequest) =>
      holdsWait === 0 ? withdrawNow(r) : Effect.zipRight(awaitPendingHolds(r), withdrawNow(r))

    const withdrawNow = (r: WithdrawRequest) =>
      write(
        r,
        "withdraw",
        () => LedgerValidation.withdraw(r),
        single("SELECT tg_withdraw($1, $2, $3, $4::bigint, $5, $6, $7::boolean, $8, $9::bigint) AS result"),
        (fp, now) => ({
          key: r.idempotencyKey,
          fingerprint: fp,
          projectId: r.projectId,
          amount: r.amount,
          to: r.to,
          reason: r.reason,
          partial: r.partial === true,
          reclaimOf: r.reclaimSpentOf ?? null,
          now
        }),
        (ok) => ({
          withdrawn: Number(ok.withdrawn) as any,
          // outcomes remembered before refunds reclaimed anything have no `reclaimed`
          reclaimed: Number(ok.reclaimed ?? 0) as any,
          transaction: optionalTransaction(ok.transaction)
        })
      )

    /** Resolves due rows one function call (one transaction, one wallet lock) at a time. */
    const sweep = (due: string, resolve: string, now: number) =>
      Effect.gen(function*() {
        let count = 0
        let amount = 0
        for (;;) {
          const ids = yield* sql.unsafe<{ id: string }>(due, [now])
          for (const { id } of ids) {
            const [row] = yield* sql.unsafe<{ amount: string }>(resolve, [id, now])
            const moved = Number(row?.amount ?? 0)
            if (moved > 0) {
              count++
              amount += moved
            }
          }
          if (ids.length < 500) return { count, amount: amount as any }
        }
      }).pipe(Effect.mapError(unavailable))

    /**
     * Deletes per-call replay records older than `before`, a slice at a time in `created_at`
     * order, each slice starting where the previous one ended, so no statement runs long and no
     * row is visited twice.
     */
    const pruneSlice = 5_000
    const pruneStatement = `WITH slice AS (
        SELECT ctid FROM ledger_idempotency
        WHERE created_at >= $2 AND created_at < $1
          AND (${Fingerprint.callOperations.map((op) => `fingerprint LIKE '${op}:%'`).join(" OR ")})
        ORDER BY created_at LIMIT ${pruneSlice}),
      gone AS (DELETE FROM ledger_idempotency WHERE ctid IN (SELECT ctid FROM slice) RETURNING created_at)
    SELECT count(*)::int AS n, coalesce(max(created_at), 0)::text AS last FROM gone`
    const pruneReplays = (before: number) =>
      Effect.gen(function*() {
        let count = 0
        let from = 0
        for (;;) {
          const [row] = yield* sql.unsafe<{ n: number; last: string }>(pruneStatement, [before, from])
          const n = Number(row?.n ?? 0)
          count += n
          if (n < pruneSlice) return count
          from = Number(row!.last)
        }
      }).pipe(Effect.mapError(unavailable))

    const balance = (projectId: ProjectId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql.unsafe<{ balance: string; pending: string; available: string }>(
          `SELECT
          (SELECT coalesce(sum(balance), 0) FROM account_balances WHERE account = 'wallet:' || $1)::text AS balance,
          (SELECT coalesce(sum(amount), 0) FROM holds WHERE project_id = $1 AND status = 'pending')::text AS pending,
          tg_available($1, $2::bigint)::text AS available`,
          [projectId, now]
        )).pipe(
          Effect.map(([row]): Balance => ({
            projectId,
            balance: Number(row!.balance) as any,
            pending: Number(row!.pending) as any,
            available: Number(row!.available) as any
          })),
          Effect.mapError(unavailable)
        )

    type Service = typeof Ledger.Service
    return Ledger.of({
      grant: grant as Service["grant"],
      hold: hold as Service["hold"],
      capture: capture as Service["capture"],
      void: voidHold as Service["void"],
      withdraw: withdraw as Service["withdraw"],
      expireHolds: (now) =>
        sweep(
          "SELECT id FROM holds WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT 500",
          "SELECT tg_expire_hold($1, $2::bigint)::text AS amount",
          now
        ),
      expireGrants: (now) =>
        sweep(
          `SELECT id FROM grants WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $1
          ORDER BY expires_at LIMIT 500`,
          "SELECT tg_expire_grant($1, $2::bigint)::text AS amount",
          now
        ),
      pruneReplays,
      balance,
      getHold: (holdId: HoldId) =>
        sql.unsafe<{ hold: unknown }>("SELECT tg_hold_json(h) AS hold FROM holds h WHERE id = $1", [holdId]).pipe(
          Effect.mapError(unavailable),
          Effect.flatMap((rows) =>
            rows[0] === undefined
              ? Effect.fail(new HoldNotFound({ code: "hold_not_found", holdId }))
              : Effect.succeed(decodeHold(rows[0].hold))
          )
        ),
      grants: (projectId) =>
        sql.unsafe<{ lot: unknown }>(
          `SELECT tg_grant_json(g) AS lot FROM grants g WHERE project_id = $1
          ORDER BY coalesce(expires_at, 9223372036854775807), created_at, id COLLATE "C"`,
          [projectId]
        ).pipe(
          Effect.map((rows) =>
            rows.map((r) =>
              decodeGrant(r.lot)
            )
          ),
          Effect.mapError(unavailable)
        ),
      history: (projectId, page) =>
        sql.unsafe<{ t: unknown }>(
          `SELECT tg_transaction_json(id) AS t FROM ledger_transactions
          WHERE project_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3`,
          [projectId, page.cursor !== undefined && /^\d{1,18}$/.test(page.cursor) ? page.cursor : null, page.limit + 1]
        ).pipe(
          Effect.map((rows) => {
            const transactions = rows.slice(0, page.limit).map((r) => decodeTransaction(r.t))
            return {
              transactions,
              nextCursor: rows.length > page.limit ? transactions[transactions.length - 1]!.id : undefined
            }
          }),
          Effect.mapError(unavailable)
        ),
      trialBalance: sql.unsafe<{ account: string; balance: string }>(
        "SELECT account, sum(balance)::text AS balance FROM account_balances GROUP BY account"
      ).pipe(
        Effect.map((rows) => new Map(rows.map((r) => [r.account as AccountId, BigInt(r.balance)]))),
        Effect.mapError(unavailable)
      ),
      accountBalance: (account) =>
        sql.unsafe<{ balance: string }>(
          "SELECT coalesce(sum(balance), 0)::text AS balance FROM account_balances WHERE account = $1",
          [account]
        ).pipe(Effect.map(([row]) => BigInt(row!.balance)), Effect.mapError(unavailable))
    })
  })

/** One call, one statement, one commit per write. */
export const makePgLedger = make({}) as Effect.Effect<typeof Ledger.Service, never, SqlClient.SqlClient>

/** Concurrent holds and captures share statements and commits (needs a scope for its workers). */
export const makePgLedgerBatched = (
  batch: NonNullable<PgLedgerOptions["batch"]> = { maxSize: 64, workers: 4 },
  options: Omit<PgLedgerOptions, "batch"> = {}
) => make({ ...options, batch })

export const PgLedgerLive = Layer.effect(Ledger, makePgLedger)

/**
 * One call, one statement, one commit per write, and a withdrawal waits (up to 3 s) for the
 * wallet's pending holds first: the embedded stack, whose calls in flight take holds of their own
 * when a withdrawal returns their leases.
 */
export const PgLedgerWaitingLive = Layer.scoped(Ledger, make({ pendingHoldsWaitMs: 3_000, otherProcesses: false }))

/** One call, one statement, one commit per write, with the given withdrawal options (tests). */
export const makePgLedgerWith = (options: Omit<PgLedgerOptions, "batch">) => make(options)

/**
 * The ledger for gateway processes sharing one database: batched, and a withdrawal first asks the
 * other processes for the wallet's credit leases and waits for its pending holds (up to 3 s).
 */
export const PgLedgerBatchedLive = Layer.scoped(Ledger, makePgLedgerBatched(undefined, { pendingHoldsWaitMs: 3_000 }))
