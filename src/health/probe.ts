/**
 * One health probe: an HTTP(S) GET or a TCP connect, bounded by a timeout
 * and cancellable. A probe never rejects and never throws: the outcome is a
 * ProbeResult whose error is a short string (`ECONNREFUSED`,
 * `timeout after 500 ms`, `status 503`). The promise settles only once the
 * socket is closed, so a caller that awaited every probe holds no sockets.
 *
 * Each probe opens a fresh connection (`agent: false`, no keep-alive): the
 * check sees what a new client sees (accept queue, TLS handshake), and a
 * connection that a dying node kept open cannot pass for health.
 */
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import type { ProbeResult } from './health-state.js'

/** A health endpoint that answers with more than this is cut off: a URL pointing at a large file must not be downloaded every second. */
export const MAX_BODY_BYTES = 64 * 1024

const MAX_ERROR_CHARS = 160

const USER_AGENT = 'steerdns-health'

export interface HttpProbe {
  readonly kind: 'http'
  readonly url: URL
  readonly expectStatus: number
}

export interface TcpProbe {
  readonly kind: 'tcp'
  readonly host: string
  readonly port: number
}

export type ProbeTarget = HttpProbe | TcpProbe

export interface ProbeOptions {
  readonly timeoutMs: number
  /** Aborting ends the probe at once (result: `aborted`). */
  readonly signal: AbortSignal
  /** Trusted roots for https (replaces Node's bundled roots); undefined: Node's roots plus NODE_EXTRA_CA_CERTS. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[]
}

/** Runs one probe. Never rejects. */
export function probe(target: ProbeTarget, opts: ProbeOptions): Promise<ProbeResult> {
  if (opts.signal.aborted) return Promise.resolve({ ok: false, error: 'aborted' })
  return target.kind === 'http' ? probeHttp(target, opts) : probeTcp(target, opts)
}

function probeHttp(target: HttpProbe, opts: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let result: ProbeResult | undefined
    let req: http.ClientRequest
    const options: https.RequestOptions = {
      agent: false,
      headers: { 'user-agent': USER_AGENT, accept: '*/*', connection: 'close' },
      // Explicit although it is Node's default: a check must not pass against a node serving the wrong certificate.
      rejectUnauthorized: true,
      ...(opts.ca === undefined ? {} : { ca: opts.ca as string | Buffer | (string | Buffer)[] }),
    }
    try {
      req = target.url.protocol === 'https:' ? https.get(target.url, options) : http.get(target.url, options)
    } catch (err) {
      resolve({ ok: false, error: errorText(err) })
      return
    }
    // One deadline for connect, TLS, headers and body: a check takes at most timeoutMs, so checks of a target cannot pile up.
    const timer = setTimeout(() => {
      result ??= { ok: false, error: `timeout after ${opts.timeoutMs} ms` }
      req.destroy()
    }, opts.timeoutMs)
    const onAbort = (): void => {
      result ??= { ok: false, error: 'aborted' }
      req.destroy()
    }
    opts.signal.addEventListener('abort', onAbort, { once: true })
    req.on('response', (res) => {
      const status = res.statusCode ?? 0
      result ??= status === target.expectStatus ? { ok: true } : { ok: false, error: `status ${status}` }
      // The status decides; the body is read and dropped so the server sees an ordinary client, up to a bound.
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        if (bytes > MAX_BODY_BYTES) req.destroy()
      })
      res.on('error', () => {})
      res.on('end', () => req.destroy())
    })
    req.on('error', (err) => {
      result ??= { ok: false, error: errorText(err) }
    })
    req.on('close', () => {
      clearTimeout(timer)
      opts.signal.removeEventListener('abort', onAbort)
      resolve(result ?? { ok: false, error: 'connection closed' })
    })
  })
}

function probeTcp(target: TcpProbe, opts: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let result: ProbeResult | undefined
    const socket = net.connect({ host: target.host, port: target.port })
    const timer = setTimeout(() => {
      result ??= { ok: false, error: `timeout after ${opts.timeoutMs} ms` }
      socket.destroy()
    }, opts.timeoutMs)
    const onAbort = (): void => {
      result ??= { ok: false, error: 'aborted' }
      socket.destroy()
    }
    opts.signal.addEventListener('abort', onAbort, { once: true })
    socket.on('connect', () => {
      result ??= { ok: true }
      socket.destroy()
    })
    socket.on('error', (err) => {
      result ??= { ok: false, error: errorText(err) }
    })
    socket.on('close', () => {
      clearTimeout(timer)
      opts.signal.removeEventListener('abort', onAbort)
      resolve(result ?? { ok: false, error: 'connection closed' })
    })
  })
}

/** The errno or TLS code when there is one (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT), else the message, shortened. */
export function errorText(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
  if (typeof code === 'string' && code !== '') return code
  const text = err instanceof Error ? err.message : String(err)
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text
}

/**
 * Parses `HOST:PORT` or `[IPv6]:PORT` (the config's `tcp` form). Undefined
 * when it is not one: no port, port outside 1–65535, empty host, or an
 * unbracketed IPv6 address (ambiguous).
 */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s[\]:]+)):([0-9]{1,5})$/.exec(text)
  if (m === null) return undefined
  const host = m[1] ?? m[2]
  const port = Number(m[3])
  if (host === undefined || host === '' || port < 1 || port > 65535) return undefined
  if (m[1] !== undefined && net.isIPv6(host) === false) return undefined
  return { host, port }
}
