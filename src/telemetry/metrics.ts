/**
 * Prometheus metrics (prom-client). The data plane keeps plain counters
 * (query-counters.ts; RRL's own); this module reads them only when scraped,
 * so the query path never touches a label map. Names follow Prometheus
 * conventions: `steerdns_` prefix, `_total` for counters, base units
 * (seconds, bytes).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { Metric } from 'prom-client'
import { HANDLING_BUCKETS_SEC } from './query-counters.js'
import type { QueryCounters } from './query-counters.js'

/** Read at scrape time; every field optional so a node without a part (no RRL, no API) still exports the rest. */
export interface MetricSources {
  readonly queries: QueryCounters
  readonly rrl?: () => { readonly sent: number; readonly dropped: number; readonly slipped: number; readonly accounts: number }
  readonly tcpConnections?: () => number
  readonly map?: () => { readonly version: number; readonly entries: number; readonly ageSec: number | undefined }
  readonly measurements?: () => {
    readonly accepted: number
    readonly rejected: number
    readonly compiles: number
    readonly lastCompileSec: number | undefined
    readonly estimators: number
  }
  readonly api?: () => ReadonlyMap<string, number>
  /** DNS worker processes (dns.workers > 1): per worker, up, restarts and queries received. */
  readonly workers?: () => readonly { readonly id: number; readonly up: boolean; readonly restarts: number; readonly received: number }[]
  /** Per target: admin state, health status, serving. */
  readonly targets?: () => readonly { readonly id: string; readonly admin: string; readonly health: string; readonly serving: boolean; readonly degraded: boolean }[]
}

/** Upper bounds of the ECS scope histogram (prefix lengths). */
const SCOPE_BUCKETS = [0, 8, 16, 20, 24, 28, 32, 40, 48, 56, 64, 128] as const

export interface Metrics {
  readonly contentType: string
  text(): Promise<string>
}

