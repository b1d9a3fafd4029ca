// One probe against real loopback endpoints: HTTP status, refused, hang
// (timeout), an endless body (bounded), HTTPS with and without the right
// roots, TCP accept and refuse, abort; and the HOST:PORT parser.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { MAX_BODY_BYTES, parseHostPort, probe } from '../../src/health/probe.js'
import type { ProbeTarget } from '../../src/health/probe.js'

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')

interface Endpoint {
  readonly port: number
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Resolves when every accepted connection has closed. */
  readonly allClosed: () => Promise<void>
  readonly requests: http.IncomingMessage[]
}

/** Serves `handler` on 127.0.0.1 port 0 (HTTPS when `tls` is given) and closes it at teardown. */
async function serve(t: Test, handler: http.RequestListener, tls?: https.ServerOptions): Promise<Endpoint> {
  const requests: http.IncomingMessage[] = []
  const sockets = new Set<net.Socket>()
  let connections = 0
  const wrapped: http.RequestListener = (req, res) => {
    requests.push(req)
    handler(req, res)
  }
  const server = tls === undefined ? http.createServer(wrapped) : https.createServer(tls, wrapped)
  server.on(tls === undefined ? 'connection' : 'secureConnection', () => connections++)
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    // A probe that cuts a body off resets the connection; that is the server's problem, not the test's.
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    allClosed: async () => {
      for (const s of sockets) await new Promise((resolve) => s.once('close', resolve))
    },
    requests,
  }
}

