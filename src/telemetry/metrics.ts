/**
 * Prometheus metrics (prom-client). The data plane keeps plain counters
 * (query-counters.ts; RRL's own); this module reads them only when scraped,
 * so the query path never touches a label map. Names follow Prometheus
 * conventions: `steerdns_` prefix, `_total` for counters, base units
 * (seconds, bytes).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
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
}

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
  mirrorCounter('steerdns_dns_internal_errors_total', 'Queries answered SERVFAIL because of a bug (must stay 0).', [], (set) => set({}, q.internalErrors))
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
