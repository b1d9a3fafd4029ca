// DDoS scenario 2: an attacker holds many idle TCP connections (and some
// slowloris ones that trickle a partial message) while new clients keep
// arriving. The example configuration's limits apply (maxConnections 10000,
// maxPerClient 64, idleTimeoutMs 10000) unless --max-connections lowers the
// total so the cap itself is exercised.
//
// Reports: how many attacker connections the server accepted and still holds,
// and the share of new clients (fresh TCP connection, one query) answered
// within 1 s, with their median and worst latency, while the attack holds.
// Loopback only; bounded: HOLD connections, CLIENTS new clients.
//
//   npm run build && node bench/guard-tcp-idle.mjs [--hold 5000] [--clients 500] [--max-connections 2000]
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, URL } from 'node:url'

const args = new Map()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], Number(process.argv[i + 1]))
const HOLD = args.get('--hold') ?? 5000
const CLIENTS = args.get('--clients') ?? 500
const MAX_CONNECTIONS = args.get('--max-connections') ?? 10_000
const PORT = 20000 + Math.floor(Math.random() * 20000)
const HOST = '127.0.0.1'
const repo = fileURLToPath(new URL('..', import.meta.url))

function encodeQuery(id, name) {
  const labels = name.split('.').filter(Boolean)
  const nameBytes = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])])
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(1, 4)
  const tail = Buffer.from([0, 1, 0, 1])
  const message = Buffer.concat([header, nameBytes, tail])
  const prefix = Buffer.alloc(2)
  prefix.writeUInt16BE(message.length)
  return Buffer.concat([prefix, message])
}

/** One new client: connect from `localAddress`, ask, wait for the whole answer. Resolves ms or -1. */
function askOnce(localAddress, id) {
  const start = performance.now()
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port: PORT, localAddress })
    const timer = setTimeout(() => (socket.destroy(), resolve(-1)), 1000)
    let got = Buffer.alloc(0)
    socket.on('error', () => (clearTimeout(timer), resolve(-1)))
    socket.on('connect', () => socket.write(encodeQuery(id, 'www.edge.example.net')))
    socket.on('data', (chunk) => {
      got = Buffer.concat([got, chunk])
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(performance.now() - start)
      }
    })
    socket.on('close', () => (clearTimeout(timer), resolve(-1)))
  })
}

// The example configuration with only the TCP total changed.
const dir = mkdtempSync(join(tmpdir(), 'steerdns-bench-'))
const example = readFileSync(join(repo, 'steerdns.yaml'), 'utf8')
const config = example
  .replace(/maxConnections: \d+/, `maxConnections: ${MAX_CONNECTIONS}`)
  .replace(/file: (zones|maps)\//g, `file: ${repo}$1/`)
  .replace(/city: geo-data\//, `city: ${repo}geo-data/`)
writeFileSync(join(dir, 'steerdns.yaml'), config)
const server = spawn(process.execPath, ['bin/steerdns.js', 'serve', '--config', join(dir, 'steerdns.yaml'), '--listen', `${HOST}:${PORT}`, '--log-level', 'warn'], {
  cwd: repo,
  stdio: ['ignore', 'ignore', 'inherit'],
})
const held = []
try {
  for (let i = 0; i < 50 && (await askOnce('127.0.0.3', 1)) < 0; i++) await new Promise((r) => setTimeout(r, 200))

  // Attacker: HOLD connections from 127.100.x.y (at most 60 per address, under maxPerClient),
  // a tenth of them slowloris (two bytes of a length prefix, then nothing).
  let accepted = 0
  for (let i = 0; i < HOLD; i++) {
    const address = `127.100.${Math.floor(i / 60 / 250)}.${1 + (Math.floor(i / 60) % 250)}`
    const socket = connect({ host: HOST, port: PORT, localAddress: address })
    socket.on('error', () => {})
    socket.on('close', () => (socket.closedByServer = true))
    await new Promise((resolve) => socket.once('connect', resolve).once('error', resolve))
    if (i % 10 === 0) socket.write(Buffer.from([0, 40]))
    held.push(socket)
    accepted++
  }
  await new Promise((r) => setTimeout(r, 500))
  const heldBefore = held.filter((s) => !s.closedByServer).length

  // New clients, one at a time from 127.150.x.y, while the attack holds (well inside the 10 s idle timeout).
  const latencies = []
  const start = Date.now()
  for (let i = 0; i < CLIENTS; i++) latencies.push(await askOnce(`127.150.${Math.floor(i / 250)}.${1 + (i % 250)}`, i & 0xffff))
  const elapsedSec = (Date.now() - start) / 1000
  const heldAfter = held.filter((s) => !s.closedByServer).length
  const served = latencies.filter((ms) => ms >= 0).sort((a, b) => a - b)
  const median = served[Math.floor(served.length / 2)] ?? NaN
  const worst = served.at(-1) ?? NaN
  console.log(`attacker: ${accepted} connections opened (every 10th slowloris), ${heldBefore} held by the server before the clients, ${heldAfter} after; maxConnections ${MAX_CONNECTIONS}`)
  console.log(
    `new clients: ${served.length}/${CLIENTS} answered within 1 s = ${((served.length / CLIENTS) * 100).toFixed(2)}%; median ${median.toFixed(2)} ms, worst ${worst.toFixed(2)} ms; ${elapsedSec.toFixed(1)} s`,
  )
  process.exitCode = served.length === CLIENTS ? 0 : 1
} finally {
  for (const socket of held) socket.destroy()
  server.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}
