/**
 * Multi-process mode (`serve --workers 2`) through the real CLI on the
 * example configuration: two worker processes answer on one address, UDP and
 * TCP (the kernel spreads sources over their SO_REUSEPORT sockets, and each
 * worker reports what it answered), an override posted to the primary's API
 * reaches every worker before the next query, a SIGHUP zone change reaches
 * them, /metrics sums the workers, and a worker killed with SIGKILL is
 * started again while the other keeps answering.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSocket } from 'node:dgram'
import dnsPacket from 'dns-packet'
import t from 'tap'
import YAML from 'yaml'
import { encodeQuery, queryTcp, queryUdp } from '../helpers/dns-client.js'
import { getFreePort } from '../helpers/free-port.js'
import { REPO_ROOT, startSteerdns } from '../helpers/steerdns-process.js'

const TOKEN = 'steerdns-dev-token-change-me'
const dir = mkdtempSync(join(tmpdir(), 'steerdns-workers-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const zoneFile = join(dir, 'edge.example.net.zone')
copyFileSync(join(REPO_ROOT, 'zones', 'edge.example.net.zone'), zoneFile)
// The example configuration with its zone at a path this test may change, and RRL off (many queries from one /24).
// Written next to the example so its relative paths (map, geo, the reverse zone) still resolve.
const example = YAML.parse(readFileSync(join(REPO_ROOT, 'steerdns.yaml'), 'utf8')) as { zones: { origin: string; file: string }[]; guard: { rrl?: Record<string, unknown> } }
example.zones = example.zones.map((z) => (z.origin === 'edge.example.net' ? { ...z, file: zoneFile } : z))
example.guard.rrl = { ...example.guard.rrl, enabled: false }
const configFile = join(REPO_ROOT, `.steerdns-workers-test-${process.pid}.yaml`)
writeFileSync(configFile, YAML.stringify(example))
t.teardown(() => rmSync(configFile, { force: true }))

const dnsPort = await getFreePort()
const apiPort = await getFreePort()
const server = await startSteerdns(
  ['serve', '--config', configFile, '--listen', `127.0.0.1:${dnsPort}`, '--api', `127.0.0.1:${apiPort}`, '--state', join(dir, 'state'), '--workers', '2'],
  { readyTimeoutMs: 30_000 },
)
t.teardown(() => server.stop())

const api = `http://127.0.0.1:${apiPort}`
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`${api}/metrics`)).text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(steerdns_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (m) out.set(m[1] as string, Number(m[2]))
  }
  return out
}

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function answers(reply: Buffer): string[] {
  return (dnsPacket.decode(reply).answers ?? []).map((a) => String((a as { data?: unknown }).data)).sort()
}

/** One query from its own socket bound to `source` (a distinct 127.x address and port each). */
function askFrom(source: string, name: string, type: number, ecs?: { ip: string; source: number }): Promise<Buffer> {
  const bytes = ecs
    ? dnsPacket.encode({
        type: 'query',
        id: 7,
        questions: [{ name, type: type === 1 ? 'A' : 'AAAA' }],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 8, family: 1, sourcePrefixLength: ecs.source, scopePrefixLength: 0, ip: ecs.ip }] } as unknown as dnsPacket.Answer],
      })
    : encodeQuery({ id: 7, name, qtype: type })
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error(`no answer to ${name} from ${source}`))
    }, 3000)
    socket.once('message', (m) => {
      clearTimeout(timer)
      socket.close()
      resolve(m)
    })
    socket.bind(0, source, () => socket.send(bytes, dnsPort, '127.0.0.1'))
  })
}

t.test('two workers answer on one address, UDP and TCP, and /metrics sums them', async (t) => {
  // DNS answers once the workers listen; the API opens right after.
  await until('the API answers', () => fetch(`${api}/healthz`).then((r) => r.status, () => 0), (status) => status === 200)
  // The start-up probe's query, once a worker has reported it: the baseline.
  const before = await until('the probe query reported', metrics, (m) => (m.get('steerdns_dns_queries_total{transport="udp"}') ?? 0) >= 1)
  const sources = Array.from({ length: 60 }, (_, i) => `127.0.${1 + Math.floor(i / 50)}.${10 + (i % 50)}`)
  for (const source of sources) t.same(answers(await askFrom(source, 'www.edge.example.net', 1)), ['192.0.2.10'], `answered to ${source}`)
  const tcp = await queryTcp('127.0.0.1', dnsPort, encodeQuery({ id: 9, name: 'www.edge.example.net', qtype: 28 }), 3000)
  t.same(answers(tcp), ['2001:db8::10'], 'TCP through the shared listener')
  // Workers report every second: wait for the sums to include every query.
  const after = await until('metrics include the 61 queries', metrics, (m) => (m.get('steerdns_dns_queries_total{transport="udp"}') ?? 0) - (before.get('steerdns_dns_queries_total{transport="udp"}') ?? 0) >= 60 && (m.get('steerdns_dns_queries_total{transport="tcp"}') ?? 0) >= 1)
  const udp = (after.get('steerdns_dns_queries_total{transport="udp"}') ?? 0) - (before.get('steerdns_dns_queries_total{transport="udp"}') ?? 0)
  t.equal(udp, 60, 'every UDP query counted once')
  const w1 = after.get('steerdns_dns_worker_queries_total{worker="1"}') ?? 0
  const w2 = after.get('steerdns_dns_worker_queries_total{worker="2"}') ?? 0
  t.ok(w1 > 0 && w2 > 0, `both workers answered (worker 1: ${w1}, worker 2: ${w2})`)
  t.equal(after.get('steerdns_dns_worker_up{worker="1"}'), 1)
  t.equal(after.get('steerdns_dns_worker_up{worker="2"}'), 1)
})

