/**
 * The metered reverse proxy: every call that is not for the management API goes through the
 * request path of the spec — authenticate, resolve, entitle, rate limit (all in
 * `Gateway.admit`), the process's own isolation checks (concurrency cap, circuit breaker), hold,
 * proxy, settle, record.
 *
 * It is a handler of Node's own request and response, not an Effect HTTP route: the gateway's
 * server hands it every request outside the management API's paths (GatewayServer.ts), so a
 * proxied call pays for no request or response objects, router or response pipeline of the
 * platform — the larger part of a call's CPU when it went through them (docs/benchmarks.md). The
 * use cases still run as Effects, one fiber to admit and one to settle.
 *
 * Bodies stream both ways without buffering: the caller's request (a Node `IncomingMessage`) is
 * the upstream request's body, and the upstream's response body (an undici `Readable`) is piped
 * to the caller. The call is settled when the upstream's response headers arrive, so the
 * response can say what it cost: a status below 400 captures the hold (at the upstream's
 * reported cost when the route names a cost header, never more than the hold), anything else
 * voids it, and so does a caller who went away before the answer. The request id is always
 * minted here; a caller's `x-request-id` is never a ledger key.
 */
import type { CallOutcome, Refusal, RequestId, Settlement, Ticket } from "@tollgate/core"
import { Gateway } from "@tollgate/core"
import type { Either } from "effect"
import { Cause, Context, Effect, Layer, Metric, Runtime } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Dispatcher } from "undici"
import { Agent } from "undici"
import {
  boundMetric,
  creditsChargedKey,
  degradedDecisionsKey,
  proxyLatencyKey,
  proxyRefusalsKey,
  proxyRequestsKey
} from "../Metrics.js"
import type { Problem } from "../Problem.js"
import { internalErrorProblem, invalidPathProblem, makeProblem, refusalProblem, writeProblem } from "../Problem.js"
import { callerResponseHeaders, upstreamRequestHeaders } from "./ForwardHeaders.js"
import { Isolation } from "./Isolation.js"
import { rateLimitHeaders } from "./RateLimitHeaders.js"

/** Response headers that tell the caller what the call cost. */
export const chargedHeader = "tollgate-credits-charged"
export const remainingHeader = "tollgate-credits-remaining"
export const requestIdHeader = "tollgate-request-id"

/**
 * Keep-alive connection pools to every upstream, one per route timeout: the timeout is the pool's
 * own (for the response headers, and between body chunks), which costs undici far less than a
 * timeout given with each request.
 */
export class UpstreamAgent extends Context.Tag("@tollgate/http/UpstreamAgent")<UpstreamAgent, {
  readonly forTimeout: (timeoutMs: number) => Dispatcher
}>() {}

export const UpstreamAgentLive = Layer.scoped(
  UpstreamAgent,
  Effect.acquireRelease(
    Effect.sync(() => new Map<number, Agent>()),
    (agents) =>
      Effect.promise(() => Promise.all([...agents.values()].map((agent) => agent.close().catch(() => agent.destroy()))))
  ).pipe(Effect.map((agents) => ({
    forTimeout: (timeoutMs: number) => {
      let agent = agents.get(timeoutMs)
      if (agent === undefined) {
        agent = new Agent({
          keepAliveTimeout: 30_000,
          keepAliveMaxTimeout: 600_000,
          connections: 256,
          pipelining: 1,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        })
        agents.set(timeoutMs, agent)
      }
      return agent
    }
  })))
)

/** `Authorization: Bearer <key>` or `x-api-key: <key>`; an empty or other credential is no key. */
export const credentialOf = (headers: Record<string, string | Array<string> | undefined>): string | undefined => {
  const authorization = headers["authorization"]
  if (typeof authorization === "string" && authorization.length > 0) {
    return /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, "").trim() : ""
  }
  const apiKey = headers["x-api-key"]
  return typeof apiKey === "string" ? apiKey.trim() : undefined
}

/**
 * A path the gateway can match and forward unambiguously: percent-decodable, with no dot
 * segments and no encoded separators, so the route that matched is the route the upstream serves.
 */
export const isSafePath = (path: string): boolean => {
  if (!path.startsWith("/") || path.includes("\\")) return false
  if (/%2f|%5c|%00/i.test(path)) return false
  for (const segment of path.split("/")) {
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      return false
    }
    if (decoded === "." || decoded === "..") return false
  }
  return true
}

