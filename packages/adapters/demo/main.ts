/**
 * The embedded demo: every port in memory, the default catalog seeded, and a handful of calls
 * through the request path, so the behaviour can be seen without a database or a network.
 */
import type { RequestId, Ticket } from "@tollgate/core"
import { Billing, demoContributor, earningsAccount, Gateway, KeyIssuer, Ledger, seedDemoCatalog } from "@tollgate/core"
import { Clock, Console, Effect, Layer } from "effect"
import { MemoryStackLive } from "../src/memory/MemoryStack.js"

const UseCases = Layer.mergeAll(Gateway.Default, Billing.Default, KeyIssuer.Default).pipe(
  Layer.provideMerge(MemoryStackLive)
)

let requests = 0
const request = (secret: string, method: string, url: string) => {
  const parsed = new URL(url, "http://localhost")
  return {
    requestId: `req_${++requests}` as RequestId,
    credential: secret,
    method,
    path: parsed.pathname,
    query: parsed.searchParams
  }
}

const describeTicket = (t: Ticket) =>
  `admitted: ${t.route.id} for ${t.project.id} (${t.plan.name}), price ${t.price}, hold ${t.hold?.id ?? "none"}`

const program = Effect.gen(function*() {
  const gateway = yield* Gateway
  const billing = yield* Billing
  const ledger = yield* Ledger
  const tenants = yield* seedDemoCatalog("http://127.0.0.1:4000", yield* Clock.currentTimeMillis)

  yield* Console.log("Tollgate embedded demo: every port in memory, nothing leaves this process.\n")
  const keys: Record<string, string> = {}
  for (const { plan, project } of tenants) {
    const { secret } = yield* (yield* KeyIssuer).issue(project.id, "test", { name: "demo" })
    keys[plan.id] = secret
    // top-ups arrive as provider events, applied once by id
    yield* billing.applyBillingEvent({
      id: `evt_topup_${project.id}` as any,
      provider: "sandbox",
      type: "sandbox.topup",
      createdAt: 0,
      payload: {
        action: { _tag: "CreditsPurchased", projectId: project.id, credits: 50, paymentId: `pay_${project.id}` }
      }
    })
    yield* Console.log(
      `${plan.name.padEnd(5)} project ${project.id}: key ${secret.slice(0, 12)}… (shown once), 50 credits`
    )
  }

  const attempt = (label: string, secret: string, method: string, url: string, upstreamStatus = 200) =>
    gateway.admit(request(secret, method, url)).pipe(
      Effect.flatMap((ticket) =>
        Console.log(`\n${label}\n  ${describeTicket(ticket)}`).pipe(
          Effect.zipRight(gateway.settle(ticket, { status: upstreamStatus, latencyMs: 3 })),
          Effect.flatMap((s) =>
            Console.log(
              `  upstream ${upstreamStatus} → ${s.outcome}, charged ${s.charged}, available ${
                s.balance?.available ?? "unknown"
              }`
            )
          )
        )
      ),
      Effect.catchAll((refusal) =>
        Console.log(`\n${label}\n  refused: ${refusal._tag} ${JSON.stringify({ ...refusal, _tag: undefined })}`)
      )
    )

  yield* attempt(
    "Basic queries a contributor's dataset (30 % goes to the contributor):",
    keys.basic!,
    "GET",
    "/api/datasets/weather-eu/rows?limit=5"
  )
  yield* attempt("Free tries a Basic category (the upsell path):", keys.free!, "GET", "/api/datasets/weather-eu/rows")
  yield* attempt("Basic tries a Pro-only export:", keys.basic!, "POST", "/api/export")
  yield* attempt("Pro exports; the upstream fails, so nothing is charged:", keys.pro!, "POST", "/api/export", 502)
  yield* attempt("Pro exports successfully:", keys.pro!, "POST", "/api/export")
  yield* attempt(
    "A mistyped key is rejected by its checksum, before any lookup:",
    keys.pro!.slice(0, -1) + "x",
    "GET",
    "/api/search"
  )
  for (let i = 1; i <= 3; i++) {
    yield* attempt(`Free search #${i} (limit: 2 per second):`, keys.free!, "GET", `/api/search?q=${i}`)
  }
  yield* attempt("Pro exports again:", keys.pro!, "POST", "/api/export")
  yield* attempt("…and once more, with 10 credits left (price 20):", keys.pro!, "POST", "/api/export")

  yield* Console.log("\nLedger (balances by account; they sum to zero):")
  const balances = yield* ledger.trialBalance
  let sum = 0n
  for (const [account, amount] of [...balances].sort(([a], [b]) => a.localeCompare(b))) {
    sum += amount
    yield* Console.log(`  ${account.padEnd(28)} ${amount.toString().padStart(6)}`)
  }
  yield* Console.log(`  ${"sum".padEnd(28)} ${sum.toString().padStart(6)}`)
  yield* Console.log(
    `\nContributor ${demoContributor} earned ${yield* ledger.accountBalance(earningsAccount(demoContributor))} credits.`
  )
  yield* Console.log(
    "\nThis demo runs in memory. The PostgreSQL/PGlite and Redis adapters are in packages/adapters; the HTTP gateway\n" +
      "and the Stripe adapter come next. See README.md."
  )
})

Effect.runPromise(Effect.provide(program, UseCases)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
