// DDoS scenario 1: a spoofed-source UDP flood against the example
// configuration (RRL 20 answers/s and 10 NXDOMAIN/s per /24, slip 2) while a
// legitimate client on another network queries at a steady rate.
//
// The flood comes from FLOOD_SOURCES addresses spread over FLOOD_NETWORKS
// /24s in 127.64.0.0/10 (loopback only) and mixes three attacks: a reflection
// of one answer at the victim, a random-subdomain (NXDOMAIN) flood, and an
// amplification attempt (big TXT with a 4096-byte EDNS size). The legitimate
// client (127.200.0.1) asks 10 names in turn at LEGIT_QPS, each name well
// under the per-name budget, and retries over TCP when it gets TC=1, as a
// resolver does.
//
// Reports: the legitimate client's answered share (target >= 99%), the
// flood's bytes out / bytes in (target <= 1), the server's RSS before,
// during and after (target: bounded), and RRL decisions from the replies.
// Bounded in count and time: FLOOD_QPS for DURATION_SEC, loopback only.
//
//   npm run build && node bench/guard-flood.mjs [--qps 20000] [--seconds 10] [--sources 4096] [--networks 256]
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { fileURLToPath, URL } from 'node:url'

const args = new Map()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], Number(process.argv[i + 1]))
const FLOOD_QPS = args.get('--qps') ?? 20_000
const DURATION_SEC = args.get('--seconds') ?? 10
const FLOOD_SOURCES = args.get('--sources') ?? 4096
const FLOOD_NETWORKS = args.get('--networks') ?? 256
const LEGIT_QPS = 50
const LEGIT_TIMEOUT_MS = 1000
const PORT = 20000 + Math.floor(Math.random() * 20000)
const HOST = '127.0.0.1'
const repo = fileURLToPath(new URL('..', import.meta.url))

const LEGIT_NAMES = ['www', 'mail', 'ns1', 'ns2', 'login', 'images', 'static', 'api', 'video', '@'].map((n) => (n === '@' ? 'edge.example.net' : `${n}.edge.example.net`))

/** A one-question query, with an OPT record of `udpBytes` (RFC 6891). */
function encodeQuery(id, name, qtype, udpBytes) {
  const labels = name.split('.').filter(Boolean)
  const nameBytes = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])])
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(1, 10)
  const tail = Buffer.alloc(4 + 11)
  tail.writeUInt16BE(qtype, 0)
  tail.writeUInt16BE(1, 2)
  tail.writeUInt16BE(41, 5)
  tail.writeUInt16BE(udpBytes, 7)
  return Buffer.concat([header, nameBytes, tail])
}

function rssKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

/** CPU seconds (user + system) the process has used: /proc/PID/stat fields 14 and 15, in clock ticks (100/s on Linux). */
function cpuSec(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

function udpDrops() {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
  const names = lines[0].split(/\s+/)
  return Number(lines[1].split(/\s+/)[names.indexOf('RcvbufErrors')])
}

async function waitForServer() {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = createSocket('udp4')
      const timer = setTimeout(() => (s.close(), resolve(false)), 200)
      s.on('message', () => (clearTimeout(timer), s.close(), resolve(true)))
      s.bind(0, '127.0.0.2', () => s.send(encodeQuery(1, 'www.edge.example.net', 1, 1232), PORT, HOST))
    })
    if (ok) return
  }
  throw new Error('server did not start')
}

function tcpQuery(message) {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port: PORT, localAddress: '127.200.0.1' })
    const timer = setTimeout(() => (socket.destroy(), resolve(false)), LEGIT_TIMEOUT_MS)
    let got = Buffer.alloc(0)
    socket.on('error', () => (clearTimeout(timer), resolve(false)))
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2)
      prefix.writeUInt16BE(message.length)
      socket.write(Buffer.concat([prefix, message]))
    })
    socket.on('data', (chunk) => {
      got = Buffer.concat([got, chunk])
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(true)
      }
    })
  })
}