/** An upstream URL as origin and base path (the caller's path is appended to the base path). */
const targets = new Map<string, { readonly origin: string; readonly basePath: string }>()
const targetOf = (upstream: string) => {
  let target = targets.get(upstream)
  if (target === undefined) {
    const url = new URL(upstream)
    target = { origin: url.origin, basePath: url.pathname.replace(/\/+$/, "") }
    if (targets.size > 10_000) targets.clear()
    targets.set(upstream, target)
  }
  return target
}

const parseCost = (value: string | Array<string> | undefined): number | undefined => {
  const raw = Array.isArray(value) ? value[0] : value
  if (raw === undefined || !/^\s*\d+\s*$/.test(raw)) return undefined
  const n = Number(raw)
  return Number.isSafeInteger(n) ? n : undefined
}

type UpstreamError = { readonly kind: "timeout" | "unreachable"; readonly message: string }

const classify = (error: unknown): UpstreamError => {
  const code = (error as { code?: string } | undefined)?.code ?? ""
  const message = error instanceof Error ? error.message : String(error)
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" ||
      (error as { name?: string } | undefined)?.name === "TimeoutError"
    ? { kind: "timeout", message }
    : { kind: "unreachable", message }
}

const hasBody = (method: string, headers: Record<string, string | Array<string> | undefined>) =>
  method !== "GET" && method !== "HEAD" &&
  (headers["transfer-encoding"] !== undefined ||
    (headers["content-length"] !== undefined && headers["content-length"] !== "0"))

/**
 * A metric with its tags, made once per distinct tag values (see `boundMetric`: tagging on every
 * update builds and hashes a new metric key each time).
 */
const taggedOnce = <M>(tag: (...values: Array<string>) => M) => {
  const made = new Map<string, M>()
  return (...values: Array<string>): M => {
    const key = values.join("\u0000")
    let metric = made.get(key)
    if (metric === undefined) {
      metric = tag(...values)
      if (made.size > 10_000) made.clear()
      made.set(key, metric)
    }
    return metric
  }
}

const requestsOf = taggedOnce((route, status) => boundMetric(proxyRequestsKey, ["route", route!], ["status", status!]))
const refusalsOf = taggedOnce((code) => boundMetric(proxyRefusalsKey, ["code", code!]))
const chargedOf = taggedOnce((route) => boundMetric(creditsChargedKey, ["route", route!]))
const latencyOf = taggedOnce((route) => boundMetric(proxyLatencyKey, ["route", route!]))
const degradedOf = taggedOnce((decision) => boundMetric(degradedDecisionsKey, ["decision", decision!]))

/** A handler of Node's request and response; it answers every request it is given. */
export type NodeProxyHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>

const count = (route: string, status: number) => requestsOf(route, String(status)).unsafeUpdate(1, [])

/** Answers with a problem document, counted as a refusal. */
const sendProblem = (
  response: ServerResponse,
  problem: Problem,
  headers: Record<string, string>,
  route = "none"
) => {
  refusalsOf(problem.code).unsafeUpdate(1, [])
  count(route, problem.status)
  writeProblem(response, problem, headers)
}

/** Resolves once the response is finished or its connection closed. */
const closed = (response: ServerResponse) =>
  response.closed ? Promise.resolve() : new Promise<void>((resolve) => response.once("close", () => resolve()))

