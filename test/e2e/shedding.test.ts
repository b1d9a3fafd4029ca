/**
 * Overload shedding end to end: one target reports a load above the
 * watermark through the API (PATCH /v1/targets/{id} { load }); over 400
 * client networks, its share of DNS answers drops, and the excess spreads
 * over every other target with spare capacity, more to the one with more
 * spare capacity, never all onto one neighbour. The same network keeps the
 * same answer.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import { queryUdp } from '../helpers/dns-client.js'
import { EXAMPLE_ZONE_FILE } from '../helpers/test-server.js'

const TOKEN = 'shedding-test-token-0001'
const stateDir = mkdtempSync(join(tmpdir(), 'steerdns-shed-'))
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
const server = await startServer({
  config: parseConfigText(
    [
      'listen: ["127.0.0.1:0"]',
      `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
      'dns: { zonePollIntervalMs: 0 }',
      'log: { level: silent }',
      'targets:',
      '  - { id: a, ipv4: [192.0.2.1], location: { lat: 0, lon: 0 }, capacity: 100 }',
      '  - { id: b, ipv4: [192.0.2.2], location: { lat: 0, lon: 0 }, capacity: 100 }',
      '  - { id: c, ipv4: [192.0.2.3], location: { lat: 0, lon: 0 }, capacity: 300 }',
      'services: [{ name: api.edge.example.net, pool: [a, b, c] }]',
      'map: { tolerancePct: 0 }',
      'health: { overloadWatermark: 0.8 }',
      `api: { listen: 127.0.0.1:0, rateLimitPerMinute: 0, tokens: [{ name: t, token: ${TOKEN}, roles: [operate, read] }] }`,
      `state: { dir: ${JSON.stringify(stateDir)} }`,
    ].join('\n'),
    { file: join(stateDir, 'steerdns.yaml'), env: {} },
  ),
  logDestination: new PassThrough(),
})
t.teardown(() => server.close())

async function api(method: string, path: string, body: unknown): Promise<number> {
  const address = server.control.apiAddress as { host: string; port: number }
  const res = await fetch(`http://${address.host}:${address.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return res.status
}

async function answerFor(network: string): Promise<string> {
  const bound = server.listening[0] as { host: string; port: number }
  const query = dnsPacket.encode({
    type: 'query',
    id: 5,
    questions: [{ name: 'api.edge.example.net', type: 'A' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: network }] } as unknown as Answer],
  })
  return String((dnsPacket.decode(await queryUdp(bound.host, bound.port, query, 2000)).answers?.[0] as { data?: unknown } | undefined)?.data)
}

const NETWORKS = Array.from({ length: 400 }, (_, i) => `10.${i >> 8}.${i & 255}.0`)

async function shares(): Promise<{ counts: Record<string, number>; answers: string[] }> {
  const answers: string[] = []
  for (const network of NETWORKS) answers.push(await answerFor(network))
  const counts: Record<string, number> = {}
  for (const a of answers) counts[a] = (counts[a] ?? 0) + 1
  return { counts, answers }
}

t.test('a target over its watermark sheds its excess over the others by spare capacity', async (t) => {
  t.equal(await api('PUT', '/v1/map', { entries: [{ prefix: '10.0.0.0/14', targets: [{ id: 'a', score: 10, samples: 99 }, { id: 'b', score: 20, samples: 99 }, { id: 'c', score: 30, samples: 99 }] }] }), 200)
  const before = await shares()
  t.same(before.counts, { '192.0.2.1': 400 }, 'under the watermark: a answers every network')

  // Load 1.6 against a watermark of 0.8: half of a's networks must go (1 - 0.8 / 1.6).
  t.equal(await api('PATCH', '/v1/targets/a', { load: 1.6 }), 200)
  const after = await shares()
  const a = after.counts['192.0.2.1'] ?? 0
  const b = after.counts['192.0.2.2'] ?? 0
  const c = after.counts['192.0.2.3'] ?? 0
  t.comment(`after: a ${a}, b ${b}, c ${c} of 400`)
  t.ok(a > 140 && a < 260, `a keeps about half (${a} of 400)`)
  t.ok(b > 0 && c > 0, 'the excess goes to both others, not one neighbour')
  t.ok(c > b, `c (spare 300 × 0.8) gets more than b (spare 100 × 0.8): ${c} > ${b}`)
  t.same((await shares()).answers, after.answers, 'each network keeps its answer from one query to the next')

  t.equal(await api('PATCH', '/v1/targets/a', { load: 0.5 }), 200)
  t.same((await shares()).counts, { '192.0.2.1': 400 }, 'back under the watermark: a answers every network again')
})
