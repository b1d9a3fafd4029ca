/**
 * Many nodes on one shared store, end to end: a real `redis-server` (no
 * persistence, a random port) and four real steerdns processes on loopback
 * (two `--role control`, two `--role dns`), each with its own state
 * directory. Issue 9's Done-when, one test each, in order on the same
 * cluster:
 *   - a measurement batch posted to control node 1 changes answers on DNS node 2;
 *   - an override posted to control node 2 applies on every DNS node within 1 s;
 *   - stopping Redis keeps every DNS node answering, with the same answers,
 *     and control nodes answer writes 503;
 *   - restarting it (empty) resumes updates: the earlier override is still in
 *     force and a new one reaches every DNS node;
 *   - killing (SIGKILL) the compiling node mid-compile leaves every DNS node on
 *     the map published before it, the next compile happens on the other
 *     control node, and every DNS node then serves that same version.
 * "Mid-compile" uses STEERDNS_TEST_COMPILE_DELAY_MS (README): control nodes
 * wait 1 s between compiling and publishing, so the kill lands inside a
 * compile without relying on a huge map. Only the 1 s propagation is a timed
 * assertion; everything else polls with generous deadlines.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { queryUdp } from '../helpers/dns-client.js'
import { getFreePort } from '../helpers/free-port.js'
import { isSteerdnsBuilt, REPO_ROOT } from '../helpers/steerdns-process.js'
import { EXAMPLE_ZONE_FILE } from '../helpers/test-server.js'

const TOKEN = 'redis-cluster-token-0001'
const NAME = 'api.edge.example.net'
const ADDRESS: Record<string, string> = { a: '192.0.2.101', b: '192.0.2.102' }
const TARGET_OF: Record<string, string> = { '192.0.2.101': 'a', '192.0.2.102': 'b' }
const COMPILE_DELAY_MS = 1000
const LOCK_TTL_MS = 1500

if (!isSteerdnsBuilt()) throw new Error('run `npm run build` before this test')

const dir = mkdtempSync(join(tmpdir(), 'steerdns-redis-'))
const children: ChildProcess[] = []
t.teardown(async () => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after `deadlineMs`. */
async function until<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined>, everyMs = 50): Promise<T> {
  const deadline = Date.now() + deadlineMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${deadlineMs} ms${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`)
    await sleep(everyMs)
  }
}

// ---- redis-server -------------------------------------------------------------------------

const redisPort = await getFreePort()

/** PING over a raw connection: true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => done(chunk.toString().startsWith('+PONG')))
  })
}

async function startRedis(): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  children.push(child)
  await until('redis-server answers PING', 10_000, async () => ((await ping(redisPort)) ? true : undefined))
  return child
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.kill(child.pid, signal)
  await exited
}

// ---- steerdns nodes -----------------------------------------------------------------------

const configFile = join(dir, 'steerdns.yaml')
writeFileSync(
  configFile,
  [
    'identity: redis-cluster',
    `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
    'dns: { zonePollIntervalMs: 0 }',
    'log: { level: info }',
    'targets:',
    `  - { id: a, ipv4: [${ADDRESS['a']}], location: { lat: 0, lon: 0 } }`,
    `  - { id: b, ipv4: [${ADDRESS['b']}], location: { lat: 0, lon: 0 } }`,
    `services: [{ name: ${NAME}, pool: [a, b] }]`,
    'map: { tolerancePct: 0 }',
    'measure: { compileIntervalSec: 1, minSamples: 2, hysteresisPct: 10 }',
    `api: { rateLimitPerMinute: 0, tokens: [{ name: ops, token: ${TOKEN}, roles: [ingest, operate, read] }] }`,
    `store: { kind: redis, url: "redis://127.0.0.1:${redisPort}/0", keyPrefix: "e2e:", timeoutMs: 500, lockTtlMs: ${LOCK_TTL_MS}, pollIntervalMs: 1000 }`,
  ].join('\n'),
)

interface Node {
  readonly name: string
  readonly child: ChildProcess
  readonly api: string
  readonly dnsPort: number | undefined
  readonly log: () => string
}

