// How long a change takes to reach every DNS node in the many-node mode
// (store.kind redis): a real redis-server (no persistence) and four steerdns
// processes on loopback, two `--role control` and two `--role dns`. For each
// of CHANGES changes, alternating between the two control nodes:
//   override: POST /v1/overrides pinning 198.51.100.0/24 to the other target
//             (then DELETE of the previous pin, not timed);
//   map:      PUT /v1/map with ENTRIES entries whose probe entry
//             (203.0.113.0/24) ranks the other target first.
// The clock starts when the request is sent (the publish happens inside it)
// and stops when both DNS nodes answer the new target over UDP (each polled
// back to back); the 200/201 time is reported too. Medians, p90 and max.
//
//   npm run build && node bench/redis-propagation.mjs [--changes 20] [--entries 1000]
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, URL } from 'node:url'
import dnsPacket from 'dns-packet'

const args = new Map()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], Number(process.argv[i + 1]))
const CHANGES = args.get('--changes') ?? 20
const ENTRIES = args.get('--entries') ?? 1000
const TOKEN = 'propagation-bench-token-01'
const NAME = 'api.edge.example.net'
const ADDRESS = { a: '192.0.2.101', b: '192.0.2.102' }
const repo = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'steerdns-propagation-'))
const children = []
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function until(what, ms, check) {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(50)
  }
}

const redisPort = await freePort()
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
children.push(redis)

const config = join(dir, 'steerdns.yaml')
writeFileSync(
  config,
  [
    'identity: propagation-bench',
    `zones: [{ origin: edge.example.net, file: ${JSON.stringify(join(repo, 'zones', 'edge.example.net.zone'))} }]`,
    'dns: { zonePollIntervalMs: 0 }',
    'log: { level: warn }',
    'targets:',
    `  - { id: a, ipv4: [${ADDRESS.a}], location: { lat: 0, lon: 0 } }`,
    `  - { id: b, ipv4: [${ADDRESS.b}], location: { lat: 0, lon: 0 } }`,
    `services: [{ name: ${NAME}, pool: [a, b] }]`,
    'map: { tolerancePct: 0 }',
    `api: { rateLimitPerMinute: 0, bodyLimitBytes: 67108864, tokens: [{ name: ops, token: ${TOKEN}, roles: [ingest, operate, read] }] }`,
    `store: { kind: redis, url: "redis://127.0.0.1:${redisPort}/0", keyPrefix: "bench:" }`,
  ].join('\n'),
)

async function startNode(name, role) {
  const api = await freePort()
  const dnsPort = role === 'dns' ? await freePort() : undefined
  const argv = [join(repo, 'bin', 'steerdns.js'), 'serve', '--config', config, '--role', role, '--api', `127.0.0.1:${api}`, '--state', join(dir, name)]
  if (dnsPort) argv.push('--listen', `127.0.0.1:${dnsPort}`)
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(child)
  const base = `http://127.0.0.1:${api}`
  await until(`${name} /healthz`, 15000, async () => (await fetch(`${base}/healthz`)).ok)
  return { name, base, dnsPort }
}

const socket = createSocket('udp4')
await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
let nextId = 1
const pending = new Map()
socket.on('message', (msg) => {
  const id = msg.readUInt16BE(0)
  const done = pending.get(id)
  if (!done) return
  pending.delete(id)
  const a = (dnsPacket.decode(msg).answers ?? []).find((r) => r.type === 'A')
  done(a?.data)
})

/** The A answer of a DNS node for NAME with ECS subnet/24. */
function answer(port, subnet) {
  const id = nextId++ & 0xffff
  const query = dnsPacket.encode({
    type: 'query',
    id,
    questions: [{ name: NAME, type: 'A' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: subnet }] }],
  })
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      pending.delete(id)
      resolve(undefined)
    }, 1000)
    pending.set(id, (data) => {
      clearTimeout(timer)
      resolve(data)
    })
    socket.send(query, port, '127.0.0.1')
  })
}

/** Resolves with the ms since `t0` at which `node` first answers `want`. */
async function reached(node, subnet, want, t0) {
  for (;;) {
    if ((await answer(node.dnsPort, subnet)) === want) return performance.now() - t0
    if (performance.now() - t0 > 10000) throw new Error(`${node.name} never answered ${want}`)
  }
}

async function call(node, method, path, body) {
  const res = await fetch(`${node.base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

function mapOf(first) {
  const entries = [{ prefix: '203.0.113.0/24', targets: [{ id: first, score: 5, samples: 50 }, { id: first === 'a' ? 'b' : 'a', score: 50, samples: 50 }] }]
  for (let i = 0; entries.length < ENTRIES; i++) {
    entries.push({ prefix: `10.${(i >> 8) & 255}.${i & 255}.0/24`, targets: [{ id: i % 2 ? 'a' : 'b', score: 10 + (i % 7), samples: 20 }] })
  }
  return { entries }
}

const stats = (xs) => {
  const s = [...xs].sort((x, y) => x - y)
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]
  return `median ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms (n=${s.length})`
}

try {
  await until('redis-server', 10000, async () => true)
  const nodes = await Promise.all([startNode('control1', 'control'), startNode('control2', 'control'), startNode('dns1', 'dns'), startNode('dns2', 'dns')])
  const control = nodes.slice(0, 2)
  const dns = nodes.slice(2)
  await sleep(500)

  const overrideAll = []
  const overrideAck = []
  let target = (await answer(dns[0].dnsPort, '198.51.100.0')) === ADDRESS.a ? 'b' : 'a'
  let previous
  for (let i = 0; i < CHANGES; i++) {
    const node = control[i % 2]
    const t0 = performance.now()
    const waits = dns.map((d) => reached(d, '198.51.100.0', ADDRESS[target], t0))
    const created = await call(node, 'POST', '/v1/overrides', { prefix: '198.51.100.0/24', targets: [target], reason: `bench ${i}` })
    overrideAck.push(performance.now() - t0)
    overrideAll.push(Math.max(...(await Promise.all(waits))))
    if (previous) await call(node, 'DELETE', `/v1/overrides/${previous}`)
    previous = created.id
    target = target === 'a' ? 'b' : 'a'
    await sleep(50)
  }
  if (previous) await call(control[0], 'DELETE', `/v1/overrides/${previous}`)

  const mapAll = []
  const mapAck = []
  target = (await answer(dns[0].dnsPort, '203.0.113.0')) === ADDRESS.a ? 'b' : 'a'
  for (let i = 0; i < CHANGES; i++) {
    const node = control[i % 2]
    const body = mapOf(target)
    const t0 = performance.now()
    const waits = dns.map((d) => reached(d, '203.0.113.0', ADDRESS[target], t0))
    await call(node, 'PUT', '/v1/map', body)
    mapAck.push(performance.now() - t0)
    mapAll.push(Math.max(...(await Promise.all(waits))))
    target = target === 'a' ? 'b' : 'a'
    await sleep(50)
  }

  console.log(`redis-propagation: 2 control + 2 DNS nodes, redis-server on loopback, ${CHANGES} changes each`)
  console.log(`  override (POST /v1/overrides): request sent -> 201: ${stats(overrideAck)}`)
  console.log(`  override: request sent -> every DNS node answers it: ${stats(overrideAll)}`)
  console.log(`  map (PUT /v1/map, ${ENTRIES} entries): request sent -> 200: ${stats(mapAck)}`)
  console.log(`  map: request sent -> every DNS node answers it: ${stats(mapAll)}`)
} finally {
  socket.close()
  for (const child of children.reverse()) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
