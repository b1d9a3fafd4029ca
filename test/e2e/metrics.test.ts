/**
 * /metrics after a known set of queries: the counts by transport, rcode,
 * type, steering rule, ECS and scope are exactly what was sent, over real
 * UDP and TCP, read from the real HTTP endpoint of a real server.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { loadConfigFile } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import { queryTcp, queryUdp } from '../helpers/dns-client.js'
import { REPO_ROOT } from '../helpers/steerdns-process.js'

const example = await loadConfigFile(join(REPO_ROOT, 'steerdns.yaml'))
const stateDir = mkdtempSync(join(tmpdir(), 'steerdns-metrics-'))
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
const server = await startServer({
  config: {
    ...example,
    listen: ['127.0.0.1:0'],
    // Rate limiting off: the counts below must not depend on it.
    guard: { ...example.guard, rrl: { ...example.guard.rrl, enabled: false } },
    api: { ...example.api, listen: '127.0.0.1:0' },
    state: { dir: stateDir },
  },
  logDestination: new PassThrough(),
})
t.teardown(() => server.close())
const dns = server.listening[0] as { host: string; port: number }
const api = server.control.apiAddress as { host: string; port: number }

function query(name: string, type: string, ecs?: string): Buffer {
  const [ip, source] = (ecs ?? '').split('/')
  const options = ecs ? [{ code: 8, family: 1, sourcePrefixLength: Number(source), scopePrefixLength: 0, ip }] : []
  return dnsPacket.encode({
    type: 'query',
    id: 1,
    questions: [{ name, type: type as dnsPacket.RecordType }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options } as unknown as Answer],
  })
}

/** `name{labels} value` lines of the exposition, as a map. */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${api.host}:${api.port}/metrics`)).text()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const space = line.lastIndexOf(' ')
    values.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return values
}

t.test('a known set of queries gives exactly these counts', async (t) => {
  const before = await scrape()
  const delta = async (): Promise<(key: string) => number> => {
    const after = await scrape()
    return (key) => (after.get(key) ?? 0) - (before.get(key) ?? 0)
  }
  for (let i = 0; i < 3; i++) await queryUdp(dns.host, dns.port, query('www.edge.example.net', 'A'), 2000)
  await queryUdp(dns.host, dns.port, query('edge.example.net', 'TXT'), 2000)
  await queryTcp(dns.host, dns.port, query('edge.example.net', 'TXT'), 2000)
  await queryUdp(dns.host, dns.port, query('nope.edge.example.net', 'A'), 2000)
  await queryUdp(dns.host, dns.port, query('api.edge.example.net', 'A', '198.51.100.0/24'), 2000) // map, scope /26
  await queryUdp(dns.host, dns.port, query('api.edge.example.net', 'A', '203.0.113.32/27'), 2000) // geo, scope /27
  await queryUdp(dns.host, dns.port, query('www.edge.example.net', 'AAAA', '192.0.2.0/24'), 2000) // static: scope 0
  await queryUdp(dns.host, dns.port, query('www.example.org', 'A'), 2000) // not ours: REFUSED

  const d = await delta()
  t.equal(d('steerdns_dns_queries_total{transport="udp"}'), 9)
  t.equal(d('steerdns_dns_queries_total{transport="tcp"}'), 1)
  t.equal(d('steerdns_dns_responses_total{rcode="NOERROR"}'), 8)
  t.equal(d('steerdns_dns_responses_total{rcode="NXDOMAIN"}'), 1)
  t.equal(d('steerdns_dns_responses_total{rcode="REFUSED"}'), 1)
  t.equal(d('steerdns_dns_queries_by_type_total{type="A"}'), 7)
  t.equal(d('steerdns_dns_queries_by_type_total{type="TXT"}'), 2)
  t.equal(d('steerdns_dns_queries_by_type_total{type="AAAA"}'), 1)
  t.equal(d('steerdns_steering_decisions_total{rule="map"}'), 1)
  t.equal(d('steerdns_steering_decisions_total{rule="geo"}'), 1)
  t.equal(d('steerdns_dns_ecs_queries_total'), 3)
  t.equal(d('steerdns_dns_ecs_scope_bucket{le="0"}'), 1, 'the static answer: scope 0')
  t.equal(d('steerdns_dns_ecs_scope_bucket{le="24"}'), 1, 'nothing else at or below /24')
  t.equal(d('steerdns_dns_ecs_scope_bucket{le="28"}'), 3, 'the /26 and the /27 too')
  t.equal(d('steerdns_dns_ecs_scope_count'), 3)
  t.equal(d('steerdns_dns_ecs_scope_sum'), 26 + 27)
  t.equal(d('steerdns_dns_handling_seconds_count'), 10, 'every message timed')
})

t.test('targets, map and RRL state are exported', async (t) => {
  const m = await scrape()
  t.equal(m.get('steerdns_target_serving{target="sea-1"}'), 1)
  t.equal(m.get('steerdns_target_state{target="sea-1",admin="up",health="unknown"}'), 1)
  t.equal(m.get('steerdns_map_version'), 1)
  t.equal(m.get('steerdns_map_entries'), 7)
  t.ok(m.has('steerdns_process_resident_memory_bytes'), 'process metrics')
})