export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'steerdns_' })
  const q = sources.queries

  /** A counter whose value is copied from a plain number (or a keyed map) at scrape time. */
  const mirrorCounter = (name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, value: number) => void) => void): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset()
        read((labels, value) => this.inc(labels, value))
      },
    })
  }
  const gauge = (name: string, help: string, read: () => number | undefined): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read()
        if (value !== undefined) this.set(value)
      },
    })
  }

  const workers = sources.workers
  if (workers) {
    mirrorCounter('steerdns_dns_worker_queries_total', 'DNS messages a worker process received since it (re)started, by worker (dns.workers > 1; reported every second).', ['worker'], (set) => {
      for (const w of workers()) set({ worker: String(w.id) }, w.received)
    })
    mirrorCounter('steerdns_dns_worker_restarts_total', 'Times a DNS worker process exited and was started again, by worker.', ['worker'], (set) => {
      for (const w of workers()) set({ worker: String(w.id) }, w.restarts)
    })
    new Gauge({
      name: 'steerdns_dns_worker_up',
      help: 'Whether a DNS worker process is listening (1) or being restarted (0), by worker.',
      labelNames: ['worker'],
      registers: [registry],
      collect() {
        this.reset()
        for (const w of workers()) this.set({ worker: String(w.id) }, w.up ? 1 : 0)
      },
    })
  }
  mirrorCounter('steerdns_dns_queries_total', 'DNS messages received, by transport.', ['transport'], (set) => {
    set({ transport: 'udp' }, q.received.udp)
    set({ transport: 'tcp' }, q.received.tcp)
  })
  mirrorCounter('steerdns_dns_responses_total', 'DNS responses sent, by RCODE.', ['rcode'], (set) => {
    for (const [rcode, n] of q.responsesByRcode) set({ rcode: RCODE_NAMES[rcode] ?? String(rcode) }, n)
  })
  mirrorCounter('steerdns_dns_dropped_total', 'DNS messages dropped without an answer, by reason (rrl: rate limited).', ['reason'], (set) => {
    for (const [reason, n] of q.droppedByReason) set({ reason }, n)
  })
  mirrorCounter('steerdns_dns_truncated_total', 'Responses sent with TC=1 (size, amplification cap or RRL slip).', [], (set) => set({}, q.truncated))
  mirrorCounter('steerdns_dns_answer_cache_total', 'Answer cache lookups: hit (a stored encoded answer was reused), miss (no usable entry: the full pipeline answered).', ['result'], (set) => {
    set({ result: 'hit' }, q.answerCache.hits)
    set({ result: 'miss' }, q.answerCache.misses)
  })
  mirrorCounter('steerdns_dns_internal_errors_total', 'Queries answered SERVFAIL because of a bug (must stay 0).', [], (set) => set({}, q.internalErrors))
  mirrorCounter('steerdns_dns_queries_by_type_total', 'Questions answered, by QTYPE.', ['type'], (set) => {
    for (const [type, n] of q.queriesByType) set({ type: TYPE_NAMES[type] ?? `TYPE${type}` }, n)
  })
  mirrorCounter('steerdns_steering_decisions_total', 'Steering decisions, by the rule that decided (map, geo, default, override, all-down, no-address).', ['rule'], (set) => {
    for (const [rule, n] of q.decisionsByRule) set({ rule }, n)
  })
  mirrorCounter('steerdns_dns_ecs_queries_total', 'Queries with an EDNS Client Subnet option (their share: divide by steerdns_dns_queries_total).', [], (set) => set({}, q.ecsQueries))
  // Histograms built from the data plane's fixed buckets at scrape time (prom-client's Histogram would be fed per query).
  registry.registerMetric(
    bucketHistogram('steerdns_dns_ecs_scope', 'ECS scope prefix length returned, for queries with ECS.', SCOPE_BUCKETS, () => {
      const counts = new Array<number>(SCOPE_BUCKETS.length).fill(0)
      let sum = 0
      q.scopeCounts.forEach((n, scope) => {
        if (n === 0) return
        sum += n * scope
        const i = SCOPE_BUCKETS.findIndex((le) => scope <= le)
        counts[i] = (counts[i] as number) + n
      })
      return { counts, sum }
    }),
  )
  registry.registerMetric(
    bucketHistogram('steerdns_dns_handling_seconds', 'Time to handle one DNS message (decode to encoded answer), in the process.', HANDLING_BUCKETS_SEC, () => ({
      counts: Array.from(q.handlingCounts),
      sum: q.handlingSumSec,
    })),
  )
  const targets = sources.targets
  if (targets) {
    new Gauge({
      name: 'steerdns_target_serving',
      help: 'Whether a target receives new clients (1) or not (0).',
      labelNames: ['target'],
      registers: [registry],
      collect() {
        this.reset()
        for (const t of targets()) this.set({ target: t.id }, t.serving ? 1 : 0)
      },
    })
    new Gauge({
      name: 'steerdns_target_state',
      help: 'Admin state and health of each target: 1 for the current (admin, health) pair.',
      labelNames: ['target', 'admin', 'health'],
      registers: [registry],
      collect() {
        this.reset()
        for (const t of targets()) this.set({ target: t.id, admin: t.admin, health: t.degraded ? 'degraded' : t.health }, 1)
      },
    })
  }
  const rrl = sources.rrl
  if (rrl) {
    mirrorCounter('steerdns_rrl_decisions_total', 'Response rate limiting decisions for UDP responses: sent, dropped, slipped (sent truncated).', ['action'], (set) => {
      const c = rrl()
      set({ action: 'sent' }, c.sent)
      set({ action: 'dropped' }, c.dropped)
      set({ action: 'slipped' }, c.slipped)
    })
    gauge('steerdns_rrl_accounts', 'Rate limiting accounts held (bounded by guard.rrl.maxEntries).', () => rrl().accounts)
  }
  const tcp = sources.tcpConnections
  if (tcp) gauge('steerdns_tcp_connections', 'DNS TCP connections open.', tcp)
  const map = sources.map
  if (map) {
    gauge('steerdns_map_version', 'Version of the latency map serving.', () => map().version)
    gauge('steerdns_map_entries', 'Prefixes in the latency map serving.', () => map().entries)
    gauge('steerdns_map_age_seconds', 'Seconds since the serving map was generated.', () => map().ageSec)
  }
  const m = sources.measurements
  if (m) {
    mirrorCounter('steerdns_measurements_total', 'Measurement reports received, by outcome.', ['outcome'], (set) => {
      const c = m()
      set({ outcome: 'accepted' }, c.accepted)
      set({ outcome: 'rejected' }, c.rejected)
    })
    mirrorCounter('steerdns_map_compiles_total', 'Map compilations from the estimators.', [], (set) => set({}, m().compiles))
    gauge('steerdns_map_compile_seconds', 'Duration of the last map compilation.', () => m().lastCompileSec)
    gauge('steerdns_estimators', 'Latency estimators held (prefix or resolver × target).', () => m().estimators)
  }
  const api = sources.api
  if (api) {
    mirrorCounter('steerdns_api_requests_total', 'API requests by response status class.', ['status'], (set) => {
      for (const [status, n] of api()) set({ status }, n)
    })
  }
  return { contentType: registry.contentType, text: () => registry.metrics() }
}

/**
 * A Prometheus histogram whose buckets the data plane already counted:
 * `read` gives per-bucket counts (not cumulative; the last one is +Inf when
 * it has one more entry than `bounds`) and the sum.
 */
function bucketHistogram(name: string, help: string, bounds: readonly number[], read: () => { counts: readonly number[]; sum: number }): Metric {
  return {
    name,
    help,
    type: 'histogram',
    async get() {
      const { counts, sum } = read()
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = []
      let cumulative = 0
      bounds.forEach((le, i) => {
        cumulative += counts[i] ?? 0
        values.push({ labels: { le }, value: cumulative, metricName: `${name}_bucket` })
      })
      for (let i = bounds.length; i < counts.length; i++) cumulative += counts[i] ?? 0
      values.push({ labels: { le: '+Inf' }, value: cumulative, metricName: `${name}_bucket` })
      values.push({ labels: {}, value: sum, metricName: `${name}_sum` })
      values.push({ labels: {}, value: cumulative, metricName: `${name}_count` })
      return { name, help, type: 'histogram', values, aggregator: 'sum' }
    },
    reset() {},
    get labelNames() {
      return []
    },
  } as unknown as Metric
}

const TYPE_NAMES: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR', 43: 'DS', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY', 257: 'CAA' }

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  9: 'NOTAUTH',
  16: 'BADVERS',
  23: 'BADCOOKIE',
}