/** A port with nothing listening: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

const signal = (): AbortSignal => new AbortController().signal
const httpTarget = (port: number, expectStatus = 200, scheme = 'http'): ProbeTarget => ({ kind: 'http', url: new URL(`${scheme}://127.0.0.1:${port}/healthz`), expectStatus })

t.test('HTTP: the expected status passes, any other fails with the status; one fresh connection per probe', async (t) => {
  let status = 200
  const ep = await serve(t, (_req, res) => res.writeHead(status).end('ok\n'))
  t.same(await probe(httpTarget(ep.port), { timeoutMs: 2000, signal: signal() }), { ok: true })
  status = 503
  t.same(await probe(httpTarget(ep.port), { timeoutMs: 2000, signal: signal() }), { ok: false, error: 'status 503' })
  status = 204
  t.same(await probe(httpTarget(ep.port, 204), { timeoutMs: 2000, signal: signal() }), { ok: true }, 'expectStatus 204')
  status = 301
  t.same(await probe(httpTarget(ep.port), { timeoutMs: 2000, signal: signal() }), { ok: false, error: 'status 301' }, 'redirects are not followed')
  t.equal(ep.connections(), 4, 'no keep-alive: a connection per probe')
  t.equal(ep.requests[0]?.method, 'GET')
  t.equal(ep.requests[0]?.url, '/healthz')
  t.equal(ep.requests[0]?.headers.connection, 'close')
  await ep.allClosed()
})

t.test('HTTP: nothing listening is ECONNREFUSED', async (t) => {
  const port = await closedPort()
  t.same(await probe(httpTarget(port), { timeoutMs: 2000, signal: signal() }), { ok: false, error: 'ECONNREFUSED' })
})

t.test('HTTP: a server that never answers times out, and the connection is closed', async (t) => {
  const ep = await serve(t, () => {})
  const r = await probe(httpTarget(ep.port), { timeoutMs: 100, signal: signal() })
  t.same(r, { ok: false, error: 'timeout after 100 ms' })
  await ep.allClosed()
  t.equal(ep.connections(), 1)
})

t.test('HTTP: headers then a stalled body: the status decides, the deadline still ends the probe', async (t) => {
  const ep = await serve(t, (_req, res) => {
    res.writeHead(200)
    res.write('partial')
  })
  t.same(await probe(httpTarget(ep.port), { timeoutMs: 100, signal: signal() }), { ok: true })
  await ep.allClosed()
})

// The probe's own deadline is far beyond the test's: only the byte bound can end it in time.
t.test('HTTP: an endless body is cut off after MAX_BODY_BYTES', { timeout: 10_000 }, async (t) => {
  let sent = 0
  const chunk = Buffer.alloc(16 * 1024, 0x61)
  const ep = await serve(t, (_req, res) => {
    res.writeHead(200)
    const pump = (): void => {
      while (!res.destroyed) {
        sent += chunk.length
        if (!res.write(chunk)) break
      }
      if (!res.destroyed) res.once('drain', pump)
    }
    res.on('close', () => res.removeAllListeners('drain'))
    pump()
  })
  t.same(await probe(httpTarget(ep.port), { timeoutMs: 30_000, signal: signal() }), { ok: true })
  await ep.allClosed()
  t.ok(sent > MAX_BODY_BYTES, `the server wrote more than the bound (${sent} bytes)`)
})

t.test('HTTPS: certificates are verified; a private root given as ca passes', async (t) => {
  const cert = readFileSync(join(FIXTURES, 'localhost-cert.pem'))
  const key = readFileSync(join(FIXTURES, 'localhost-key.pem'))
  const ep = await serve(t, (_req, res) => res.writeHead(200).end('ok'), { cert, key })
  const untrusted = await probe(httpTarget(ep.port, 200, 'https'), { timeoutMs: 2000, signal: signal() })
  t.equal(untrusted.ok, false, 'a self-signed certificate fails')
  t.match(untrusted.error, /SELF_SIGNED|UNABLE_TO_VERIFY/, `a TLS code: ${untrusted.error}`)
  t.same(await probe(httpTarget(ep.port, 200, 'https'), { timeoutMs: 2000, signal: signal(), ca: cert }), { ok: true })
  t.equal(ep.connections(), 1, 'only the trusted probe completed a handshake')
})

t.test('TCP: an accepted connection passes and is closed; nothing listening is ECONNREFUSED', async (t) => {
  const server = net.createServer()
  const closed: Promise<unknown>[] = []
  server.on('connection', (s) => closed.push(once(s, 'close')))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const port = (server.address() as net.AddressInfo).port
  t.same(await probe({ kind: 'tcp', host: '127.0.0.1', port }, { timeoutMs: 2000, signal: signal() }), { ok: true })
  await Promise.all(closed)
  t.equal(closed.length, 1)
  const refused = await closedPort()
  t.same(await probe({ kind: 'tcp', host: '127.0.0.1', port: refused }, { timeoutMs: 2000, signal: signal() }), { ok: false, error: 'ECONNREFUSED' })
})

t.test('abort ends a probe in flight, and one aborted before it starts does not connect', async (t) => {
  let seen: () => void = () => {}
  const requested = new Promise<void>((resolve) => (seen = resolve))
  const ep = await serve(t, () => seen())
  const ac = new AbortController()
  const pending = probe(httpTarget(ep.port), { timeoutMs: 30_000, signal: ac.signal })
  await requested
  ac.abort()
  t.same(await pending, { ok: false, error: 'aborted' })
  await ep.allClosed()
  t.same(await probe(httpTarget(ep.port), { timeoutMs: 30_000, signal: ac.signal }), { ok: false, error: 'aborted' })
  t.equal(ep.connections(), 1)
})

t.test('parseHostPort', async (t) => {
  const cases: [string, { host: string; port: number } | undefined][] = [
    ['192.0.2.20:443', { host: '192.0.2.20', port: 443 }],
    ['[2001:db8::1]:8443', { host: '2001:db8::1', port: 8443 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['192.0.2.20', undefined],
    ['192.0.2.20:0', undefined],
    ['192.0.2.20:65536', undefined],
    ['2001:db8::1:443', undefined],
    ['[not-v6]:443', undefined],
    [':443', undefined],
    ['', undefined],
  ]
  for (const [text, want] of cases) t.same(parseHostPort(text), want, JSON.stringify(text))
})
