/**
 * Raw DNS client for tests: sends one message's bytes over UDP or TCP and
 * returns the raw response bytes. It does not build or parse messages, so a
 * test can send anything (malformed packets included) and inspect every byte.
 * It must not retry: a lost datagram is a failure the caller should see.
 * `encodeQuery` is a small hand-written builder so the qname's case and every
 * header bit are exactly what the test asked for.
 */
import { createSocket } from 'node:dgram'
import { connect, isIPv6 } from 'node:net'

/** Thrown when no response arrives within the deadline; `code` is stable. */
export class DnsTimeoutError extends Error {
  readonly code = 'DNS_CLIENT_TIMEOUT'
  constructor(transport: 'udp' | 'tcp', host: string, port: number, timeoutMs: number) {
    super(`no ${transport} response from ${host}:${port} within ${timeoutMs} ms`)
  }
}

/**
 * Send `query` in one UDP datagram to host:port and resolve with the first
 * datagram that comes back from that address. Rejects with DnsTimeoutError
 * after `timeoutMs`, or with the socket error.
 */
export function queryUdp(host: string, port: number, query: Uint8Array, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
    let isSettled = false
    const finish = (err: Error | undefined, response?: Buffer): void => {
      if (isSettled) return
      isSettled = true
      clearTimeout(timer)
      socket.close()
      if (err !== undefined) reject(err)
      else resolve(response as Buffer)
    }
    const timer = setTimeout(() => finish(new DnsTimeoutError('udp', host, port, timeoutMs)), timeoutMs)
    socket.on('error', (err) => finish(err))
    socket.on('message', (msg, rinfo) => {
      // Only the server we asked: a stray datagram is not its answer.
      if (rinfo.port === port && rinfo.address === host) finish(undefined, msg)
    })
    socket.send(query, port, host, (err) => {
      if (err) finish(err)
    })
  })
}

/**
 * Send `query` over a fresh TCP connection with the two-byte length prefix
 * (RFC 1035 section 4.2.2, RFC 7766 section 8) and resolve with the first
 * response message (without its prefix). The connection is closed afterwards.
 * Rejects with DnsTimeoutError after `timeoutMs` for the whole exchange, or
 * when the server closes before a whole message arrived.
 */
export function queryTcp(host: string, port: number, query: Uint8Array, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    let received = Buffer.alloc(0)
    let isSettled = false
    const finish = (err: Error | undefined, response?: Buffer): void => {
      if (isSettled) return
      isSettled = true
      clearTimeout(timer)
      socket.destroy()
      if (err !== undefined) reject(err)
      else resolve(response as Buffer)
    }
    const timer = setTimeout(() => finish(new DnsTimeoutError('tcp', host, port, timeoutMs)), timeoutMs)
    socket.on('error', (err) => finish(err))
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2)
      prefix.writeUInt16BE(query.length)
      // One write: servers must handle split writes, but that is another test's job.
      socket.write(Buffer.concat([prefix, query]))
    })
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      if (received.length < 2) return
      const length = received.readUInt16BE(0)
      if (received.length >= 2 + length) finish(undefined, received.subarray(2, 2 + length))
    })
    socket.on('close', () => finish(new Error(`tcp connection to ${host}:${port} closed after ${received.length} bytes`)))
  })
}

/** What `encodeQuery` writes. */
export interface QuerySpec {
  readonly id: number
  /** Written byte-for-byte as given (case kept); a trailing dot is optional. */
  readonly name: string
  readonly qtype: number
  /** Default 1 (IN). */
  readonly qclass?: number
  /** Default false: authoritative tests send RD=0. */
  readonly recursionDesired?: boolean
  /** Adds an OPT record (RFC 6891 section 6.1.2) when present. */
  readonly edns?: { readonly udpPayloadBytes: number; readonly version?: number; readonly dnssecOk?: boolean }
}

/** Encode a one-question QUERY message. Throws on a label over 63 bytes. */
export function encodeQuery(spec: QuerySpec): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(spec.id & 0xffff, 0)
  header.writeUInt16BE(spec.recursionDesired === true ? 0x0100 : 0, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(spec.edns === undefined ? 0 : 1, 10)
  const labels = spec.name.replace(/\.$/, '').split('.').filter((label) => label.length > 0)
  const nameParts: Buffer[] = []
  for (const label of labels) {
    const bytes = Buffer.from(label, 'latin1')
    if (bytes.length > 63) throw new Error(`label longer than 63 bytes: ${label}`)
    nameParts.push(Buffer.from([bytes.length]), bytes)
  }
  nameParts.push(Buffer.from([0]))
  const typeClass = Buffer.alloc(4)
  typeClass.writeUInt16BE(spec.qtype, 0)
  typeClass.writeUInt16BE(spec.qclass ?? 1, 2)
  const parts = [header, ...nameParts, typeClass]
  if (spec.edns !== undefined) {
    const opt = Buffer.alloc(11)
    // Root owner, TYPE 41, CLASS = payload size, TTL = ext-rcode|version|DO|Z, RDLEN 0.
    opt.writeUInt16BE(41, 1)
    opt.writeUInt16BE(spec.edns.udpPayloadBytes, 3)
    opt.writeUInt8(spec.edns.version ?? 0, 6)
    opt.writeUInt16BE(spec.edns.dnssecOk === true ? 0x8000 : 0, 7)
    parts.push(opt)
  }
  return Buffer.concat(parts)
}