async function startNode(name: string, role: 'control' | 'dns'): Promise<Node> {
  const apiPort = await getFreePort()
  const dnsPort = role === 'dns' ? await getFreePort() : undefined
  const args = ['bin/steerdns.js', 'serve', '--config', configFile, '--role', role, '--api', `127.0.0.1:${apiPort}`, '--state', join(dir, `state-${name}`)]
  if (dnsPort !== undefined) args.push('--listen', `127.0.0.1:${dnsPort}`)
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, STEERDNS_TEST_COMPILE_DELAY_MS: String(COMPILE_DELAY_MS) }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const api = `http://127.0.0.1:${apiPort}`
  await until(`${name} answers /healthz`, 15_000, async () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${out}`)
    const res = await fetch(`${api}/healthz`)
    return res.ok ? true : undefined
  })
  return { name, child, api, dnsPort, log: () => out }
}

async function call(node: Node, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${node.api}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5000),
  })
  const text = await res.text()
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined }
}

/** The target a DNS node answers for NAME with ECS `subnet`/24. */
async function answer(node: Node, subnet: string): Promise<string> {
  const query = dnsPacket.encode({
    type: 'query',
    id: 9,
    questions: [{ name: NAME, type: 'A' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: subnet }] } as unknown as Answer],
  })
  const reply = dnsPacket.decode(await queryUdp('127.0.0.1', node.dnsPort as number, query, 1000))
  const a = (reply.answers ?? []).find((r) => r.type === 'A') as { data: string } | undefined
  if (!a) throw new Error(`${node.name}: no A answer for ${subnet}`)
  return TARGET_OF[a.data] ?? a.data
}

async function servedMapVersion(node: Node): Promise<number> {
  const res = await fetch(`${node.api}/readyz`, { signal: AbortSignal.timeout(2000) })
  return ((await res.json()) as { mapVersion: number }).mapVersion
}

/** Log lines of a node (pino JSON), parsed. */
function logLines(node: Node): { msg?: string; version?: number; time?: string }[] {
  return node
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; version?: number })
}

const other = (target: string): string => (target === 'a' ? 'b' : 'a')

function reports(subnetBase: string, target: string, rttMs: number): unknown[] {
  return [1, 2, 3].map((host) => ({ client: `${subnetBase}.${host}`, target, rttMs }))
}

let redis = await startRedis()
const [control1, control2, dns1, dns2] = await Promise.all([startNode('control1', 'control'), startNode('control2', 'control'), startNode('dns1', 'dns'), startNode('dns2', 'dns')])
const control = [control1, control2] as const
const dnsNodes = [dns1, dns2] as const

t.test('a measurement batch posted to control node 1 changes answers on DNS node 2', async (t) => {
  const before = await answer(dns2, '203.0.113.0')
  const faster = other(before)
  const posted = await call(control1, 'POST', '/v1/measurements', { reports: [...reports('203.0.113', faster, 8), ...reports('203.0.113', before, 80)] })
  t.same(posted, { status: 200, json: { accepted: 6, rejected: [] } }, 'control node 1 acknowledged the batch')
  const now = await until('dns2 answers the faster target', 20_000, async () => ((await answer(dns2, '203.0.113.0')) === faster ? faster : undefined))
  t.equal(now, faster, `dns2 moved 203.0.113.0/24 from ${before} to ${faster}`)
  t.equal(await answer(dns1, '203.0.113.0'), faster, 'and dns1 agrees')
})

t.test('an override posted to control node 2 applies on every DNS node within 1 s', async (t) => {
  const before = await answer(dns1, '198.51.100.0')
  const pinned = other(before)
  const posted = await call(control2, 'POST', '/v1/overrides', { prefix: '198.51.100.0/24', targets: [pinned], reason: 'e2e pin' })
  t.equal(posted.status, 201, 'created on control node 2')
  for (const node of dnsNodes) {
    await until(`${node.name} applies the pin`, 1000, async () => ((await answer(node, '198.51.100.0')) === pinned ? true : undefined), 10)
    t.pass(`${node.name} answers ${pinned} for 198.51.100.0/24 within 1 s of the 201`)
  }
})

t.test('stopping Redis keeps every DNS node answering with the same answers; writes get 503', async (t) => {
  const subnets = ['198.51.100.0', '203.0.113.0', '192.0.2.0']
  const before = await Promise.all(dnsNodes.map((node) => Promise.all(subnets.map((s) => answer(node, s)))))
  const versions = await Promise.all(dnsNodes.map(servedMapVersion))
  await stopProcess(redis, 'SIGTERM')
  // Past the lock's expiry and a safety poll: everything that reacts to the loss has reacted.
  await sleep(LOCK_TTL_MS + 1000)
  const after = await Promise.all(dnsNodes.map((node) => Promise.all(subnets.map((s) => answer(node, s)))))
  t.same(after, before, 'every DNS node gives the answers it gave before Redis stopped')
  t.same(await Promise.all(dnsNodes.map(servedMapVersion)), versions, 'and serves the same map version')
  const refused = await call(control1, 'POST', '/v1/overrides', { prefix: '198.51.101.0/24', targets: ['a'], reason: 'store down' })
  t.equal(refused.status, 503, 'a write while the store is down is refused with 503')
  t.match((refused.json as { message: string }).message, /shared state unavailable/)
  const ingest = await call(control2, 'POST', '/v1/measurements', { reports: reports('198.18.0', 'a', 5) })
  t.equal(ingest.status, 503, 'so is a measurement batch')
})

t.test('restarting Redis (empty) resumes updates; the state before the restart is still in force', async (t) => {
  redis = await startRedis()
  const before = await answer(dns2, '198.51.101.0')
  const pinned = other(before)
  // Control nodes reconnect within about a second (and seed the empty store); until then writes get 503.
  const created = await until('a control node takes a write again', 10_000, async () => {
    const r = await call(control1, 'POST', '/v1/overrides', { prefix: '198.51.101.0/24', targets: [pinned], reason: 'after restart' })
    return r.status === 201 ? r : undefined
  }, 100)
  t.equal(created.status, 201)
  for (const node of dnsNodes) {
    await until(`${node.name} applies the new pin`, 5000, async () => ((await answer(node, '198.51.101.0')) === pinned ? true : undefined))
    t.pass(`${node.name} follows again: ${pinned} for 198.51.101.0/24`)
  }
  const overrides = (await call(dns1, 'GET', '/v1/overrides')).json as { reason: string }[]
  t.same(overrides.map((o) => o.reason).sort(), ['after restart', 'e2e pin'], 'the override from before the restart survived (the store was seeded from the nodes)')
})

t.test('killing the compiling node mid-compile: every node stays consistent, the next compile runs on the other node', async (t) => {
  const published = await until('DNS nodes agree on a map version', 10_000, async () => {
    const versions = await Promise.all(dnsNodes.map(servedMapVersion))
    return versions.every((v) => v === versions[0]) ? (versions[0] as number) : undefined
  })
  const marks = control.map((node) => logLines(node).length)
  const faster = other(await answer(dns1, '198.18.7.0'))
  // A batch makes the leader compile; it logs "map compile started", then waits COMPILE_DELAY_MS before publishing.
  await call(control2, 'POST', '/v1/measurements', { reports: reports('198.18.7', faster, 9) })
  const compiling = await until('a control node starts compiling', 10_000, async () =>
    control.find((node, i) => logLines(node).slice(marks[i]).some((l) => l.msg === 'map compile started')),
  )
  await stopProcess(compiling.child, 'SIGKILL')
  const survivor = compiling === control1 ? control2 : control1
  t.same(await Promise.all(dnsNodes.map(servedMapVersion)), [published, published], `right after the kill every DNS node still serves map version ${published}`)
  t.notOk(logLines(compiling).slice(marks[control.indexOf(compiling)]).some((l) => l.msg === 'map compiled and published'), `${compiling.name} died before publishing`)

  const survivorMark = marks[control.indexOf(survivor)]
  const next = await until(`${survivor.name} takes the lock and compiles`, 15_000, async () => {
    const lines = logLines(survivor).slice(survivorMark)
    const taken = lines.findIndex((l) => l.msg === 'compile lock taken: this node aggregates, compiles and checks health')
    const compiled = lines.slice(Math.max(0, taken)).find((l) => l.msg === 'map compiled and published')
    return taken >= 0 && compiled ? (compiled.version as number) : undefined
  })
  t.ok(next > published, `${survivor.name} published map version ${next} after taking over`)
  const versions = await until('every DNS node serves the new map', 5000, async () => {
    const v = await Promise.all(dnsNodes.map(servedMapVersion))
    return v.every((x) => x >= next) ? v : undefined
  })
  t.ok(versions.every((v) => v === versions[0]), `every DNS node serves the same version (${versions.join(', ')})`)
  const answers = await Promise.all(dnsNodes.map((node) => answer(node, '198.18.7.0')))
  t.same(answers, [faster, faster], `and the batch the dead node was compiling counts: 198.18.7.0/24 answers ${faster} everywhere`)
})
