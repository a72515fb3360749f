/**
 * The metered reverse proxy: every call that is not for the management API goes through the
 * request path of the spec — authenticate, resolve, entitle, rate limit (all in
 * `Gateway.admit`), the process's own isolation checks (concurrency cap, circuit breaker), hold,
 * proxy, settle, record.
 *
 * Bodies stream both ways without buffering: the caller's request (a Node `IncomingMessage`) is
 * the upstream request's body, and the upstream's response body (an undici `Readable`) is piped
 * to the caller. The call is settled when the upstream's response headers arrive, so the
 * response can say what it cost: a status below 400 captures the hold (at the upstream's
 * reported cost when the route names a cost header, never more than the hold), anything else
 * voids it. The request id is always minted here; a caller's `x-request-id` is never a ledger key.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import type { CallOutcome, RequestId, Ticket } from "@tollgate/core"
import { Gateway } from "@tollgate/core"
import { Cause, Clock, Context, Effect, Exit, Layer, Metric } from "effect"
import type { Dispatcher } from "undici"
import { Agent } from "undici"
import { creditsCharged, degradedDecisions, proxyLatency, proxyRefusals, proxyRequests } from "../Metrics.js"
import { makeProblem, problemResponse, refusalProblem } from "../Problem.js"
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
 * A metric with its tags, made once per distinct tag values: tagging builds and hashes a new
 * metric key, which cost a few per cent of a call's CPU when done on every call.
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

const requestsOf = taggedOnce((route, status) =>
  Metric.tagged(Metric.tagged(proxyRequests, "route", route!), "status", status!)
)
const refusalsOf = taggedOnce((code) => Metric.tagged(proxyRefusals, "code", code!))
const chargedOf = taggedOnce((route) => Metric.tagged(creditsCharged, "route", route!))
const latencyOf = taggedOnce((route) => Metric.tagged(proxyLatency, "route", route!))
const degradedOf = taggedOnce((decision) => Metric.tagged(degradedDecisions, "decision", decision!))

const countRequest = (route: string, status: number) => Metric.increment(requestsOf(route, String(status)))

/** The proxy's handler, for a catch-all route of the gateway's router. */
export const makeMeteredProxy = Effect.gen(function*() {
  const gateway = yield* Gateway
  const isolation = yield* Isolation
  const agents = yield* UpstreamAgent

  const refused = (code: string, status: number, response: HttpServerResponse.HttpServerResponse, route = "none") =>
    Effect.as(
      Effect.zipRight(
        Metric.increment(refusalsOf(code)),
        countRequest(route, status)
      ),
      response
    )

  const settle = (ticket: Ticket, call: CallOutcome) =>
    gateway.settle(ticket, call).pipe(
      Effect.tap((s) =>
        s.charged > 0
          ? Metric.incrementBy(chargedOf(ticket.route.id), s.charged)
          : Effect.void
      )
    )

  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const incoming = NodeHttpServerRequest.toIncomingMessage(request)
    const startedAt = yield* Clock.currentTimeMillis
    const requestId = `req_${globalThis.crypto.randomUUID().replaceAll("-", "")}` as RequestId
    const idHeaders = { [requestIdHeader]: requestId }
    const pathAndQuery = request.url
    const q = pathAndQuery.indexOf("?")
    const path = q === -1 ? pathAndQuery : pathAndQuery.slice(0, q)
    if (!isSafePath(path)) {
      return yield* refused(
        "invalid_path",
        400,
        problemResponse(
          makeProblem(
            400,
            "invalid_path",
            "Invalid path",
            "The path has dot segments, encoded separators or bad escapes"
          ),
          idHeaders
        )
      )
    }
    const query = new URLSearchParams(q === -1 ? "" : pathAndQuery.slice(q + 1))

    let release: Effect.Effect<void> = Effect.void
    const admitted = yield* gateway.admit({
      requestId,
      credential: credentialOf(incoming.headers),
      method: request.method,
      path,
      query,
      guard: ({ plan, project, route }) =>
        Effect.gen(function*() {
          release = yield* isolation.acquireSlot(project.id, plan.concurrencyCap)
          const upstreamAdmitted = yield* Effect.either(isolation.admitUpstream(route.upstream, startedAt))
          if (upstreamAdmitted._tag === "Left") {
            yield* release
            return yield* upstreamAdmitted.left
          }
        })
    }).pipe(Effect.either)

    if (admitted._tag === "Left") {
      yield* release
      const refusal = admitted.left
      if (refusal._tag === "DependencyUnavailable") {
        yield* Effect.logWarning("refused: dependency unavailable", refusal.dependency, refusal.message)
        if (refusal.dependency === "rate_limiter") {
          yield* Metric.increment(degradedOf("degraded_closed"))
        }
      }
      const { headers, problem } = refusalProblem(refusal)
      const limits = refusal._tag === "RateLimited" ? rateLimitHeaders(refusal.limits) : {}
      return yield* refused(
        problem.code,
        problem.status,
        problemResponse(problem, { ...headers, ...limits, ...idHeaders })
      )
    }

    const ticket = admitted.right
    const route = ticket.route
    if (ticket.limiter === "degraded_open") {
      yield* Metric.increment(degradedOf("degraded_open"))
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
    const withBody = hasBody(request.method, incoming.headers)

    // From here on the hold must end captured or voided whatever happens to this fiber: an
    // interruption (the caller went away) voids it rather than leaving it to expire.
    let settled = false
    const settleOnce = (call: CallOutcome) =>
      Effect.suspend(() => {
        if (settled) return Effect.succeed(undefined)
        settled = true
        return settle(ticket, call)
      })

    const exchange = Effect.gen(function*() {
      const target = targetOf(route.upstream)
      const sent = yield* Effect.either(Effect.tryPromise({
        try: () =>
          agents.forTimeout(route.timeoutMs).request({
            origin: target.origin,
            path: target.basePath + pathAndQuery,
            method: request.method as Dispatcher.HttpMethod,
            headers,
            body: withBody ? incoming : null
          }),
        catch: classify
      }))
      const now = yield* Clock.currentTimeMillis
      const latencyMs = now - startedAt

      if (sent._tag === "Left") {
        const failure = sent.left
        yield* isolation.recordUpstream(route.upstream, false, now)
        const s = yield* settleOnce({ status: 0, latencyMs })
        yield* release
        yield* Effect.logWarning(`upstream ${failure.kind}`, route.id, failure.message)
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
        return yield* refused(
          problem.code,
          problem.status,
          problemResponse(problem, {
            ...idHeaders,
            [chargedHeader]: "0",
            ...(s === undefined ? {} : { [remainingHeader]: String(s.balance.available) }),
            ...rateLimitHeaders(ticket.limits)
          }),
          route.id
        )
      }

      const response = sent.right
      yield* isolation.recordUpstream(route.upstream, response.statusCode < 500, now)
      const reportedCost = route.costHeader === undefined
        ? undefined
        : parseCost(response.headers[route.costHeader.toLowerCase()])
      const settled_ = yield* Effect.either(settleOnce({ status: response.statusCode, latencyMs, reportedCost }))
      if (settled_._tag === "Left") {
        // the ledger did not answer: the hold is left to expire, so the caller is not charged,
        // and the upstream's answer is not handed out for free
        // destroying an undici body emits an AbortError: without a listener it would be uncaught
        response.body.once("error", () => undefined)
        response.body.destroy()
        yield* release
        const { headers: extra, problem } = refusalProblem(settled_.left)
        yield* Effect.logWarning("settlement failed", settled_.left.message)
        return yield* refused(
          problem.code,
          problem.status,
          problemResponse(problem, { ...extra, ...idHeaders }),
          route.id
        )
      }
      const settlement = settled_.right
      // the slot is held until the body has been sent (or the caller went away)
      const body = response.body
      let slotFreed = false
      const freeSlot = () => {
        if (slotFreed) return
        slotFreed = true
        Effect.runSync(release)
      }
      body.once("close", freeSlot)
      body.once("error", freeSlot)

      const out: Record<string, string | Array<string>> = {
        ...callerResponseHeaders(response.headers),
        ...rateLimitHeaders(ticket.limits),
        ...idHeaders,
        [chargedHeader]: String(settlement?.charged ?? 0),
        ...(settlement === undefined ? {} : { [remainingHeader]: String(settlement.balance.available) })
      }
      yield* Metric.update(latencyOf(route.id), latencyMs / 1000)
      yield* countRequest(route.id, response.statusCode)
      // The body is piped straight into Node's response, and the handler returns once it has
      // been sent (or the caller went away); the server then finds the response ended and
      // writes nothing more. Measured: a third of the CPU of returning the stream as an
      // `HttpServerResponse.raw` body (docs/benchmarks.md).
      const nodeResponse = NodeHttpServerRequest.toServerResponse(request)
      nodeResponse.writeHead(response.statusCode, out)
      yield* Effect.async<void>((resume) => {
        let resumed = false
        nodeResponse.once("close", () => {
          if (!body.readableEnded) body.destroy()
          if (!resumed) {
            resumed = true
            resume(Effect.void)
          }
        })
        body.once("error", () => nodeResponse.destroy())
        body.pipe(nodeResponse)
      })
      return HttpServerResponse.empty({ status: response.statusCode })
    })

    return yield* exchange.pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit)
          ? Effect.void
          : Effect.zipRight(
            Effect.ignore(settleOnce({ status: 0, latencyMs: 0 })),
            Exit.isInterrupted(exit)
              ? release
              : Effect.zipRight(release, Effect.logError("proxy failed", Cause.pretty(exit.cause)))
          )
      )
    )
  })
})
