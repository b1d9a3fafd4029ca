// Measurement ingestion rate: autocannon posts batches of BATCH reports
// (random clients over 100k /24s, random targets of the example's 10) to
// POST /v1/measurements on a real server (the example configuration, its own
// state directory, rate limiting off) for SECONDS. Every acknowledged batch
// is fsynced to the measurements journal first, so this is the durable rate.
// Also reports the server's DNS answers/s meanwhile (dnsperf is not needed:
// a steady 1000 queries/s UDP probe checks answers keep flowing).
//
//   npm run build && node bench/ingest.mjs [--batch 100] [--connections 16] [--seconds 10]
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, URL } from 'node:url'
import autocannon from 'autocannon'

const args = new Map()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], Number(process.argv[i + 1]))
const BATCH = args.get('--batch') ?? 100
const CONNECTIONS = args.get('--connections') ?? 16
const SECONDS = args.get('--seconds') ?? 10
const DNS_PORT = 20000 + Math.floor(Math.random() * 20000)
const API_PORT = DNS_PORT + 1
const TOKEN = 'steerdns-dev-token-change-me'
const repo = fileURLToPath(new URL('..', import.meta.url))
const TARGETS = ['sea-1', 'ord-1', 'iad-1', 'gru-1', 'lhr-1', 'fra-1', 'jnb-1', 'bom-1', 'nrt-1', 'syd-1']

// Pre-built bodies: autocannon cycles through them, so the client spends no time building JSON.
let seed = 1
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
const bodies = Array.from({ length: 200 }, () =>
  JSON.stringify({
    reports: Array.from({ length: BATCH }, () => {
      const n = Math.floor(rand() * 100_000)
      return { client: `${10 + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}.${1 + Math.floor(rand() * 250)}`, target: TARGETS[Math.floor(rand() * TARGETS.length)], rttMs: 5 + rand() * 100 }
    }),
  }),
)

const dir = mkdtempSync(join(tmpdir(), 'steerdns-ingest-'))
const config = readFileSync(join(repo, 'steerdns.yaml'), 'utf8')
  .replace(/rateLimitPerMinute: \d+/, 'rateLimitPerMinute: 0')
  .replace(/file: (zones|maps)\//g, `file: ${repo}$1/`)
  .replace(/city: geo-data\//, `city: ${repo}geo-data/`)
writeFileSync(join(dir, 'steerdns.yaml'), config)
const server = spawn(
  process.execPath,
  ['bin/steerdns.js', 'serve', '--config', join(dir, 'steerdns.yaml'), '--listen', `127.0.0.1:${DNS_PORT}`, '--api', `127.0.0.1:${API_PORT}`, '--state', join(dir, 'state'), '--log-level', 'warn'],
  { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] },
)
try {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${API_PORT}/healthz`).then((r) => r.ok, () => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 100))
  }
  // DNS probe: 1000 queries/s from 127.0.0.2 (RRL-exempt in the example), counting answers.
  const probe = createSocket('udp4')
  let asked = 0
  let answered = 0
  probe.on('message', () => answered++)
  await new Promise((r) => probe.bind(0, '127.0.0.2', r))
  const name = Buffer.concat([...'www.edge.example.net'.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])])
  const query = Buffer.concat([Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 1, 0, 1])])
  const probeTimer = setInterval(() => {
    for (let i = 0; i < 10; i++) {
      probe.send(query, DNS_PORT, '127.0.0.1')
      asked++
    }
  }, 10)

  let next = 0
  const result = await autocannon({
    url: `http://127.0.0.1:${API_PORT}/v1/measurements`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }) }],
  })
  clearInterval(probeTimer)
  await new Promise((r) => setTimeout(r, 300))
  probe.close()
  const ok = result['2xx']
  const map = await fetch(`http://127.0.0.1:${API_PORT}/v1/map`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json())
  console.log(`ingest: ${ok} batches of ${BATCH} acknowledged in ${SECONDS} s over ${CONNECTIONS} connections = ${Math.round((ok * BATCH) / SECONDS)} reports/s durable; non-2xx ${result.non2xx}, errors ${result.errors}`)
  console.log(`latency per batch: p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`)
  console.log(`DNS meanwhile: ${answered}/${asked} probe queries answered; map now version ${map.version} with ${map.entries} entries`)
} finally {
  server.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  rmSync(dir, { recursive: true, force: true })
}
