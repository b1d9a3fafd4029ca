/**
 * The control plane end to end: the real server (startServer) with its HTTP
 * API on a free port and DNS over UDP, one state directory. Measurements move
 * a prefix's answer at the next compile; an improvement inside the
 * hysteresis margin does not; a pin wins at once and its deletion restores
 * the map's answer; drain takes a target out; an imported map serves and
 * exports back; every change is audited with its token; and after a clean
 * restart on the same state directory the same map version, overrides and
 * admin states serve from the first query.
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
import type { RunningServer } from '../../src/main.js'
import { queryUdp } from '../helpers/dns-client.js'
import { EXAMPLE_ZONE_FILE } from '../helpers/test-server.js'

const OPS = 'ops-token-for-tests-0001'
const PROBES = 'probe-token-for-tests-01'
const NAME = 'api.edge.example.net'
const ADDRESS = { a: '192.0.2.101', b: '192.0.2.102', c: '192.0.2.103' } as const

const stateDir = mkdtempSync(join(tmpdir(), 'steerdns-control-'))
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))

function config() {
  return parseConfigText(
    [
      'listen: ["127.0.0.1:0"]',
      'identity: control-test',
      `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
      'dns: { zonePollIntervalMs: 0 }',
      'log: { level: silent }',
      'targets:',
      `  - { id: a, ipv4: [${ADDRESS.a}], location: { lat: 0, lon: 0 } }`,
      `  - { id: b, ipv4: [${ADDRESS.b}], location: { lat: 0, lon: 0 } }`,
      `  - { id: c, ipv4: [${ADDRESS.c}], location: { lat: 0, lon: 0 } }`,
      `services: [{ name: ${NAME}, pool: [a, b, c], ttl: { min: 5, max: 60 } }]`,
      'map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 0 }',
      'measure: { compileIntervalSec: 0.2, halfLifeSec: 1800, minSamples: 3, maxAgeSec: 3600, hysteresisPct: 10 }',
      'api:',
      '  listen: 127.0.0.1:0',
      '  rateLimitPerMinute: 0',
      '  tokens:',
      `    - { name: ops, token: ${OPS}, roles: [operate, read] }`,
      `    - { name: probes, token: ${PROBES}, roles: [ingest] }`,
      `state: { dir: ${JSON.stringify(stateDir)} }`,
    ].join('\n'),
    { file: join(stateDir, 'steerdns.yaml'), env: {} },
  )
}

let server: RunningServer = await startServer({ config: config(), logDestination: new PassThrough() })
t.teardown(() => server.close())

async function api(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const address = server.control.apiAddress
  if (!address) throw new Error('no API')
  const res = await fetch(`http://${address.host}:${address.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined }
}

/** The A answer for NAME with ECS `subnet`/24, and its TTL. */
async function answerFor(subnet: string): Promise<{ addresses: string[]; ttl: number | undefined }> {
  const bound = server.listening[0]
  if (!bound) throw new Error('not listening')
  const query = dnsPacket.encode({
    type: 'query',
    id: 7,
    questions: [{ name: NAME, type: 'A' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: subnet }] } as unknown as Answer],
  })
  const reply = dnsPacket.decode(await queryUdp(bound.host, bound.port, query, 2000))
  const answers = (reply.answers ?? []).filter((a) => a.type === 'A') as { data: string; ttl?: number }[]
  return { addresses: answers.map((a) => a.data), ttl: answers[0]?.ttl }
}

function reports(client: string, target: string, rttMs: number, count: number): unknown[] {
  return Array.from({ length: count }, (_, i) => ({ client: client.replace(/0$/, String(i + 1)), target, rttMs: rttMs + (i % 2) * 0.5 }))
}

async function mapVersion(): Promise<number> {
  return ((await api('GET', '/v1/map', OPS)).json as { version: number }).version
}