/** The proxy's handler, for the gateway's server (and a catch-all route of its router). */
export const makeMeteredProxy = Effect.gen(function*() {
  const gateway = yield* Gateway
  const isolation = yield* Isolation
  const agents = yield* UpstreamAgent
  const run = Runtime.runPromise(yield* Effect.runtime<never>())

  const admitted = (refusal: Refusal) =>
    refusal._tag !== "DependencyUnavailable" ? Effect.void : Effect.zipRight(
      Effect.logWarning("refused: dependency unavailable", refusal.dependency, refusal.message),
      refusal.dependency === "rate_limiter" ? Metric.increment(degradedOf("degraded_closed")) : Effect.void
    )

  const settle = (ticket: Ticket, call: CallOutcome): Effect.Effect<Either.Either<Settlement, Refusal>> =>
    gateway.settle(ticket, call).pipe(
      Effect.tap((s) => {
        if (s.charged > 0) chargedOf(ticket.route.id).unsafeUpdate(s.charged, [])
      }),
      Effect.either
    )

  const serve = async (incoming: IncomingMessage, response: ServerResponse): Promise<void> => {
    const startedAt = Date.now()
    const requestId = `req_${globalThis.crypto.randomUUID().replaceAll("-", "")}` as RequestId
    const idHeaders = { [requestIdHeader]: requestId }
    const method = incoming.method ?? "GET"
    const pathAndQuery = incoming.url ?? "/"
    const q = pathAndQuery.indexOf("?")
    const path = q === -1 ? pathAndQuery : pathAndQuery.slice(0, q)
    if (!isSafePath(path)) return sendProblem(response, invalidPathProblem, idHeaders)
    const query = new URLSearchParams(q === -1 ? "" : pathAndQuery.slice(q + 1))

    // a caller who goes away before the answer is not charged
    let callerGone = false
    response.once("close", () => {
      if (!response.writableFinished) callerGone = true
    })

    let release = () => {}
    let admission: Either.Either<Ticket, Refusal>
    try {
      admission = await run(
        Effect.either(gateway.admit({
          requestId,
          credential: credentialOf(incoming.headers),
          method,
          path,
          query,
          guard: ({ plan, project, route }) =>
            Effect.gen(function*() {
              release = yield* isolation.acquireSlot(project.id, plan.concurrencyCap)
              const upstreamAdmitted = yield* Effect.either(isolation.admitUpstream(route.upstream, startedAt))
              if (upstreamAdmitted._tag === "Left") {
                release()
                return yield* upstreamAdmitted.left
              }
            })
        })).pipe(Effect.tap((either) => either._tag === "Left" ? admitted(either.left) : Effect.void))
      )
    } catch (error) {
      // a defect after the guard took a slot
      release()
      throw error
    }

    if (admission._tag === "Left") {
      release()
      const refusal = admission.left
      const { headers, problem } = refusalProblem(refusal)
      const limits = refusal._tag === "RateLimited" ? rateLimitHeaders(refusal.limits) : {}
      return sendProblem(response, problem, { ...headers, ...limits, ...idHeaders })
    }

    const ticket = admission.right
    const route = ticket.route
    if (ticket.limiter === "degraded_open") degradedOf("degraded_open").unsafeUpdate(1, [])

    // From here on the hold must end captured or voided whatever happens: a failure before the
    // settlement voids it rather than leaving it to expire. `upstreamOk` tells the upstream's
    // breaker how the exchange went; a call that failed because its caller went away says
    // nothing about the upstream (and must not let a caller open a breaker for every tenant).
    let settled = false
    const settleCall = async (call: CallOutcome, upstreamOk?: boolean) => {
      const settling = settle(ticket, call)
      const outcome = await run(
        upstreamOk === undefined
          ? settling
          : Effect.zipRight(isolation.recordUpstream(route.upstream, upstreamOk, Date.now()), settling)
      )
      settled = true
      return outcome
    }
    let body: Dispatcher.ResponseData["body"] | undefined
    const dropBody = () => {
      if (body === undefined || body.destroyed) return
      // destroying an undici body emits an AbortError: without a listener it would be uncaught
      body.once("error", () => undefined)
      body.destroy()
    }
    try {
      if (callerGone) {
        await settleCall({ status: 0, latencyMs: Date.now() - startedAt })
        release()
        return
      }

      const identity: Record<string, string> = {
        "x-tollgate-request-id": requestId,
        "x-tollgate-project": ticket.project.id,
        "x-tollgate-plan": `${ticket.plan.id}@${ticket.plan.version}`,
        "x-tollgate-key": ticket.key.id,
        "x-tollgate-route": route.id
      }
      if (ticket.dataset !== undefined) identity["x-tollgate-dataset"] = ticket.dataset.id
      const headers = upstreamRequestHeaders(incoming.headers, identity, {
        for: incoming.socket.remoteAddress,
        proto: "http",
        host: typeof incoming.headers.host === "string" ? incoming.headers.host : undefined
      })

      const target = targetOf(route.upstream)
      let sent: Dispatcher.ResponseData
      try {
        sent = await agents.forTimeout(route.timeoutMs).request({
          origin: target.origin,
          path: target.basePath + pathAndQuery,
          method: method as Dispatcher.HttpMethod,
          headers,
          body: hasBody(method, incoming.headers) ? incoming : null
        })
      } catch (error) {
        const latencyMs = Date.now() - startedAt
        if (callerGone || incoming.errored !== null || !incoming.complete && incoming.destroyed) {
          // the caller's upload ended early: its failure, not the upstream's
          await settleCall({ status: 0, latencyMs })
          release()
          return
        }
        const failure = classify(error)
        const s = await settleCall({ status: 0, latencyMs }, false)
        release()
        await run(Effect.logWarning(`upstream ${failure.kind}`, route.id, failure.message))
        const problem = failure.kind === "timeout"
          ? makeProblem(
            504,
            "upstream_timeout",
            "Upstream timeout",
            `The upstream did not answer within ${route.timeoutMs} ms; nothing was charged`
          )
          : makeProblem(
            502,
            "upstream_unreachable",
            "Bad gateway",
            "The upstream could not be reached; nothing was charged"
          )
        const balance = s._tag === "Right" ? s.right.balance : undefined
        return sendProblem(response, problem, {
          ...idHeaders,
          [chargedHeader]: "0",
          ...(balance === undefined ? {} : { [remainingHeader]: String(balance.available) }),
          ...rateLimitHeaders(ticket.limits)
        }, route.id)
      }

      body = sent.body
      const latencyMs = Date.now() - startedAt
      const upstreamOk = sent.statusCode < 500
      if (callerGone) {
        dropBody()
        await settleCall({ status: 0, latencyMs }, upstreamOk)
        release()
        return
      }
      const reportedCost = route.costHeader === undefined
        ? undefined
        : parseCost(sent.headers[route.costHeader.toLowerCase()])
      const settlement = await settleCall({ status: sent.statusCode, latencyMs, reportedCost }, upstreamOk)
      if (settlement._tag === "Left") {
        // the ledger did not answer: the hold is left to expire, so the caller is not charged,
        // and the upstream's answer is not handed out for free
        dropBody()
        release()
        const { headers: extra, problem } = refusalProblem(settlement.left)
        await run(Effect.logWarning("settlement failed", settlement.left.message))
        return sendProblem(response, problem, { ...extra, ...idHeaders }, route.id)
      }
      if (callerGone) {
        // gone while the call was being settled: nobody is left to send the answer to
        dropBody()
        release()
        return
      }
      const s = settlement.right
      // the slot is held until the body has been sent (or the caller went away)
      const sending = body
      sending.once("close", release)
      sending.once("error", release)
      const out: Record<string, string | Array<string>> = {
        ...callerResponseHeaders(sent.headers),
        ...rateLimitHeaders(ticket.limits),
        ...idHeaders,
        [chargedHeader]: String(s.charged),
        ...(s.balance === undefined ? {} : { [remainingHeader]: String(s.balance.available) })
      }
      latencyOf(route.id).unsafeUpdate(latencyMs / 1000, [])
      count(route.id, sent.statusCode)
      response.writeHead(sent.statusCode, out)
      response.once("close", () => {
        if (!sending.readableEnded) sending.destroy()
      })
      sending.once("error", () => response.destroy())
      sending.pipe(response)
      return closed(response)
    } catch (error) {
      dropBody()
      if (!settled) await settleCall({ status: 0, latencyMs: 0 }).catch(() => undefined)
      release()
      throw error
    }
  }

  return (incoming: IncomingMessage, response: ServerResponse): Promise<void> =>
    serve(incoming, response).catch((error) =>
      run(Effect.logError("proxy failed", Cause.pretty(Cause.die(error)))).then(() =>
        sendProblem(response, internalErrorProblem, {})
      )
    )
}) satisfies Effect.Effect<NodeProxyHandler, never, Gateway | Isolation | UpstreamAgent>

/** The process's one proxy handler, shared by the server's direct path and its catch-all route. */
export class MeteredProxy extends Context.Tag("@tollgate/http/MeteredProxy")<MeteredProxy, NodeProxyHandler>() {}

export const MeteredProxyLive = Layer.effect(MeteredProxy, makeMeteredProxy)
