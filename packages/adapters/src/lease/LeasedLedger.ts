/**
 * Credit leases: a ledger in front of another ledger that reserves a wallet's credit in blocks,
 * so the calls of a busy wallet cost the store two writes per block instead of two per call.
 *
 * - A **lease** is one hold in the store for many calls' worth of credit (`callsPerLease` × the
 *   first call's price). The calls' holds are **carved** from it in this process: no store write.
 * - A carve's capture or void is recorded here. A capture returns once its lease has been
 *   **settled** in the store: one capture of the hold for what its calls spent, with their payees
 *   summed per account (the rest of the hold is released). So a capture that returned is durable,
 *   as with the store itself; concurrent captures share that commit.
 * - A lease settles as soon as none of its calls is pending, or `settleDelayMs` after its first
 *   capture. In the second case calls still in flight are moved to a fresh lease (their credit is
 *   reserved by both leases until the old one settles, never by neither), so a slow call does not
 *   delay the captures of fast ones. A call that can be moved nowhere keeps its lease open until it
 *   resolves or its deadline passes.
 *
 * Why no wallet can be overspent: every carve is funded by a lease's remaining credit, and every
 * lease by a hold the store granted; a capture never exceeds its carve, nor a lease's capture the
 * sum of its carves. If this process dies, its leases are holds the store expires: their credit
 * returns, and the calls they served that were not settled are not charged (none of those calls'
 * captures had returned).
 *
 * What it costs: a wallet's credit in leases is not available to other processes until they
 * settle (milliseconds under traffic). A wallet that cannot fund a lease is served with exact holds
 * (one store hold per call) for `exactForMs`, so wallets near empty refuse exactly as the store
 * does. Carves are remembered in this process only: idempotency keys of carved holds and their
 * captures are honoured within the process that made them (the gateway mints a request id per
 * call, so a call never moves between processes).
 */
import type {
  Balance,
  CaptureExceedsHold,
  CaptureRequest,
  CaptureResult,
  HoldId,
  HoldRequest,
  HoldResult,
  IdempotencyKey,
  InvalidLedgerRequest,
  LedgerWriteError,
  Payee,
  ProjectId,
  Transaction,
  VoidRequest,
  VoidResult
} from "@tollgate/core"
import {
  Hold,
  HoldAlreadyResolved,
  HoldNotFound,
  HoldTransition,
  IdempotencyConflict,
  Ledger,
  LedgerUnavailable,
  LedgerValidation
} from "@tollgate/core"
import type { Layer as L } from "effect"
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberId,
  FiberSet,
  Layer,
  Option,
  Schedule,
  Stream
} from "effect"
import { leaseKeyPrefix } from "./LeaseKeys.js"

export interface LeaseOptions {
  /** A lease reserves this many times the price of the call that opens it (default 64). */
  readonly callsPerLease?: number
  /** How long a lease's hold lives in the store; if this process dies, its credit returns after this (default 120 s). */
  readonly leaseTtlMs?: number
  /** A capture waits at most this long for the other calls of its lease before the lease settles (default 2 ms). */
  readonly settleDelayMs?: number
  /** After a wallet could not fund a lease, its calls take exact holds for this long (default 1 s). */
  readonly exactForMs?: number
  /** A capture that has not been settled in this time answers LedgerUnavailable; settling goes on (default 10 s). */
  readonly captureTimeoutMs?: number
  /** Idempotency keys and resolved carves remembered (default 20,000). */
  readonly remember?: number
  /**
   * A wallet's balance is read from the store at most this often; this process's own writes show
   * at once, other processes' within this time (default 1 s; 0 reads the store every time).
   */
  readonly balanceTtlMs?: number
  /**
   * Wallets (project ids) whose leases another process asks back before it withdraws from them
   * (a refund, a dispute, an adjustment; PostgreSQL: LISTEN on `leaseReturnChannel`). Each is
   * handled as a withdrawal of this process's own would be: its leases give their unspent credit
   * back, calls in flight moving to exact holds, and it opens no lease for `returnWindowMs`.
   */
  readonly returnRequests?: Stream.Stream<ProjectId, unknown>
  /** How long a wallet whose leases were asked back takes exact holds (default 5 s). */
  readonly returnWindowMs?: number
}

/** A lease must outlive any call carved from it by this much, so that it can still be settled. */
const SETTLE_MARGIN_MS = 10_000

type Service = Ledger["Type"]
type SettleError = LedgerUnavailable | HoldAlreadyResolved | HoldNotFound

interface Carve {
  readonly id: HoldId
  readonly projectId: ProjectId
  readonly amount: number
  readonly createdAt: number
  readonly expiresAt: number
  lease: Lease
  status: Hold["status"]
  captured: number
  payees: ReadonlyArray<Payee>
  captureKey: IdempotencyKey | undefined
  resolvedAt: number | undefined
  transaction: Transaction | undefined
  /** Set when the call was moved out of its lease to a hold of its own in the store (absent: none could be made). */
  exact: Deferred.Deferred<HoldId | undefined> | undefined
}

interface Lease {
  readonly seq: number
  /** The price of the call it was opened for: a standby lease is sized on it. */
  readonly unit: number
  /** Calls carved from it or moved into it. */
  carved: number
  readonly hold: Hold
  readonly wallet: Wallet
  remaining: number
  readonly pending: Set<Carve>
  readonly captured: Array<Carve>
  open: boolean
  settling: boolean
  /** Its rotation is scheduled. */
  timer: boolean
  /** A check whether it can settle is scheduled (after the calls already runnable). */
  checking: boolean
  moving: boolean
  readonly settled: Deferred.Deferred<Transaction | undefined, SettleError>
  /** Completed with the settlement, or with LedgerUnavailable once captures have waited `captureTimeoutMs`. */
  readonly answered: Deferred.Deferred<Transaction | undefined, SettleError>
}

