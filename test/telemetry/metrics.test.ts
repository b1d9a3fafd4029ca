/** Prometheus text: the data plane's plain counters appear, under conventional names, with current values at each scrape. */
import t from 'tap'
import { bump, createMetrics, createQueryCounters } from '../../src/telemetry/index.js'

t.test('counters are read at scrape time, with labels', async (t) => {
  const queries = createQueryCounters()
  let rrl = { sent: 5, dropped: 2, slipped: 1, accounts: 3 }
  const metrics = createMetrics({ queries, rrl: () => rrl, tcpConnections: () => 4, map: () => ({ version: 9, entries: 120, ageSec: 30 }) })
  queries.received.udp = 10
  queries.received.tcp = 2
  bump(queries.responsesByRcode, 0)
  bump(queries.responsesByRcode, 3)
  bump(queries.responsesByRcode, 23)
  bump(queries.droppedByReason, 'rrl')
  const first = await metrics.text()
  t.match(first, /^steerdns_dns_queries_total\{transport="udp"\} 10$/m)
  t.match(first, /^steerdns_dns_queries_total\{transport="tcp"\} 2$/m)
  t.match(first, /^steerdns_dns_responses_total\{rcode="NXDOMAIN"\} 1$/m)
  t.match(first, /^steerdns_dns_responses_total\{rcode="BADCOOKIE"\} 1$/m)
  t.match(first, /^steerdns_dns_dropped_total\{reason="rrl"\} 1$/m)
  t.match(first, /^steerdns_rrl_decisions_total\{action="slipped"\} 1$/m)
  t.match(first, /^steerdns_rrl_accounts 3$/m)
  t.match(first, /^steerdns_tcp_connections 4$/m)
  t.match(first, /^steerdns_map_version 9$/m)
  t.match(first, /^steerdns_map_age_seconds 30$/m)
  t.match(first, /^# TYPE steerdns_dns_queries_total counter$/m)
  t.match(first, /^steerdns_process_cpu_seconds_total /m, 'process metrics too')

  queries.received.udp = 25
  rrl = { sent: 5, dropped: 7, slipped: 1, accounts: 3 }
  const second = await metrics.text()
  t.match(second, /^steerdns_dns_queries_total\{transport="udp"\} 25$/m, 'the next scrape has the new value, not a sum')
  t.match(second, /^steerdns_rrl_decisions_total\{action="dropped"\} 7$/m)
})

t.test('parts a node does not run are absent, not zero', async (t) => {
  const text = await createMetrics({ queries: createQueryCounters() }).text()
  t.notMatch(text, /steerdns_rrl_/)
  t.notMatch(text, /steerdns_map_version/)
  t.match(text, /steerdns_dns_queries_total/)
})
