/**
 * The gateway's metrics (Effect `Metric`s, process-wide) and their Prometheus text rendering for
 * `/metrics`. Labels are low-cardinality on purpose: route ids, refusal codes, status classes —
 * never keys, projects or paths.
 */
import { Effect, Metric, MetricBoundaries, MetricKey, MetricKeyType, MetricLabel, MetricState } from "effect"
import type { MetricPair } from "effect"

/**
 * The metric of `key` with these tags, for a caller that resolves it once and keeps it. On every
 * update `Metric.tagged` builds and hashes a new key (about 2 µs, several times per proxied call);
 * a metric made from a key that already holds its tags finds its state once.
 */
export const boundMetric = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  ...tags: ReadonlyArray<readonly [string, string]>
) => Metric.fromMetricKey(MetricKey.taggedWithLabels(key, tags.map(([name, value]) => MetricLabel.make(name, value))))

/** Calls through the proxy, tagged `route` and `status` (the HTTP status answered). */
export const proxyRequestsKey = MetricKey.counter("tollgate_proxy_requests_total", {
  description: "Calls answered by the metered proxy, by route and status",
  incremental: true
})
export const proxyRequests = Metric.fromMetricKey(proxyRequestsKey)

/** Refusals, tagged `code` (the problem document's code). */
export const proxyRefusalsKey = MetricKey.counter("tollgate_proxy_refusals_total", {
  description: "Calls the gateway refused or could not serve, by problem code",
  incremental: true
})

/** Wall-clock seconds from the request's arrival to the response headers, tagged `route`. */
export const proxyLatencyKey = MetricKey.histogram(
  "tollgate_proxy_latency_seconds",
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Latency of metered calls, from arrival to response headers"
)

/** Credits captured, tagged `route`. */
export const creditsChargedKey = MetricKey.counter("tollgate_credits_charged_total", {
  description: "Credits captured from wallets for served calls",
  incremental: true,
  bigint: false
})

/** Rate-limiter decisions taken under a failure policy, tagged `decision` (degraded_open, degraded_closed). */
export const degradedDecisionsKey = MetricKey.counter("tollgate_degraded_decisions_total", {
  description: "Calls admitted or refused by a route's failure policy because the rate limiter did not answer",
  incremental: true
})

/** Upstream circuit-breaker state changes, tagged `upstream` and `state`. */
export const breakerTransitions = Metric.counter("tollgate_upstream_breaker_transitions_total", {
  description: "Circuit-breaker state changes per upstream",
  incremental: true
})

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra?: [string, string]) => {
  const all = tags.map((t) => `${t.key}="${escapeLabel(t.value)}"`)
  if (extra !== undefined) all.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
  return all.length === 0 ? "" : `{${all.join(",")}}`
}

const num = (n: number | bigint) => {
  if (typeof n === "bigint") return n.toString()
  if (n === Number.POSITIVE_INFINITY) return "+Inf"
  if (n === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(n)
}

/** Prometheus text exposition format 0.0.4 of every metric in the process. */
export const renderPrometheus = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string | undefined; lines: Array<string> }>()
  const family = (name: string, type: string, help: string | undefined) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help, lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const state = pair.metricState
    const name = key.name
    const help = key.description._tag === "Some" ? key.description.value : undefined
    if (MetricKeyType.isCounterKey(key.keyType) && MetricState.isCounterState(state)) {
      family(name, "counter", help).lines.push(`${name}${labels(key.tags)} ${num(state.count)}`)
    } else if (MetricKeyType.isGaugeKey(key.keyType) && MetricState.isGaugeState(state)) {
      family(name, "gauge", help).lines.push(`${name}${labels(key.tags)} ${num(state.value)}`)
    } else if (MetricKeyType.isHistogramKey(key.keyType) && MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", help)
      // Effect's buckets are already cumulative: each counts the observations up to its bound
      for (const [bound, count] of state.buckets) {
        f.lines.push(`${name}_bucket${labels(key.tags, ["le", num(bound)])} ${count}`)
      }
      if (!state.buckets.some(([bound]) => bound === Number.POSITIVE_INFINITY)) {
        f.lines.push(`${name}_bucket${labels(key.tags, ["le", "+Inf"])} ${state.count}`)
      }
      f.lines.push(`${name}_sum${labels(key.tags)} ${num(state.sum)}`)
      f.lines.push(`${name}_count${labels(key.tags)} ${state.count}`)
    } else if (MetricKeyType.isFrequencyKey(key.keyType) && MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", help)
      for (const [word, count] of state.occurrences) {
        f.lines.push(`${name}${labels(key.tags, ["value", word])} ${count}`)
      }
    }
  }
  const out: Array<string> = []
  for (const [name, f] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    if (f.help !== undefined) out.push(`# HELP ${name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`)
    out.push(`# TYPE ${name} ${f.type}`)
    for (const line of f.lines) out.push(line)
  }
  return out.join("\n") + "\n"
}

/** The current snapshot, rendered. */
export const prometheusText: Effect.Effect<string> = Effect.map(Metric.snapshot, renderPrometheus)
