import type {
  AccountId,
  Allocation,
  Balance,
  CaptureRequest,
  CaptureResult,
  Credits,
  GrantId,
  GrantRequest,
  GrantResult,
  HoldId,
  HoldRequest,
  HoldResult,
  IdempotencyKey,
  ProjectId,
  SweepResult,
  TransactionId,
  TransactionKind,
  VoidRequest,
  VoidResult,
  WithdrawRequest,
  WithdrawResult
} from "@tollgate/core"
import {
  DrawDown,
  expiredAccount,
  Fingerprint,
  Grant,
  Hold,
  HoldNotFound,
  HoldTransition,
  IdempotencyConflict,
  InsufficientCredit,
  InvalidLedgerRequest,
  isBalanced,
  Ledger,
  LedgerValidation,
  Reclaim,
  sourceAccount,
  Transaction,
  walletAccount
} from "@tollgate/core"
import type { Entry } from "@tollgate/core"
import { Clock, Effect, Either, Layer, Option } from "effect"

type Outcome<A, E> = Either.Either<A, E>

/**
 * The ledger in process memory. Every write runs as one synchronous block between reading the
 * clock and returning, so fibers interleave only between whole writes: the same atomicity a
 * database transaction per write gives.
 */
export const makeMemoryLedger = Effect.sync(() => {
  const grants = new Map<GrantId, Grant>()
  const lotsOf = new Map<ProjectId, Set<GrantId>>()
  const holds = new Map<HoldId, Hold>()
  const pendingOf = new Map<ProjectId, number>()
  const journal = new Map<ProjectId, Array<Transaction>>()
  const transactions = new Map<TransactionId, Transaction>()
  /** Per lot: what refunds accounted for of its spending (reclaimed from payees or carried by other lots). */
  const refundsOf = new Map<GrantId, Reclaim.LotRefunds>()
  const balances = new Map<AccountId, bigint>()
  const remembered = new Map<
    IdempotencyKey,
    { readonly fingerprint: string; readonly outcome: Outcome<unknown, unknown>; readonly at: number }
  >()
  let sequence = 0
  const nextId = (prefix: string) => `${prefix}_${(++sequence).toString(36).padStart(8, "0")}`

  const lots = (project: ProjectId): Array<Grant> => [...(lotsOf.get(project) ?? [])].map((id) => grants.get(id)!)

  const adjustLot = (allocation: Allocation, delta: number) => {
    const lot = grants.get(allocation.grantId)!
    grants.set(lot.id, new Grant({ ...lot, remaining: (lot.remaining + delta) as Credits }))
  }

  const adjustPending = (project: ProjectId, delta: number) =>
    pendingOf.set(project, (pendingOf.get(project) ?? 0) + delta)

  const post = (
    key: IdempotencyKey,
    kind: TransactionKind,
    projectId: ProjectId,
    now: number,
    entries: ReadonlyArray<Entry>,
    reason?: string
  ): Transaction => {
    if (!isBalanced(entries)) throw new Error(`unbalanced transaction ${kind} ${key}`)
    const transaction = new Transaction({
      id: nextId("txn") as TransactionId,
      idempotencyKey: key,
      kind,
      projectId,
      createdAt: now,
      entries,
      ...(reason === undefined ? {} : { reason })
    })
    for (const e of entries) balances.set(e.account, (balances.get(e.account) ?? 0n) + BigInt(e.amount))
    const list = journal.get(projectId) ?? []
    list.push(transaction)
    journal.set(projectId, list)
    transactions.set(transaction.id, transaction)
    return transaction
  }

  const entry = (account: AccountId, amount: number): Entry => ({ account, amount: amount as Entry["amount"] })

  /**
   * Same key and same request: the first outcome again (a success as "exists", a refusal as the
   * same refusal). Same key, other request: conflict. Malformed requests are not remembered.
   */
  const idempotent = <A extends { readonly code: "created" | "exists" }, E>(
    operation: string,
    request: { readonly idempotencyKey: IdempotencyKey },
    now: number,
    run: () => Outcome<A, E>
  ): Outcome<A, E | IdempotencyConflict> => {
    const print = Fingerprint.fingerprint(operation, request)
    const prior = remembered.get(request.idempotencyKey)
    if (prior !== undefined) {
      if (prior.fingerprint !== print) {
        return Either.left(
          new IdempotencyConflict({ code: "exists_with_different_request", idempotencyKey: request.idempotencyKey })
        )
      }
      const first = prior.outcome as Outcome<A, E>
      return Either.map(first, (result) => ({ ...result, code: "exists" as const }))
    }
    const outcome = run()
    if (Either.isRight(outcome) || !(outcome.left instanceof InvalidLedgerRequest)) {
      remembered.set(request.idempotencyKey, { fingerprint: print, outcome, at: now })
    }
    return outcome
  }

  const insufficient = (
    request: { readonly projectId: ProjectId; readonly amount: number },
    projectLots: ReadonlyArray<Grant>,
    now: number
  ) =>
    Either.left(
      new InsufficientCredit({
        code: "insufficient_credit",
        projectId: request.projectId,
        requested: request.amount,
        available: DrawDown.available(projectLots, now)
      })
    )

  const atomically = <A, E>(f: (now: number) => Outcome<A, E>): Effect.Effect<A, E> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.suspend(() => f(now)))

  const grant = (request: GrantRequest) =>
    atomically((now) =>
      idempotent("grant", request, now, (): Outcome<GrantResult, InvalidLedgerRequest> => {
        const malformed = LedgerValidation.grant(request, now)
        if (Option.isSome(malformed)) return Either.left(malformed.value)
        const lot = new Grant({
          id: nextId("grant") as GrantId,
          projectId: request.projectId,
          source: request.source,
          amount: request.amount,
          remaining: request.amount,
          createdAt: now,
          ...(request.expiresAt === undefined ? {} : { expiresAt: request.expiresAt })
        })
        grants.set(lot.id, lot)
        lotsOf.set(request.projectId, (lotsOf.get(request.projectId) ?? new Set()).add(lot.id))
        const transaction = post(request.idempotencyKey, "grant", request.projectId, now, [
          entry(sourceAccount(request.source), -request.amount),
          entry(walletAccount(request.projectId), request.amount)
        ], request.reason)
        return Either.right({ code: "created", grant: lot, transaction })
      })
    )

  const hold = (request: HoldRequest) =>
    atomically((now) =>
      idempotent("hold", request, now, (): Outcome<HoldResult, InvalidLedgerRequest | InsufficientCredit> => {
        const malformed = LedgerValidation.hold(request, now)
        if (Option.isSome(malformed)) return Either.left(malformed.value)
        const projectLots = lots(request.projectId)
        const allocations = DrawDown.allocate(projectLots, request.amount, now)
        if (Option.isNone(allocations)) return insufficient(request, projectLots, now)
        for (const a of allocations.value) adjustLot(a, -a.amount)
        adjustPending(request.projectId, request.amount)
        const created = new Hold({
          id: nextId("hold") as HoldId,
          projectId: request.projectId,
          amount: request.amount,
          status: "pending",
          allocations: allocations.value,
          createdAt: now,
          expiresAt: request.expiresAt
        })
        holds.set(created.id, created)
        return Either.right({ code: "created", hold: created })
      })
    )

  /** Resolves a pending hold: consumed allocations stay spent, released ones return to their lots. */
  const resolve = (
    held: Hold,
    status: Hold["status"],
    captured: number,
    now: number,
    transactionId?: TransactionId
  ) => {
    const { released } = DrawDown.splitAllocations(held.allocations, captured)
    for (const a of released) adjustLot(a, a.amount)
    adjustPending(held.projectId, -held.amount)
    const resolved = new Hold({
      ...held,
      status,
      resolvedAt: now,
      ...(status === "captured" ? { captured: captured as Credits } : {}),
      ...(transactionId === undefined ? {} : { transactionId })
    })
    holds.set(held.id, resolved)
    return { resolved, released: DrawDown.sumAllocations(released) as Credits }
  }

  const findHold = (holdId: HoldId): Outcome<Hold, HoldNotFound> => {
    const found = holds.get(holdId)
    return found === undefined ? Either.left(new HoldNotFound({ code: "hold_not_found", holdId })) : Either.right(found)
  }

  const capture = (request: CaptureRequest) =>
    atomically((now) =>
      idempotent("capture", request, now, () =>
        Either.gen(function*() {
          const malformed = LedgerValidation.capture(request)
          if (Option.isSome(malformed)) return yield* Either.left(malformed.value)
          const held = yield* findHold(request.holdId)
          yield* HoldTransition.transition(held, { _tag: "capture", amount: request.amount }, now)
          const transaction = request.amount === 0 ? undefined : post(
            request.idempotencyKey,
            "capture",
            held.projectId,
            now,
            [
              entry(walletAccount(held.projectId), -request.amount),
              ...request.payees.filter((p) => p.amount > 0).map((p) => entry(p.account, p.amount))
            ]
          )
          const { released, resolved } = resolve(held, "captured", request.amount, now, transaction?.id)
          return { code: "created" as const, hold: resolved, transaction, released } satisfies CaptureResult
        }))
    )

  const voidHold = (request: VoidRequest) =>
    atomically((now) =>
      idempotent("void", request, now, () =>
        Either.gen(function*() {
          const held = yield* findHold(request.holdId)
          yield* HoldTransition.transition(held, { _tag: "void" }, now)
          return { code: "created" as const, hold: resolve(held, "voided", 0, now).resolved } satisfies VoidResult
        }))
    )

  /** The calls captured against a project's holds, with who each paid (its capture's credit legs). */
  const capturedCalls = function*(projectId: ProjectId): Generator<Reclaim.CapturedCall> {
    for (const held of holds.values()) {
      if (held.projectId !== projectId || held.status !== "captured" || held.transactionId === undefined) continue
      const payees = transactions.get(held.transactionId)!.entries.filter((e) => e.amount > 0)
      yield { allocations: held.allocations, captured: held.captured ?? 0, payees }
    }
  }

  /** The project's lot a withdrawal refunds: the grant made under `key`, when there is one. */
  const refundedLot = (projectId: ProjectId, key: IdempotencyKey | undefined): Grant | undefined => {
    const prior = key === undefined ? undefined : remembered.get(key)?.outcome
    const lot = prior === undefined || Either.isLeft(prior) ? undefined : (prior.right as Partial<GrantResult>).grant
    return lot === undefined || lot.projectId !== projectId ? undefined : lot
  }

  const withdraw = (request: WithdrawRequest) =>
    atomically((now) =>
      idempotent("withdraw", request, now, (): Outcome<WithdrawResult, InvalidLedgerRequest | InsufficientCredit> => {
        const malformed = LedgerValidation.withdraw(request)
        if (Option.isSome(malformed)) return Either.left(malformed.value)
        const projectLots = lots(request.projectId)
        const lot = refundedLot(request.projectId, request.reclaimSpentOf)
        const allocations = DrawDown.allocate(projectLots, request.amount, now, request.partial === true, lot?.id)
        if (Option.isNone(allocations)) return insufficient(request, projectLots, now)
        for (const a of allocations.value) adjustLot(a, -a.amount)
        const withdrawn = DrawDown.sumAllocations(allocations.value)
        const plan = lot === undefined ? undefined : Reclaim.refund(
          lot.id,
          allocations.value,
          request.amount - withdrawn,
          (id) => refundsOf.get(id) ?? Reclaim.noRefunds,
          (id) => Reclaim.lotSpending(id, capturedCalls(request.projectId))
        )
        for (const [id, state] of plan?.lots ?? []) refundsOf.set(id, state)
        const legs = plan?.legs ?? []
        const reclaimed = legs.reduce((sum, leg) => sum + leg.amount, 0)
        const transaction = withdrawn + reclaimed === 0 ? undefined : post(
          request.idempotencyKey,
          "withdraw",
          request.projectId,
          now,
          [
            entry(walletAccount(request.projectId), -withdrawn),
            ...legs.map((leg) => entry(leg.account, -leg.amount)),
            entry(request.to, withdrawn + reclaimed)
          ].filter((e) => e.amount !== 0),
          request.reason
        )
        return Either.right({
          code: "created",
          withdrawn: withdrawn as Credits,
          reclaimed: reclaimed as Credits,
          transaction
        })
      })
    )

  const pruneReplays = (before: number) =>
    Effect.sync(() => {
      let count = 0
      for (const [key, { at, fingerprint }] of remembered) {
        if (at < before && Fingerprint.isCallReplay(fingerprint)) {
          remembered.delete(key)
          count++
        }
      }
      return count
    })

  const expireHolds = (now: number) =>
    Effect.sync((): SweepResult => {
      let count = 0
      let amount = 0
      for (const held of holds.values()) {
        if (held.status !== "pending" || Either.isLeft(HoldTransition.transition(held, { _tag: "expire" }, now))) {
          continue
        }
        resolve(held, "expired", 0, now)
        count++
        amount += held.amount
      }
      return { count, amount: amount as Credits }
    })

  const expireGrants = (now: number) =>
    Effect.sync((): SweepResult => {
      let count = 0
      let amount = 0
      for (const lot of grants.values()) {
        if (lot.remaining === 0 || DrawDown.isLive(lot, now)) continue
        post(
          `expire_grant:${lot.id}:${sequence}` as IdempotencyKey,
          "expire_grant",
          lot.projectId,
          now,
          [entry(walletAccount(lot.projectId), -lot.remaining), entry(expiredAccount, lot.remaining)],
          `lot ${lot.id} expired`
        )
        grants.set(lot.id, new Grant({ ...lot, remaining: 0 as Credits }))
        count++
        amount += lot.remaining
      }
      return { count, amount: amount as Credits }
    })

  const balance = (projectId: ProjectId) =>
    Effect.map(Clock.currentTimeMillis, (now): Balance => ({
      projectId,
      balance: Number(balances.get(walletAccount(projectId)) ?? 0n) as Credits,
      available: DrawDown.available(lots(projectId), now) as Credits,
      pending: (pendingOf.get(projectId) ?? 0) as Credits
    }))

  return Ledger.of({
    grant,
    hold,
    capture,
    void: voidHold,
    withdraw,
    expireHolds,
    expireGrants,
    pruneReplays,
    balance,
    getHold: (holdId) => Effect.suspend(() => findHold(holdId)),
    grants: (projectId) => Effect.sync(() => lots(projectId).sort(DrawDown.drawOrder)),
    history: (projectId, page) =>
      Effect.sync(() => {
        const all = journal.get(projectId) ?? []
        const end = page.cursor === undefined ? all.length : Math.min(Number.parseInt(page.cursor, 10) || 0, all.length)
        const start = Math.max(0, end - page.limit)
        return {
          transactions: all.slice(start, end).reverse(),
          nextCursor: start > 0 ? String(start) : undefined
        }
      }),
    trialBalance: Effect.sync(() => new Map(balances)),
    accountBalance: (account) => Effect.sync(() => balances.get(account) ?? 0n)
  })
})

export const MemoryLedgerLive = Layer.effect(Ledger, makeMemoryLedger)