t.test('an override posted to the primary applies on every worker at the next query', async (t) => {
  const ecs = { ip: '198.51.100.0', source: 26 }
  const sources = Array.from({ length: 20 }, (_, i) => `127.0.3.${10 + i}`)
  for (const s of sources) t.same(answers(await askFrom(s, 'api.edge.example.net', 1, ecs)), ['192.0.2.11'], `map answer (sea-1) to ${s}`)
  const created = await fetch(`${api}/v1/overrides`, { method: 'POST', headers: auth, body: JSON.stringify({ prefix: '198.51.100.0/24', targets: ['lhr-1'], reason: 'workers test' }) })
  t.equal(created.status, 201)
  const { id } = (await created.json()) as { id: string }
  // Announced and fetched within a few ms; a bound so a loaded machine does not flake.
  await until('the pin on every worker', async () => (await Promise.all(sources.map((s) => askFrom(s, 'api.edge.example.net', 1, ecs)))).map(answers), (all) => all.every((a) => a[0] === '198.51.100.15'), 1000)
  t.pass('every source (both workers) answers the pinned lhr-1')
  t.equal((await fetch(`${api}/v1/overrides/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })).status, 204)
  await until('the map answer again on every worker', async () => (await Promise.all(sources.map((s) => askFrom(s, 'api.edge.example.net', 1, ecs)))).map(answers), (all) => all.every((a) => a[0] === '192.0.2.11'), 1000)
  t.pass('back to sea-1 everywhere')
})

t.test('SIGHUP reloads the zones of every worker', async (t) => {
  const text = readFileSync(zoneFile, 'utf8')
  writeFileSync(zoneFile, text.replace('2026112601 ; serial', '2026112602 ; serial').replace(/^mail(\s+IN\s+A\s+)192\.0\.2\.25/m, 'mail$1192.0.2.99'))
  process.kill(server.pid, 'SIGHUP')
  const sources = Array.from({ length: 20 }, (_, i) => `127.0.4.${10 + i}`)
  await until('every worker serves the new mail A', async () => (await Promise.all(sources.map((s) => askFrom(s, 'mail.edge.example.net', 1)))).map(answers), (all) => all.every((a) => a[0] === '192.0.2.99'))
  t.pass('the changed record from every worker')
})

t.test('a worker killed with SIGKILL is started again; the other keeps answering', async (t) => {
  const pids = workerPids(server.pid)
  t.equal(pids.length, 2, 'two worker processes')
  t.equal(udpSocketsOn(dnsPort), 2, 'one SO_REUSEPORT socket per worker')
  process.kill(pids[0] as number, 'SIGKILL')
  // Once it has exited (its socket closed), the kernel gives its share to the remaining socket.
  // Its socket closes a moment after the process exits (the kernel defers the last fput of an exiting task).
  await until('only one UDP socket left on the port', async () => udpSocketsOn(dnsPort), (n) => n === 1, 5000)
  const during = await Promise.all(Array.from({ length: 20 }, (_, i) => askFrom(`127.0.5.${10 + i}`, 'www.edge.example.net', 1).then(answers, () => [])))
  t.equal(during.filter((a) => a[0] === '192.0.2.10').length, 20, 'the remaining worker answers every source meanwhile')
  const m = await until('the killed worker restarted', metrics, (x) => (x.get('steerdns_dns_worker_restarts_total{worker="1"}') ?? 0) + (x.get('steerdns_dns_worker_restarts_total{worker="2"}') ?? 0) === 1 && x.get('steerdns_dns_worker_up{worker="1"}') === 1 && x.get('steerdns_dns_worker_up{worker="2"}') === 1)
  t.ok(m, 'one restart counted, both up')
  t.equal(workerPids(server.pid).length, 2, 'two worker processes again')
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => askFrom(`127.0.6.${10 + i}`, 'www.edge.example.net', 1).then(answers)))
  t.ok(after.every((a) => a[0] === '192.0.2.10'), 'every source answered after the restart')
  const reply = await queryUdp('127.0.0.1', dnsPort, encodeQuery({ id: 3, name: 'www.edge.example.net', qtype: 1 }), 3000)
  t.same(answers(reply), ['192.0.2.10'])
})

/** UDP sockets bound to 127.0.0.1:port, from /proc/net/udp. */
function udpSocketsOn(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .filter((line) => line.trim().split(/\s+/)[1] === local).length
}

/** Child PIDs of the primary (the workers), from /proc. */
function workerPids(parent: number): number[] {
  const text = (() => {
    try {
      return readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8')
    } catch {
      return ''
    }
  })()
  return text
    .split(/\s+/)
    .filter((p) => p !== '')
    .map(Number)
}