/** Waits for the next compile after now: the map version must move past `after` (bounded: 200 polls). */
async function nextCompile(after: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const v = await mapVersion()
    if (v > after) return v
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no compile past version ${after}`)
}

t.test('measurements move a prefix to the faster target at the next compile', async (t) => {
  const before = await mapVersion()
  const first = await api('POST', '/v1/measurements', PROBES, { reports: [...reports('198.51.100.0', 'a', 20, 4), ...reports('198.51.100.0', 'b', 40, 4)] })
  t.equal(first.status, 200)
  t.same(first.json, { accepted: 8, rejected: [] })
  const v1 = await nextCompile(before)
  t.same((await answerFor('198.51.100.0')).addresses, [ADDRESS.a], `version ${v1}: a (20 ms) beats b (40 ms)`)

  // c arrives much faster: 50% better than the incumbent, far past the 10% margin.
  await api('POST', '/v1/measurements', PROBES, { reports: reports('198.51.100.0', 'c', 10, 4) })
  const v2 = await nextCompile(v1)
  t.same((await answerFor('198.51.100.0')).addresses, [ADDRESS.c], `version ${v2}, the first compile after the reports: c (10 ms)`)
  t.same((await answerFor('203.0.113.0')).addresses.length, 1, 'an unmeasured prefix still gets an answer (default pool)')
})

t.test('an improvement inside the hysteresis margin does not move the answer', async (t) => {
  const before = await mapVersion()
  await api('POST', '/v1/measurements', PROBES, { reports: reports('198.18.7.0', 'a', 20, 4) })
  const v1 = await nextCompile(before)
  t.same((await answerFor('198.18.7.0')).addresses, [ADDRESS.a], 'a is the incumbent')
  // b at 19 ms is 5% better: inside the 10% margin.
  await api('POST', '/v1/measurements', PROBES, { reports: reports('198.18.7.0', 'b', 19, 6) })
  const v2 = await nextCompile(v1)
  t.same((await answerFor('198.18.7.0')).addresses, [ADDRESS.a], `version ${v2}: still a (b is only 5% better)`)
  const explained = (await api('GET', `/v1/explain?name=${NAME}&client=198.18.7.0/24`, OPS)).json as { answer: string[]; trace: { rule: string } }
  t.same(explained.answer, [ADDRESS.a], 'explain agrees with DNS')
  t.equal(explained.trace.rule, 'map')
})

t.test('a pin wins at once; deleting it restores the map answer', async (t) => {
  const mapAnswer = (await answerFor('198.51.100.0')).addresses
  const pin = await api('POST', '/v1/overrides', OPS, { prefix: '198.51.100.0/24', targets: ['b'], reason: 'test pin' })
  t.equal(pin.status, 201)
  const id = (pin.json as { id: string }).id
  t.match(id, /^ovr-\d+$/)
  t.same((await answerFor('198.51.100.0')).addresses, [ADDRESS.b], 'the very next query answers the pinned target')
  const listed = (await api('GET', '/v1/overrides', OPS)).json as { id: string; createdBy: string }[]
  t.ok(listed.some((o) => o.id === id && o.createdBy === 'ops'), 'listed with who created it')

  t.equal((await api('DELETE', `/v1/overrides/${id}`, OPS)).status, 204)
  t.same((await answerFor('198.51.100.0')).addresses, mapAnswer, "deleted: the map's answer returns")
  t.equal((await api('DELETE', `/v1/overrides/${id}`, OPS)).status, 404, 'deleting twice: 404')

  const bad = await api('POST', '/v1/overrides', OPS, { prefix: '198.51.100.0/24', targets: ['nope'], reason: 'x' })
  t.equal(bad.status, 400)
  t.match((bad.json as { field: string }).field, 'body.targets[0]')
})

t.test('drain takes a target out of new answers; up brings it back', async (t) => {
  const subnet = '198.51.100.0'
  const serving = (await answerFor(subnet)).addresses[0]
  const id = Object.entries(ADDRESS).find(([, ip]) => ip === serving)?.[0] as string
  const drained = await api('PATCH', `/v1/targets/${id}`, OPS, { state: 'drain', reason: 'deploy' })
  t.equal(drained.status, 200)
  t.match(drained.json, { id, admin: { state: 'drain', reason: 'deploy', by: 'ops' }, serving: false })
  const moved = await answerFor(subnet)
  t.not(moved.addresses[0], serving, `answers moved off ${id}`)
  t.equal(moved.ttl, 5, 'with the minimum TTL right after a change')
  await api('PATCH', `/v1/targets/${id}`, OPS, { state: 'up', reason: 'deployed' })
  t.same((await answerFor(subnet)).addresses, [serving], 'back once up')
  const targets = (await api('GET', '/v1/targets', OPS)).json as { id: string; admin: { state: string } }[]
  t.same(targets.map((x) => x.id), ['a', 'b', 'c'])
  t.equal(targets.find((x) => x.id === id)?.admin.state, 'up')
})

t.test('PUT /v1/map imports a map computed elsewhere; export gives it back; versions only move forward', async (t) => {
  const before = await mapVersion()
  const imported = await api('PUT', '/v1/map', OPS, { version: 1, entries: [{ prefix: '192.0.2.0/24', targets: [{ id: 'b', score: 5, samples: 10 }] }] })
  t.equal(imported.status, 200)
  t.match(imported.json, { entries: 1, source: 'imported' })
  t.ok((imported.json as { version: number }).version > before, 'the imported map gets a newer version than the one it replaced')
  t.same((await answerFor('192.0.2.0')).addresses, [ADDRESS.b])
  const exported = (await api('GET', '/v1/map/export', OPS)).json as { entries: { prefix: string; targets: { id: string }[] }[] }
  t.same(exported.entries.map((e) => `${e.prefix} ${e.targets.map((x) => x.id).join(',')}`), ['192.0.2.0/24 b'])
  const bad = await api('PUT', '/v1/map', OPS, { entries: [{ prefix: '192.0.2.0/33', targets: [] }] })
  t.equal(bad.status, 400)
  t.match((bad.json as { field: string }).field, /^body\.entries\[0\]/)
  t.equal(await mapVersion(), (imported.json as { version: number }).version, 'a refused import changes nothing')
})

t.test('GET /v1/decisions lists the latest steered answers, newest first', async (t) => {
  await answerFor('198.18.7.0')
  const decisions = (await api('GET', '/v1/decisions?limit=5', OPS)).json as { name: string; key: string; keySource: string; rule: string; answerTargets: string[] }[]
  t.ok(decisions.length >= 1 && decisions.length <= 5, `${decisions.length} decisions`)
  t.match(decisions[0], { name: 'api.edge.example.net.', key: '198.18.7.0/24', keySource: 'ecs' }, 'the newest is the query just made')
  t.ok(decisions[0]?.answerTargets.length === 1, 'with the target it answered')
  t.equal((await api('GET', '/v1/decisions?limit=999', OPS)).status, 400, 'limit is bounded')
})

t.test('the audit log names the token, the change and the reason', async (t) => {
  const audit = (await api('GET', '/v1/audit?limit=50', OPS)).json as { by: string; action: string; subject: string; reason: string | null }[]
  const actions = audit.map((e) => `${e.by} ${e.action} ${e.subject}`)
  t.ok(actions.some((a) => /^ops override\.create ovr-\d+$/.test(a)), 'override created by ops')
  t.ok(actions.some((a) => /^ops override\.delete ovr-\d+$/.test(a)), 'and deleted')
  t.ok(audit.some((e) => e.action === 'target.patch' && e.reason === 'deploy'), 'target change with its reason')
  t.ok(actions.some((a) => a.startsWith('ops map.import')), 'map import')
  t.equal((await api('GET', '/v1/audit', PROBES)).status, 403, 'an ingest token may not read it')
})

t.test('a restart on the same state directory serves the same map, overrides and admin states from the first query', async (t) => {
  await api('PATCH', '/v1/targets/c', OPS, { state: 'down', reason: 'broken' })
  const pin = (await api('POST', '/v1/overrides', OPS, { prefix: '198.18.7.0/24', targets: ['b'], reason: 'survives restart' })).json as { id: string }
  const version = await mapVersion()
  const pinned = (await answerFor('198.18.7.0')).addresses
  const imported = (await answerFor('192.0.2.0')).addresses
  await server.close()

  server = await startServer({ config: config(), logDestination: new PassThrough() })
  t.same((await answerFor('198.18.7.0')).addresses, pinned, 'the first query after the restart: the pin holds')
  t.same((await answerFor('192.0.2.0')).addresses, imported, 'the map entry holds')
  t.equal(await mapVersion(), version, 'the same map version')
  const targets = (await api('GET', '/v1/targets', OPS)).json as { id: string; admin: { state: string; reason: string } }[]
  t.match(targets.find((x) => x.id === 'c')?.admin, { state: 'down', reason: 'broken' }, 'admin state kept')
  t.ok(((await api('GET', '/v1/overrides', OPS)).json as { id: string }[]).some((o) => o.id === pin.id), 'override kept')
  const next = (await api('POST', '/v1/overrides', OPS, { target: 'a', biasMs: 5, reason: 'numbering continues' })).json as { id: string }
  t.ok(Number(next.id.slice(4)) > Number(pin.id.slice(4)), 'override ids are never reused')
})