interface Wallet {
  readonly projectId: ProjectId
  open: Lease | undefined
  /** Opened ahead, for when the open lease rotates, so that calls never wait for a lease to open. */
  next: Lease | undefined
  opening: Deferred.Deferred<void> | undefined
  /** A standby lease is about to be opened. */
  standbyAsked: boolean
  /** Calls waiting for a lease to open: a lone call does not settle its lease while others are about to join it. */
  waiting: number
  exactUntil: number
  /** Withdrawals under way: the wallet takes exact holds and opens no lease until they end. */
  withdrawing: number
  readonly unsettled: Set<Lease>
}

interface Memo {
  readonly print: string
  /** The first outcome, once known. */
  exit: Exit.Exit<unknown, unknown> | undefined
  /** Made only when the same request arrives while the first is still running. */
  waiting: Deferred.Deferred<unknown, unknown> | undefined
}

const LOCAL_PREFIX = "lh_"

/** The leased ledger over `inner`; its leases are settled (or voided) when the scope closes. */
export const makeLeasedLedger = (inner: Service, options: LeaseOptions = {}) =>
  Effect.gen(function*() {
    const callsPerLease = Math.max(1, options.callsPerLease ?? 64)
    const ttl = options.leaseTtlMs ?? 120_000
    const settleDelay = options.settleDelayMs ?? 2
    const exactFor = options.exactForMs ?? 1_000
    const captureTimeout = options.captureTimeoutMs ?? 10_000
    const rememberMax = options.remember ?? 20_000
    const balanceTtl = options.balanceTtlMs ?? 1_000
    const standbyIdleMs = 100

    const fibers = yield* FiberSet.make<unknown, never>()
    const fork = (effect: Effect.Effect<void>): Effect.Effect<void> => Effect.asVoid(FiberSet.run(fibers, effect))
    const instance = globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 16)
    let leaseSeq = 0
    let carveSeq = 0
    const wallets = new Map<ProjectId, Wallet>()
    const carves = new Map<HoldId, Carve>()
    const remembered = new Map<IdempotencyKey, Memo>()

    const walletOf = (projectId: ProjectId): Wallet => {
      let wallet = wallets.get(projectId)
      if (wallet === undefined) {
        wallet = {
          projectId,
          open: undefined,
          next: undefined,
          opening: undefined,
          standbyAsked: false,
          waiting: 0,
          exactUntil: 0,
          withdrawing: 0,
          unsettled: new Set()
        }
        wallets.set(projectId, wallet)
      }
      return wallet
    }
    /** The wallet takes exact holds: it could not fund a lease lately, or a withdrawal is under way. */
    const isExact = (wallet: Wallet, now: number) => wallet.exactUntil > now || wallet.withdrawing > 0

    const forgetIfIdle = (wallet: Wallet, now: number) => {
      if (
        wallet.open === undefined && wallet.next === undefined && wallet.opening === undefined &&
        wallet.unsettled.size === 0 &&
        wallet.exactUntil <= now && wallet.withdrawing === 0
      ) wallets.delete(wallet.projectId)
    }

    const trim = () => {
      if (remembered.size > rememberMax) {
        for (const key of remembered.keys()) {
          remembered.delete(key)
          if (remembered.size <= rememberMax * 0.9) break
        }
      }
      if (carves.size > rememberMax) {
        for (const [id, carve] of carves) {
          if (carve.status !== "pending" && !carve.lease.wallet.unsettled.has(carve.lease)) carves.delete(id)
          if (carves.size <= rememberMax * 0.9) break
        }
      }
    }

    /**
     * Same key and same request: the first outcome again (a success as "exists", a refusal as the
     * same refusal), also while the first is still running. Outages are not remembered.
     */
    const remember = <A extends { readonly code: "created" | "exists" }, E>(
      print: string,
      request: { readonly idempotencyKey: IdempotencyKey },
      run: Effect.Effect<A, E>
    ): Effect.Effect<A, E | IdempotencyConflict> =>
      Effect.suspend((): Effect.Effect<A, E | IdempotencyConflict> => {
        const prior = remembered.get(request.idempotencyKey)
        if (prior !== undefined) {
          if (prior.print !== print) {
            return Effect.fail(
              new IdempotencyConflict({ code: "exists_with_different_request", idempotencyKey: request.idempotencyKey })
            )
          }
          let first: Effect.Effect<A, E>
          if (prior.exit !== undefined) first = prior.exit as Exit.Exit<A, E>
          else {
            prior.waiting ??= Deferred.unsafeMake(FiberId.none)
            first = Deferred.await(prior.waiting as Deferred.Deferred<A, E>)
          }
          return Effect.map(first, (result) => ({ ...result, code: "exists" as const }))
        }
        const memo: Memo = { print, exit: undefined, waiting: undefined }
        remembered.set(request.idempotencyKey, memo)
        trim()
        return run.pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              if (
                Exit.isFailure(exit) && (Exit.isInterrupted(exit) ||
                  Option.exists(
                    Cause.failureOption(exit.cause),
                    (e) => (e as { _tag?: string })._tag === "LedgerUnavailable"
                  ))
              ) {
                // outages are not remembered: the same request may be tried again
                if (remembered.get(request.idempotencyKey) === memo) remembered.delete(request.idempotencyKey)
              } else {
                memo.exit = exit
              }
              return memo.waiting === undefined ? Effect.void : Deferred.done(memo.waiting, exit)
            })
          )
        )
      })

    // Built without the schema class's constructor (its defaults merge and checks cost a few per
    // cent of a call): the fields are this module's own and valid; the result is a Hold like any
    // other (same prototype, same own fields, so the same equality and hash).
    const carveHold = (carve: Carve): Hold =>
      Object.assign(Object.create(Hold.prototype) as Hold, {
        id: carve.id,
        projectId: carve.projectId,
        amount: carve.amount as Hold["amount"],
        status: carve.status,
        allocations: [],
        createdAt: carve.createdAt as Hold["createdAt"],
        expiresAt: carve.expiresAt as Hold["expiresAt"],
        ...(carve.status === "captured" ? { captured: carve.captured as Hold["amount"] } : {}),
        ...(carve.resolvedAt === undefined ? {} : { resolvedAt: carve.resolvedAt as Hold["createdAt"] }),
        ...(carve.transaction === undefined ? {} : { transactionId: carve.transaction.id })
      })

    /** What the hold state machine reads of a hold. */
    const stateOf = (carve: Carve) =>
      ({ id: carve.id, status: carve.status, amount: carve.amount, expiresAt: carve.expiresAt }) as unknown as Hold

    const close = (lease: Lease) => {
      lease.open = false
      if (lease.wallet.open === lease) lease.wallet.open = undefined
      if (lease.wallet.next === lease) lease.wallet.next = undefined
    }

    const suits = (lease: Lease, amount: number, expiresAt: number) =>
      lease.open && lease.remaining >= amount && expiresAt + SETTLE_MARGIN_MS <= lease.hold.expiresAt

    /** The standby lease becomes the one calls are carved from. */
    const promote = (wallet: Wallet, lease: Lease) => {
      if (wallet.next === lease) wallet.next = undefined
      if (wallet.open !== undefined && wallet.open !== lease) close(wallet.open)
      wallet.open = lease
      return lease
    }

    const awaitOpening = (wallet: Wallet, opening: Deferred.Deferred<void>) =>
      Effect.suspend(() => {
        wallet.waiting++
        return Effect.ensuring(Deferred.await(opening), Effect.sync(() => void wallet.waiting--))
      })

    /** Captures what the lease's calls spent (or voids it when they spent nothing): one store write. */
    const settle = (lease: Lease): Effect.Effect<void> =>
      Effect.suspend(() => {
        close(lease)
        lease.settling = true
        let spent = 0
        const byAccount = new Map<string, number>()
        for (const carve of lease.captured) {
          spent += carve.captured
          for (const p of carve.payees) {
            if (p.amount > 0) byAccount.set(p.account, (byAccount.get(p.account) ?? 0) + p.amount)
          }
        }
        const key = `${leaseKeyPrefix}${instance}:${lease.seq}`
        const write = spent === 0
          ? Effect.as(
            inner.void({ idempotencyKey: `${key}:void` as IdempotencyKey, holdId: lease.hold.id }),
            undefined
          )
          : Effect.map(
            inner.capture({
              idempotencyKey: `${key}:capture` as IdempotencyKey,
              holdId: lease.hold.id,
              amount: spent as Hold["amount"],
              payees: [...byAccount].map(([account, amount]) => ({ account, amount })) as Array<Payee>
            }),
            (r) => r.transaction
          )
        const late = Effect.zipRight(
          Effect.sleep(Duration.millis(captureTimeout)),
          Effect.suspend(() =>
            Deferred.fail(
              lease.answered,
              new LedgerUnavailable({ message: "the capture was not settled in time; it still may be" })
            )
          )
        )
        return Effect.flatMap(FiberSet.run(fibers, late), (timer) =>
          write.pipe(
            // the lease's own key and request never change, and its payees were each validated
            Effect.catchAll((e): Effect.Effect<never, SettleError> =>
              e._tag === "LedgerUnavailable" || e._tag === "HoldAlreadyResolved" || e._tag === "HoldNotFound"
                ? Effect.fail(e)
                : Effect.die(e)
            ),
            Effect.retry({
              schedule: Schedule.exponential("20 millis").pipe(Schedule.union(Schedule.spaced("1 second"))),
              while: (e) => e._tag === "LedgerUnavailable" && Date.now() < lease.hold.expiresAt
            }),
            Effect.exit,
            Effect.flatMap((exit) =>
              Effect.suspend(() => {
                const now = Date.now()
                for (const carve of lease.captured) {
                  if (Exit.isSuccess(exit)) carve.transaction = exit.value
                  // not settled in the store: the lease's hold expires there, so these calls are not charged
                  else carve.status = "expired"
                }
                lease.wallet.unsettled.delete(lease)
                forgetIfIdle(lease.wallet, now)
                if (Exit.isSuccess(exit)) {
                  // spent leaves the wallet; the rest of the hold returns to it
                  moved(lease.wallet.projectId, -spent, lease.hold.amount - spent, -lease.hold.amount)
                } else forget(lease.wallet.projectId)
                const outcome: Exit.Exit<Transaction | undefined, SettleError> = Exit.isFailure(exit)
                  ? Exit.fail(Option.getOrElse(
                    Cause.failureOption(exit.cause),
                    (): SettleError => new LedgerUnavailable({ message: "the lease could not be settled" })
                  ))
                  : exit
                return Effect.all([
                  Deferred.done(lease.settled, outcome),
                  Deferred.done(lease.answered, outcome),
                  Fiber.interrupt(timer)
                ], { discard: true })
              })
            ),
            Effect.asVoid
          ))
      })

    /** Marks the lease's calls past their deadline as expired, so that they no longer keep it open. */
    const expireOverdue = (lease: Lease, now: number) => {
      for (const carve of lease.pending) {
        if (now >= carve.expiresAt) {
          carve.status = "expired"
          carve.resolvedAt = now
          lease.pending.delete(carve)
        }
      }
    }

    /**
     * A busy wallet (its lease serves more than one call): the next lease is opened now, so that
     * calls find it ready when this one rotates or settles, instead of waiting for a store hold.
     */
    const standbyFor = (lease: Lease): Effect.Effect<void> => {
      const wallet = lease.wallet
      // whether the lease is busy is judged now (the caller may close it next) ...
      if (
        !lease.open || lease.carved < 2 || wallet.open !== lease || wallet.next !== undefined ||
        wallet.opening !== undefined || wallet.standbyAsked
      ) return Effect.void
      // ... and the wallet's state when the request runs: the flag is set and the opening forked in
      // one step nothing can interrupt (the opening itself can be), so the flag cannot be left set
      return Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const now = Date.now()
          if (
            wallet.next !== undefined || wallet.opening !== undefined || wallet.standbyAsked || isExact(wallet, now)
          ) return Effect.void
          wallet.standbyAsked = true
          return fork(
            Effect.ensuring(
              restore(Effect.ignore(openLease(wallet, lease.unit, lease.unit, now, now, true))),
              Effect.sync(() => void (wallet.standbyAsked = false))
            )
          )
        })
      )
    }

    /**
     * After a call of the lease resolved: the lease settles once none of its calls is in flight
     * (and no call is waiting to join it), else `settleDelayMs` after its first capture, so that the
     * captures of concurrent calls share its store write. An open lease whose calls have all
     * resolved settles only after the calls already runnable in this process have had their turn:
     * calls resumed together (by the same settlement) then share the next lease's write instead of
     * the first of them settling it alone.
     */
    const afterResolve = (lease: Lease, yielded = false): Effect.Effect<void> => {
      if (lease.settling) return Effect.void
      const wallet = lease.wallet
      if (lease.pending.size === 0 && (!lease.open || wallet.waiting === 0)) {
        if (lease.open && !yielded) {
          // the flag is set and the check forked in one step nothing can interrupt (the forked
          // check itself can be), so that the flag cannot be left set
          return Effect.uninterruptibleMask((restore) =>
            Effect.suspend(() => {
              if (lease.checking) return Effect.void
              lease.checking = true
              return fork(restore(Effect.zipRight(
                Effect.yieldNow(),
                Effect.suspend(() => {
                  lease.checking = false
                  return afterResolve(lease, true)
                })
              )))
            })
          )
        }
        const standby = standbyFor(lease)
        close(lease)
        lease.settling = true
        return Effect.zipRight(standby, fork(settle(lease)))
      }
      const standby = standbyFor(lease)
      if (lease.timer) return standby
      lease.timer = true
      return Effect.zipRight(fork(Effect.zipRight(Effect.sleep(Duration.millis(settleDelay)), rotate(lease))), standby)
    }

    /**
     * A capture has waited `settleDelayMs`: no new calls go to this lease, and its calls still in
     * flight move to a fresh lease, so that it can settle now.
     */
    const rotate = (lease: Lease): Effect.Effect<void> =>
      Effect.suspend(() => {
        lease.timer = false
        if (lease.settling || lease.moving) return Effect.void
        close(lease)
        expireOverdue(lease, Date.now())
        if (lease.pending.size === 0) return afterResolve(lease)
        lease.moving = true
        let need = 0
        let latest = 0
        for (const carve of lease.pending) {
          need += carve.amount
          latest = Math.max(latest, carve.expiresAt)
        }
        const wallet = lease.wallet
        return successor(wallet, need, latest).pipe(
          Effect.flatMap((next) =>
            Effect.suspend(() => {
              lease.moving = false
              if (next !== undefined && !lease.settling && next.open && !next.settling) {
                for (const carve of lease.pending) {
                  if (next.remaining < carve.amount || carve.expiresAt + SETTLE_MARGIN_MS > next.hold.expiresAt) break
                  next.remaining -= carve.amount
                  next.carved++
                  next.pending.add(carve)
                  lease.pending.delete(carve)
                  carve.lease = next
                }
              }
              // a lease opened for calls that resolved meanwhile must not stay open unused (afterResolve
              // acts when called, so only now that the calls have moved)
              const idle = next !== undefined && next.pending.size === 0 ? afterResolve(next) : Effect.void
              if (lease.settling) return idle
              return Effect.zipRight(idle, lease.pending.size === 0 ? afterResolve(lease) : detach(lease))
            })
          ),
          Effect.catchAll(() => Effect.sync(() => void (lease.moving = false)))
        )
      })

    /**
     * The wallet could not fund a lease for the lease's calls still in flight: the lease settles
     * now, which returns their credit to the wallet, and each of them then takes a hold of its own
     * in the store. Another process may take that credit first; such a call is then not charged
     * (never overspent). During a withdrawal the calls take their holds first and the lease
     * settles after.
     */
    const detach = (lease: Lease): Effect.Effect<void> => {
      const calls = [...lease.pending]
      lease.pending.clear()
      for (const carve of calls) carve.exact = Deferred.unsafeMake(FiberId.none)
      const holdOf = (carve: Carve, suffix: string) =>
        thenForget(
          carve.projectId,
          inner.hold({
            idempotencyKey: `${carve.id}:${suffix}` as IdempotencyKey,
            projectId: carve.projectId,
            amount: carve.amount as Hold["amount"],
            expiresAt: carve.expiresAt
          })
        ).pipe(
          Effect.retry({ times: 3, while: (e) => e._tag === "LedgerUnavailable" }),
          Effect.map((r): HoldId | undefined => r.hold.id),
          Effect.orElseSucceed(() => undefined)
        )
      // During a withdrawal (perhaps another process's, which sees only the store) the calls take
      // their holds while the lease still reserves its credit, so the store never shows that credit
      // free in between: the withdrawal would take it and the calls would go unpaid. Otherwise, and
      // for a call the wallet cannot fund meanwhile, the lease settles first (a call that tried
      // already tries again under a key of its own: a refusal replays).
      const holdFirst = lease.wallet.withdrawing > 0
      const unfunded: Array<Carve> = holdFirst ? [] : calls
      const first = Effect.forEach(calls, (carve) =>
        Effect.flatMap(holdOf(carve, "exact"), (id) =>
          id === undefined
            ? Effect.sync(() => void unfunded.push(carve))
            : Effect.asVoid(Deferred.succeed(carve.exact!, id))), { concurrency: "unbounded", discard: true })
      const rest = Effect.zipRight(
        Effect.either(Deferred.await(lease.settled)),
        Effect.forEach(
          unfunded,
          (carve) =>
            Effect.flatMap(holdOf(carve, holdFirst ? "exact-after" : "exact"), (id) =>
              Deferred.succeed(carve.exact!, id)),
          { concurrency: "unbounded", discard: true }
        )
      )
      return holdFirst
        ? fork(Effect.zipRight(first, Effect.zipRight(afterResolve(lease), rest)))
        : Effect.zipRight(afterResolve(lease), fork(rest))
    }

    /** An open lease of the wallet that can take `need` more credit, opening one if there is none. */
    const successor = (
      wallet: Wallet,
      need: number,
      latest: number
    ): Effect.Effect<Lease | undefined, LedgerUnavailable | IdempotencyConflict | InvalidLedgerRequest> =>
      Effect.suspend(() => {
        const now = Date.now()
        const open = wallet.open
        if (open !== undefined && suits(open, need, latest)) {
          return Effect.succeed(open)
        }
        const next = wallet.next
        if (next !== undefined && suits(next, need, latest)) {
          return Effect.succeed(promote(wallet, next))
        }
        if (isExact(wallet, now)) {
          return Effect.succeed(undefined)
        }
        if (wallet.opening !== undefined) {
          return Effect.zipRight(awaitOpening(wallet, wallet.opening), successor(wallet, need, latest))
        }
        if (open !== undefined) {
          close(open)
        }
        return Effect.zipRight(
          openLease(wallet, Math.max(1, Math.ceil(need / callsPerLease)), need, latest, now, false),
          Effect.sync(() =>
            wallet.open
          )
        )
      })

    /**
     * Opens a lease of `callsPerLease` calls of `unit` (and at least `need`), as the open lease or
     * as the standby; an unfunded lease puts the wallet on exact holds for a while.
     */
    const openLease = (
      wallet: Wallet,
      unit: number,
      need: number,
      latestExpiry: number,
      now: number,
      standby: boolean
    ) =>
      Effect.suspend(() => {
        // a standby is opened once, whoever asked first, and not once the wallet takes exact holds
        if (
          standby && (wallet.opening !== undefined || wallet.next !== undefined || isExact(wallet, Date.now()))
        ) return Effect.succeed(undefined)
        const opening = Deferred.unsafeMake<void>(FiberId.none)
        wallet.opening = opening
        const seq = ++leaseSeq
        const size = Math.min(Math.max(unit * callsPerLease, need), Number.MAX_SAFE_INTEGER)
        return inner.hold({
          idempotencyKey: `${leaseKeyPrefix}${instance}:${seq}` as IdempotencyKey,
          projectId: wallet.projectId,
          amount: size as Hold["amount"],
          expiresAt: Math.max(now + ttl, latestExpiry + SETTLE_MARGIN_MS)
        }).pipe(
          Effect.matchEffect({
            onFailure: (e) =>
              e._tag === "InsufficientCredit"
                ? Effect.sync(() => void (wallet.exactUntil = Math.max(wallet.exactUntil, Date.now() + exactFor)))
                : Effect.fail(e),
            onSuccess: (result) =>
              Effect.sync(() => {
                if (result.code === "created") moved(wallet.projectId, 0, -result.hold.amount, result.hold.amount)
                const lease: Lease = {
                  seq,
                  unit,
                  carved: 0,
                  hold: result.hold,
                  wallet,
                  remaining: result.hold.amount,
                  pending: new Set(),
                  captured: [],
                  open: true,
                  settling: false,
                  timer: false,
                  checking: false,
                  moving: false,
                  settled: Deferred.unsafeMake(FiberId.none),
                  answered: Deferred.unsafeMake(FiberId.none)
                }
                wallet.unsettled.add(lease)
                if (!standby) return promote(wallet, lease)
                wallet.next = lease
                return lease
              })
          }),
          Effect.ensuring(Effect.suspend(() => {
            if (wallet.opening === opening) wallet.opening = undefined
            return Deferred.succeed(opening, undefined)
          })),
          Effect.uninterruptible,
          // a standby the traffic did not come back for is given back soon
          Effect.tap((lease) =>
            lease === undefined || !standby ? Effect.void : fork(Effect.zipRight(
              Effect.sleep(Duration.millis(standbyIdleMs)),
              Effect.suspend(() => {
                if (wallet.next !== lease || lease.carved > 0) return Effect.void
                close(lease)
                return afterResolve(lease)
              })
            ))
          )
        )
      })

    const carve = (lease: Lease, request: HoldRequest, now: number): Carve => {
      lease.remaining -= request.amount
      lease.carved++
      const carved: Carve = {
        id: `${LOCAL_PREFIX}${instance}_${++carveSeq}` as HoldId,
        projectId: request.projectId,
        amount: request.amount,
        createdAt: now,
        expiresAt: request.expiresAt,
        lease,
        status: "pending",
        captured: 0,
        payees: [],
        captureKey: undefined,
        resolvedAt: undefined,
        transaction: undefined,
        exact: undefined
      }
      lease.pending.add(carved)
      carves.set(carved.id, carved)
      return carved
    }

    const exact = (request: HoldRequest) => thenForget(request.projectId, inner.hold(request))

    type Reserved = Effect.Effect<HoldResult, Effect.Effect.Error<ReturnType<Service["hold"]>>>
    /** A hold for `request` at `now`: carved from an open lease when one suits, else after one opens. */
    const reserveAt = (request: HoldRequest, now: number): Reserved => {
      const wallet = walletOf(request.projectId)
      if (isExact(wallet, now) || request.expiresAt + SETTLE_MARGIN_MS > now + ttl) return exact(request)
      const open = wallet.open
      if (open !== undefined && suits(open, request.amount, request.expiresAt)) {
        return Effect.succeed({ code: "created" as const, hold: carveHold(carve(open, request, now)) })
      }
      const next = wallet.next
      if (next !== undefined && suits(next, request.amount, request.expiresAt)) {
        promote(wallet, next)
        const carved = carve(next, request, now)
        const retire = open !== undefined && open.pending.size === 0 ? afterResolve(open) : Effect.void
        return Effect.as(retire, { code: "created" as const, hold: carveHold(carved) })
      }
      if (open !== undefined) {
        close(open)
        if (open.pending.size === 0 && !open.settling) {
          return Effect.zipRight(afterResolve(open), reserve(request))
        }
      }
      if (wallet.opening !== undefined) {
        return Effect.zipRight(awaitOpening(wallet, wallet.opening), reserve(request))
      }
      return Effect.zipRight(
        openLease(wallet, request.amount, request.amount, request.expiresAt, now, false),
        reserve(request)
      )
    }
    const reserve = (request: HoldRequest): Reserved =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => reserveAt(request, now))

    const hold: Service["hold"] = (request) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const malformed = LedgerValidation.hold(request, now)
        if (Option.isSome(malformed)) return Effect.fail(malformed.value)
        return remember(
          JSON.stringify(["hold", request.projectId, request.amount, request.expiresAt]),
          request,
          Effect.suspend(() => reserveAt(request, now))
        )
      })

    const notFound = (holdId: HoldId) => new HoldNotFound({ code: "hold_not_found", holdId })
    const isLocal = (holdId: HoldId) => holdId.startsWith(LOCAL_PREFIX)

    const onCarve = (carve: Carve, error: HoldAlreadyResolved | HoldNotFound | LedgerUnavailable) =>
      error._tag === "HoldAlreadyResolved"
        ? new HoldAlreadyResolved({ code: error.code, holdId: carve.id })
        : error._tag === "HoldNotFound"
        ? new HoldAlreadyResolved({ code: "hold_expired", holdId: carve.id })
        : error

    const awaitSettled = (carve: Carve, amount: number, again = false) =>
      (again
        ? Deferred.await(carve.lease.settled).pipe(Effect.timeoutFail({
          duration: Duration.millis(captureTimeout),
          onTimeout: () => new LedgerUnavailable({ message: "the capture was not settled in time; it still may be" })
        }))
        : Deferred.await(carve.lease.answered)).pipe(
          Effect.mapError((e) => onCarve(carve, e)),
          Effect.map((transaction): CaptureResult => ({
            code: "created",
            hold: carveHold(carve),
            transaction,
            released: (carve.amount - amount) as CaptureResult["released"]
          }))
        )

    /** The store's answer about a detached call's own hold, told about the call. */
    const asCarve = (carve: Carve, stored: Hold, transaction?: Transaction): Hold => {
      carve.status = stored.status
      carve.captured = stored.captured ?? 0
      carve.resolvedAt = stored.resolvedAt
      if (transaction !== undefined) carve.transaction = transaction
      return carveHold(carve)
    }
    const unfunded = (carve: Carve) => new HoldAlreadyResolved({ code: "hold_expired", holdId: carve.id })
    const storeError = <E extends { readonly _tag: string }>(carve: Carve, e: E) =>
      e._tag === "HoldNotFound" ? unfunded(carve) : e._tag === "HoldAlreadyResolved"
        ? new HoldAlreadyResolved({ code: (e as unknown as HoldAlreadyResolved).code, holdId: carve.id })
        : e

    const captureExact = (carve: Carve, exact: Deferred.Deferred<HoldId | undefined>, request: CaptureRequest) =>
      Effect.flatMap(Deferred.await(exact), (holdId) =>
        holdId === undefined
          ? Effect.fail(unfunded(carve))
          : thenForget(carve.projectId, inner.capture({ ...request, holdId })).pipe(
            Effect.mapError((e) => storeError(carve, e)),
            Effect.map((r): CaptureResult => ({ ...r, code: "created", hold: asCarve(carve, r.hold, r.transaction) }))
          ))

    const voidExact = (carve: Carve, exact: Deferred.Deferred<HoldId | undefined>) =>
      Effect.flatMap(Deferred.await(exact), (holdId) =>
        holdId === undefined
          ? Effect.fail(unfunded(carve))
          : thenForget(carve.projectId, inner.void({ idempotencyKey: `${carve.id}:void` as IdempotencyKey, holdId }))
            .pipe(
              Effect.mapError((e) => storeError(carve, e)),
              Effect.map((r): VoidResult => ({ code: "created", hold: asCarve(carve, r.hold) }))
            ))

    const captureCarve = (carve: Carve, request: CaptureRequest) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<
        CaptureResult,
        LedgerWriteError | HoldAlreadyResolved | HoldNotFound | CaptureExceedsHold
      > => {
        if (carve.exact !== undefined) return captureExact(carve, carve.exact, request)
        // the same capture again after its wait timed out: wait for the same settlement
        if (carve.status === "captured" && carve.captureKey === request.idempotencyKey) {
          return awaitSettled(carve, request.amount, true)
        }
        if (carve.status === "pending" && now >= carve.expiresAt) {
          expireOverdue(carve.lease, now)
          return Effect.zipRight(
            afterResolve(carve.lease),
            Effect.fail(new HoldAlreadyResolved({ code: "hold_expired", holdId: carve.id }))
          )
        }
        const moved = HoldTransition.transition(stateOf(carve), { _tag: "capture", amount: request.amount }, now)
        if (Either.isLeft(moved)) return Effect.fail(moved.left)
        const lease = carve.lease
        // a pending call always belongs to a lease that has not begun settling: its capture must be in it
        if (lease.settling) return Effect.dieMessage(`call ${carve.id} is pending in a lease that is settling`)
        carve.status = "captured"
        carve.captured = request.amount
        carve.payees = request.payees
        carve.captureKey = request.idempotencyKey
        carve.resolvedAt = now
        lease.pending.delete(carve)
        if (request.amount > 0) lease.captured.push(carve)
        const next = afterResolve(lease)
        if (request.amount === 0) {
          return Effect.as(next, {
            code: "created" as const,
            hold: carveHold(carve),
            transaction: undefined,
            released: carve.amount as CaptureResult["released"]
          })
        }
        return Effect.zipRight(next, awaitSettled(carve, request.amount))
      })

    const capture: Service["capture"] = (request) =>
      Effect.suspend(() => {
        const carve = carves.get(request.holdId)
        if (carve === undefined) {
          return isLocal(request.holdId)
            ? Effect.fail(notFound(request.holdId))
            : Effect.tap(inner.capture(request), (r) => Effect.sync(() => forget(r.hold.projectId)))
        }
        const malformed = LedgerValidation.capture(request)
        if (Option.isSome(malformed)) return Effect.fail(malformed.value)
        return remember(
          JSON.stringify(["capture", request.holdId, request.amount, request.payees.map((p) => [p.account, p.amount])]),
          request,
          captureCarve(carve, request)
        )
      })

    const voidCarve = (carve: Carve) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now): Effect.Effect<VoidResult, HoldAlreadyResolved | HoldNotFound | LedgerWriteError> => {
          if (carve.exact !== undefined) return voidExact(carve, carve.exact)
          const moved = HoldTransition.transition(stateOf(carve), { _tag: "void" }, now)
          if (Either.isLeft(moved)) {
            if (carve.status === "pending") {
              expireOverdue(carve.lease, now)
              return Effect.zipRight(afterResolve(carve.lease), Effect.fail(moved.left))
            }
            return Effect.fail(moved.left)
          }
          carve.status = "voided"
          carve.resolvedAt = now
          carve.lease.pending.delete(carve)
          return Effect.as(
            afterResolve(carve.lease),
            { code: "created" as const, hold: carveHold(carve) } as VoidResult
          )
        }
      )

    const voidHold: Service["void"] = (request: VoidRequest) =>
      Effect.suspend(() => {
        const carve = carves.get(request.holdId)
        if (carve === undefined) {
          return isLocal(request.holdId)
            ? Effect.fail(notFound(request.holdId))
            : Effect.tap(inner.void(request), (r) => Effect.sync(() => forget(r.hold.projectId)))
        }
        return remember(JSON.stringify(["void", request.holdId]), request, voidCarve(carve))
      })

    const getHold: Service["getHold"] = (holdId) =>
      Effect.suspend(() => {
        const carve = carves.get(holdId)
        if (carve !== undefined) return Effect.succeed(carveHold(carve))
        return isLocal(holdId) ? Effect.fail(notFound(holdId)) : inner.getHold(holdId)
      })

    /**
     * Balances are read from the store at most once per `balanceTtlMs` per wallet: this process's
     * own writes are applied to the last reading as they happen, so a read is stale only by what
     * other processes did since (a top-up by another process shows within `balanceTtlMs`).
     */
    interface Snapshot {
      balance: Balance
      readonly at: number
    }
    const snapshots = new Map<ProjectId, Snapshot>()
    /** Bumped by every write of this process to the wallet, so that a reading taken across one is not kept. */
    const versions = new Map<ProjectId, number>()
    const bump = (projectId: ProjectId) => {
      // bounded: past this many wallets start afresh (a reading in flight may then be kept though
      // one write older, for at most `balanceTtlMs`)
      if (versions.size >= 100_000) {
        versions.clear()
        snapshots.clear()
      }
      versions.set(projectId, (versions.get(projectId) ?? 0) + 1)
    }
    const forget = (projectId: ProjectId) => {
      bump(projectId)
      snapshots.delete(projectId)
    }
    const thenForget = <A, E>(projectId: ProjectId, write: Effect.Effect<A, E>) =>
      Effect.ensuring(write, Effect.sync(() => forget(projectId)))
    const moved = (projectId: ProjectId, balanceDelta: number, availableDelta: number, pendingDelta: number) => {
      bump(projectId)
      const snapshot = snapshots.get(projectId)
      if (snapshot === undefined) return
      const b = snapshot.balance
      snapshot.balance = {
        ...b,
        balance: (b.balance + balanceDelta) as Balance["balance"],
        available: (b.available + availableDelta) as Balance["available"],
        pending: (b.pending + pendingDelta) as Balance["pending"]
      }
    }
    /** The wallet's leases whose settlement is in flight: a store read may or may not see it. */
    const settlingOf = (projectId: ProjectId) =>
      [...(wallets.get(projectId)?.unsettled ?? [])].filter((lease) => lease.settling)

    /**
     * Reads the store's balance at a moment no settlement of the wallet is in flight, so that the
     * leases counted below are exactly those the reading still shows as holds (a settlement that
     * committed during the read would otherwise be counted twice). Settlements take milliseconds;
     * after three tries the last reading is used.
     */
    const readStore = (projectId: ProjectId, tries: number): Effect.Effect<Balance, LedgerUnavailable> =>
      Effect.suspend(() => {
        return Effect.forEach(settlingOf(projectId), (lease) => Effect.either(Deferred.await(lease.settled)), {
          discard: true
        }).pipe(
          Effect.zipRight(Effect.suspend(() => {
            const start = versions.get(projectId) ?? 0
            const now = Date.now()
            return Effect.flatMap(inner.balance(projectId), (b) =>
              Effect.suspend(() => {
                const moved = (versions.get(projectId) ?? 0) !== start || settlingOf(projectId).length > 0
                if (moved && tries > 1) return readStore(projectId, tries - 1)
                if (!moved && balanceTtl > 0) {
                  if (snapshots.size >= 10_000) snapshots.clear()
                  snapshots.set(projectId, { balance: b, at: now })
                }
                return Effect.succeed(b)
              }))
          }))
        )
      })

    /**
     * Store readings in flight, per wallet: concurrent calls that find no fresh snapshot share one
     * reading instead of each reading the store (on a busy wallet dozens of calls missed it at
     * once, each with up to three tries). A shared reading shows every write of this process
     * that ended before it did (one during it makes it read again), which is all a reading of a
     * joining call's own would add. It is uninterruptible, so that its first caller going away
     * does not take the others' answer with it; it lasts a store read.
     */
    const reading = new Map<ProjectId, Deferred.Deferred<Balance, LedgerUnavailable>>()
    const storeBalance = (projectId: ProjectId): Effect.Effect<Balance, LedgerUnavailable> =>
      Effect.suspend(() => {
        const snapshot = snapshots.get(projectId)
        if (snapshot !== undefined && Date.now() - snapshot.at < balanceTtl) return Effect.succeed(snapshot.balance)
        const shared = reading.get(projectId)
        if (shared !== undefined) return Deferred.await(shared)
        const done = Deferred.unsafeMake<Balance, LedgerUnavailable>(FiberId.none)
        reading.set(projectId, done)
        return readStore(projectId, 3).pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              if (reading.get(projectId) === done) reading.delete(projectId)
              return Deferred.done(done, exit)
            })
          ),
          Effect.uninterruptible
        )
      })

    /**
     * The store's balance as if each of this process's calls had a hold of its own in the store:
     * what its leases reserve beyond their calls in flight and their captures being settled counts
     * as available.
     */
    const balance: Service["balance"] = (projectId) =>
      Effect.map(storeBalance(projectId), (b): Balance => {
        const wallet = wallets.get(projectId)
        if (wallet === undefined) return b
        let free = 0
        for (const lease of wallet.unsettled) {
          let used = 0
          for (const carve of lease.pending) used += carve.amount
          for (const carve of lease.captured) used += carve.amount
          free += lease.hold.amount - used
        }
        return free === 0 ? b : {
          ...b,
          available: (b.available + free) as Balance["available"],
          pending: (b.pending - free) as Balance["pending"]
        }
      })

    /** Expires calls past their deadline and retires idle or ageing leases. */
    const sweep = Effect.suspend(() => {
      const now = Date.now()
      const work: Array<Effect.Effect<void>> = []
      for (const wallet of wallets.values()) {
        for (const lease of wallet.unsettled) {
          if (lease.settling) continue
          expireOverdue(lease, now)
          if (lease.open && now + ttl / 2 > lease.hold.expiresAt) close(lease)
          if (lease.pending.size === 0) work.push(afterResolve(lease))
        }
        forgetIfIdle(wallet, now)
      }
      return Effect.all(work, { discard: true })
    })
    yield* fork(Effect.repeat(sweep, Schedule.spaced("1 second")).pipe(Effect.asVoid))

    /**
     * Closes the wallet's leases and waits until they have settled. Each settles once its calls
     * have resolved or, with `moveCalls`, at once, its calls in flight moved to another lease or
     * (the wallet taking exact holds) to holds of their own.
     */
    const closeAndSettle = (wallet: Wallet, moveCalls: boolean): Effect.Effect<void> =>
      Effect.suspend(() => {
        const leases = [...wallet.unsettled]
        const work: Array<Effect.Effect<void>> = []
        for (const lease of leases) {
          close(lease)
          if (moveCalls) work.push(rotate(lease))
          else if (lease.pending.size === 0) work.push(afterResolve(lease))
        }
        return Effect.zipRight(
          Effect.all(work, { discard: true }),
          Effect.all(leases.map((lease) => Effect.either(Deferred.await(lease.settled))), {
            concurrency: "unbounded",
            discard: true
          })
        )
      })

    // on shutdown: no new carves, and every lease settles once its calls have resolved
    yield* Effect.addFinalizer(() =>
      Effect.all([...wallets.values()].map((wallet) => closeAndSettle(wallet, false)), {
        concurrency: "unbounded",
        discard: true
      }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )

    /**
     * Before a withdrawal (a refund, a dispute, an adjustment): this process's leases of the wallet
     * give their unspent credit back first, so that the withdrawal sees the wallet's credit and not
     * what leases happened to reserve (a refund would otherwise reclaim that much from the payees).
     * The wallet takes exact holds and opens no lease until the withdrawal ends; calls still in
     * flight are moved to exact holds of their own (see `detach`). Bounded: after
     * `captureTimeoutMs` the withdrawal goes ahead anyway.
     */
    const returnLeases = (wallet: Wallet): Effect.Effect<void> =>
      Effect.suspend(() => {
        // a lease being opened is waited for, then settled with the others (no new one opens now)
        const opening = wallet.opening === undefined ? Effect.void : Deferred.await(wallet.opening)
        return Effect.zipRight(
          opening,
          Effect.suspend(() => {
            const inFlight = [...wallet.unsettled].flatMap((lease) => [...lease.pending])
            return Effect.zipRight(
              closeAndSettle(wallet, true),
              // and the calls in flight hold their own credit before the withdrawal takes the rest
              Effect.suspend(() =>
                Effect.all(
                  inFlight.flatMap((carve) => carve.exact === undefined ? [] : [Deferred.await(carve.exact)]),
                  { concurrency: "unbounded", discard: true }
                )
              )
            )
          })
        ).pipe(Effect.timeout(Duration.millis(captureTimeout)), Effect.ignore)
      })

    // another process is about to withdraw from a wallet: give its leases back as for a withdrawal
    // of our own, and open none for a while (its withdrawal waits, bounded, for them to settle)
    const returnWindow = options.returnWindowMs ?? 5_000
    if (options.returnRequests !== undefined) {
      const onRequest = (projectId: ProjectId) =>
        Effect.suspend(() => {
          const wallet = walletOf(projectId)
          wallet.withdrawing++
          return fork(
            Effect.zipRight(returnLeases(wallet), Effect.sleep(Duration.millis(returnWindow))).pipe(
              Effect.ensuring(Effect.sync(() => {
                wallet.withdrawing--
                forgetIfIdle(wallet, Date.now())
              }))
            )
          )
        })
      yield* fork(
        options.returnRequests.pipe(
          Stream.runForEach(onRequest),
          Effect.tapErrorCause((cause) =>
            Effect.logWarning("lease return requests: listening failed; retrying", cause)
          ),
          Effect.retry(Schedule.spaced(Duration.seconds(1))),
          Effect.ignore
        )
      )
    }

    /** A withdrawal with this process's leases of the wallet given back first; no lease opens until it ends. */
    const withdraw: Service["withdraw"] = (request) =>
      Effect.suspend(() => {
        const wallet = walletOf(request.projectId)
        wallet.withdrawing++
        return Effect.zipRight(returnLeases(wallet), thenForget(request.projectId, inner.withdraw(request))).pipe(
          Effect.ensuring(Effect.sync(() => {
            wallet.withdrawing--
            forgetIfIdle(wallet, Date.now())
          }))
        )
      })

    const forgetAll = <A, E>(write: Effect.Effect<A, E>) =>
      Effect.ensuring(
        write,
        Effect.sync(() => {
          snapshots.clear()
          for (const projectId of versions.keys()) bump(projectId)
        })
      )

    return Ledger.of({
      ...inner,
      grant: (request) => thenForget(request.projectId, inner.grant(request)),
      withdraw,
      expireHolds: (now) => forgetAll(inner.expireHolds(now)),
      expireGrants: (now) => forgetAll(inner.expireGrants(now)),
      pruneReplays: (before) => inner.pruneReplays(before),
      hold,
      capture,
      void: voidHold,
      getHold,
      balance
    })
  })

/** Wraps the ledger `inner` provides in leases. */
export const LeasedLedgerLive = (options: LeaseOptions = {}) => <E, R>(inner: L.Layer<Ledger, E, R>) =>
  Layer.scoped(Ledger, Effect.flatMap(Ledger, (ledger) => makeLeasedLedger(ledger, options))).pipe(
    Layer.provide(inner)
  )
