/**
 * The UDP listeners over real sockets: the native batched socket (what a
 * built tree serves with) and node:dgram (the fallback) must answer alike —
 * every datagram of a burst answered to its own source, the source address
 * given to the handler as text, answers too big for a batch slot still sent
 * whole, no answer when the handler says none, IPv6, and SO_REUSEPORT for
 * the multi-process mode.
 */
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import t from 'tap'
import { chosenUdpIo, listenUdp } from '../../src/server/index.js'
import type { UdpListener } from '../../src/server/index.js'
import type { QueryHandler } from '../../src/query/index.js'
import { createLogger } from '../../src/telemetry/index.js'

const logger = createLogger({ level: 'silent', identity: 'test' })
const REPLY_MS = 5000

/** A handler that answers a datagram with its first 2 bytes (the "ID") + a marker and the client's address, or with `size` bytes when asked. */
function echoHandler(seen: string[]): QueryHandler {
  return (message, transport, client) => {
    seen.push(client)
    const text = Buffer.from(message).toString('latin1')
    if (text.startsWith('none')) return undefined
    const big = /^big(\d+)/.exec(text)
    if (big) {
      const out = new Uint8Array(Number(big[1]))
      for (let i = 0; i < out.length; i++) out[i] = i % 251
      return out
    }
    return Buffer.from(`${text}|${transport}|${client}`, 'latin1')
  }
}

function client(family: 4 | 6, bindHost: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // A burst of answers arrives faster than the test reads it: room for all of them (the default 208 KiB holds ~270).
    const s = createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024 })
    s.once('error', reject)
    s.bind(0, bindHost, () => resolve(s))
  })
}

/** Sends every payload, collects replies until `expected` arrived or REPLY_MS passed. */
async function exchange(s: Socket, port: number, host: string, payloads: readonly string[], expected: number): Promise<Buffer[]> {
  const replies: Buffer[] = []
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, REPLY_MS)
    s.on('message', (m) => {
      replies.push(m)
      if (replies.length >= expected) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  for (const p of payloads) s.send(Buffer.from(p, 'latin1'), port, host)
  await done
  s.removeAllListeners('message')
  return replies
}

t.test('a built tree serves UDP through the native batched socket', async (t) => {
  t.equal(process.env.STEERDNS_UDP_IO ?? 'auto', 'auto', 'the suite runs with the default choice')
  t.equal(chosenUdpIo().io, 'native', `chosen: ${chosenUdpIo().why}`)
})

for (const io of ['native', 'dgram'] as const) {
  t.test(`${io}: answers every datagram of a burst to its own source`, async (t) => {
    const previous = process.env.STEERDNS_UDP_IO
    process.env.STEERDNS_UDP_IO = io
    const seen: string[] = []
    let listener: UdpListener | undefined
    try {
      listener = await listenUdp({ host: '127.0.0.1', port: 0, family: 4 }, echoHandler(seen), logger)
    } finally {
      if (previous === undefined) delete process.env.STEERDNS_UDP_IO
      else process.env.STEERDNS_UDP_IO = previous
    }
    const l = listener
    t.teardown(() => l.close())
    t.equal(l.io, io)
    const a = await client(4, '127.0.0.7')
    const b = await client(4, '127.0.0.8')
    t.teardown(() => {
      a.close()
      b.close()
    })
    // 300 datagrams from one source at once: several native batches of 64.
    const burst = Array.from({ length: 300 }, (_, i) => `q${i}`)
    const replies = await exchange(a, l.port, '127.0.0.1', burst, burst.length)
    t.equal(replies.length, 300, 'every datagram answered')
    t.same(new Set(replies.map((r) => r.toString('latin1'))), new Set(burst.map((p) => `${p}|udp|127.0.0.7`)), 'each answer is its own query with the source address')
    const other = await exchange(b, l.port, '127.0.0.1', ['from-b'], 1)
    t.same(other.map((r) => r.toString('latin1')), ['from-b|udp|127.0.0.8'], 'a second source gets its own answer')
    const nothing = await exchange(b, l.port, '127.0.0.1', ['none please', 'after'], 2)
    t.same(nothing.map((r) => r.toString('latin1')), ['after|udp|127.0.0.8'], 'no answer when the handler returns none; the next is answered')
    for (const size of [4096, 4097, 20000]) {
      const [big] = await exchange(b, l.port, '127.0.0.1', [`big${size}`], 1)
      t.equal(big?.length, size, `a ${size}-byte answer arrives whole`)
      t.ok(big && big.every((v, i) => v === i % 251), `the ${size}-byte answer's bytes are intact`)
    }
  })

  t.test(`${io}: IPv6 sources are given as RFC 5952 text`, async (t) => {
    const previous = process.env.STEERDNS_UDP_IO
    process.env.STEERDNS_UDP_IO = io
    let listener: UdpListener
    try {
      listener = await listenUdp({ host: '::1', port: 0, family: 6 }, echoHandler([]), logger)
    } catch (err) {
      // A host without IPv6 loopback cannot run this; say so rather than pass.
      t.fail(`binding [::1] failed: ${(err as Error).message}`)
      return
    } finally {
      if (previous === undefined) delete process.env.STEERDNS_UDP_IO
      else process.env.STEERDNS_UDP_IO = previous
    }
    t.teardown(() => listener.close())
    const s = await client(6, '::1')
    t.teardown(() => s.close())
    const [reply] = await exchange(s, listener.port, '::1', ['v6'], 1)
    t.equal(reply?.toString('latin1'), 'v6|udp|::1')
  })
}

t.test('native: SO_REUSEPORT lets two sockets share a port, and only when asked', async (t) => {
  const first = await listenUdp({ host: '127.0.0.1', port: 0, family: 4 }, echoHandler([]), logger, { reusePort: true })
  t.teardown(() => first.close())
  const second = await listenUdp({ host: '127.0.0.1', port: first.port, family: 4 }, echoHandler([]), logger, { reusePort: true })
  t.teardown(() => second.close())
  t.equal(second.port, first.port)
  await t.rejects(listenUdp({ host: '127.0.0.1', port: first.port, family: 4 }, echoHandler([]), logger), { code: 'EADDRINUSE' }, 'without reusePort the port is taken')
  // Many sources: the kernel hashes each to one of the two sockets; all are answered.
  const sockets = await Promise.all(Array.from({ length: 8 }, (_, i) => client(4, `127.0.0.${20 + i}`)))
  t.teardown(() => sockets.forEach((s) => s.close()))
  const replies = await Promise.all(sockets.map((s, i) => exchange(s, first.port, '127.0.0.1', [`s${i}`], 1)))
  t.same(replies.map((r) => r[0]?.toString('latin1')), sockets.map((_, i) => `s${i}|udp|127.0.0.${20 + i}`))
})

t.test('native: a closed socket frees its port', async (t) => {
  const l = await listenUdp({ host: '127.0.0.1', port: 0, family: 4 }, echoHandler([]), logger)
  await l.close()
  const again = await listenUdp({ host: '127.0.0.1', port: l.port, family: 4 }, echoHandler([]), logger)
  t.equal(again.port, l.port)
  await again.close()
})