const server = spawn(process.execPath, ['bin/steerdns.js', 'serve', '--listen', `${HOST}:${PORT}`, '--log-level', 'warn'], {
  cwd: repo,
  stdio: ['ignore', 'ignore', 'inherit'],
})
try {
  await waitForServer()
  const rssBefore = rssKb(server.pid)
  const cpuBefore = cpuSec(server.pid)
  const dropsBefore = udpDrops()

  // Flood sockets: one per source address; networks are 127.64+n/24-ish blocks.
  const floodSockets = []
  for (let i = 0; i < FLOOD_SOURCES; i++) {
    const network = i % FLOOD_NETWORKS
    const host = 1 + (Math.floor(i / FLOOD_NETWORKS) % 254)
    const address = `127.${64 + (network >> 8)}.${network & 0xff}.${host}`
    const socket = createSocket('udp4')
    await new Promise((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(0, address, resolve)
    })
    floodSockets.push(socket)
  }
  const flood = { sentBytes: 0, sent: 0, receivedBytes: 0, received: 0, truncated: 0, full: 0 }
  for (const socket of floodSockets) {
    socket.on('message', (msg) => {
      flood.received++
      flood.receivedBytes += msg.length
      if (msg[2] & 0x02) flood.truncated++
      else flood.full++
    })
  }
  const reflect = encodeQuery(7, 'www.edge.example.net', 1, 1232)
  const amplify = encodeQuery(8, 'big.edge.example.net', 16, 4096)

  // Legitimate client: one socket, LEGIT_QPS, each query waits for its own reply.
  const legit = { asked: 0, answered: 0, viaTcp: 0, lost: 0 }
  const legitSocket = createSocket('udp4')
  await new Promise((resolve) => legitSocket.bind(0, '127.200.0.1', resolve))
  const pending = new Map()
  legitSocket.on('message', (msg) => {
    const id = msg.readUInt16BE(0)
    const entry = pending.get(id)
    if (!entry) return
    pending.delete(id)
    clearTimeout(entry.timer)
    if (msg[2] & 0x02) {
      legit.viaTcp++
      tcpQuery(entry.message).then((ok) => (ok ? legit.answered++ : legit.lost++))
    } else legit.answered++
  })
  let legitId = 0
  const legitTimer = setInterval(() => {
    legitId = (legitId + 1) & 0xffff
    const message = encodeQuery(legitId, LEGIT_NAMES[legitId % LEGIT_NAMES.length], 1, 1232)
    legit.asked++
    const timer = setTimeout(() => {
      pending.delete(legitId)
      legit.lost++
    }, LEGIT_TIMEOUT_MS)
    pending.set(legitId, { message, timer })
    legitSocket.send(message, PORT, HOST)
  }, 1000 / LEGIT_QPS)

  // Flood: FLOOD_QPS in 10 ms ticks, round-robin over sources, a third of each attack.
  const perTick = Math.max(1, Math.round(FLOOD_QPS / 100))
  let rssPeak = rssBefore
  let next = 0
  const start = Date.now()
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsedMs = Date.now() - start
      if (elapsedMs >= DURATION_SEC * 1000) {
        clearInterval(tick)
        resolve()
        return
      }
      const due = Math.floor((elapsedMs / 1000) * FLOOD_QPS) - flood.sent
      for (let i = 0; i < Math.min(due, perTick * 4); i++) {
        const socket = floodSockets[next % floodSockets.length]
        const kind = next % 3
        const message =
          kind === 0 ? reflect : kind === 1 ? encodeQuery(next & 0xffff, `r${next.toString(36)}x${(Math.random() * 1e9) | 0}.edge.example.net`, 1, 1232) : amplify
        socket.send(message, PORT, HOST)
        flood.sent++
        flood.sentBytes += message.length
        next++
      }
      if (flood.sent % 5000 < perTick) rssPeak = Math.max(rssPeak, rssKb(server.pid))
    }, 10)
  })
  clearInterval(legitTimer)
  await new Promise((resolve) => setTimeout(resolve, LEGIT_TIMEOUT_MS + 200))
  const rssAfter = rssKb(server.pid)
  const serverCpuSec = cpuSec(server.pid) - cpuBefore
  const kernelDrops = udpDrops() - dropsBefore
  for (const socket of floodSockets) socket.close()
  legitSocket.close()

  const seconds = (Date.now() - start) / 1000
  const share = legit.answered / legit.asked
  const ratio = flood.receivedBytes / flood.sentBytes
  console.log(`flood: ${flood.sent} queries (${Math.round(flood.sent / DURATION_SEC)}/s) from ${FLOOD_SOURCES} sources in ${FLOOD_NETWORKS} /24s, ${flood.sentBytes} bytes in`)
  console.log(
    `flood replies: ${flood.received} (${flood.full} full, ${flood.truncated} truncated, ${flood.sent - flood.received} dropped), ${flood.receivedBytes} bytes out; out/in = ${ratio.toFixed(3)} (target <= 1)`,
  )
  console.log(`legitimate client: ${legit.answered}/${legit.asked} answered = ${(share * 100).toFixed(2)}% (target >= 99%); ${legit.viaTcp} via TCP after TC, ${legit.lost} lost`)
  console.log(`server RSS: before ${(rssBefore / 1024).toFixed(1)} MB, peak ${(rssPeak / 1024).toFixed(1)} MB, after ${(rssAfter / 1024).toFixed(1)} MB; ${seconds.toFixed(1)} s`)
  console.log(`server CPU: ${serverCpuSec.toFixed(1)} s over ${seconds.toFixed(1)} s; kernel UDP receive-buffer drops (all sockets on the machine): ${kernelDrops}`)
  process.exitCode = share >= 0.99 && ratio <= 1 ? 0 : 1
} finally {
  server.kill('SIGTERM')
}
