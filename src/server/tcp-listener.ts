/**
 * DNS over TCP (RFC 7766): two-byte length framing, many queries per
 * connection, pipelining with answers in order, and the limits that keep slow
 * or greedy clients from holding the server: total and per-client connection
 * caps, an idle timeout, a deadline for finishing a started message, and a cap
 * on answers queued unsent per connection (reading pauses until they drain).
 * At the total cap a new client is still served: the connection that has gone
 * longest without a complete query is closed to make room (RFC 7766 section
 * 6.2.3 lets a server under pressure close idle connections), so an attacker
 * holding idle connections cannot lock real clients out.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import type { Logger } from '../telemetry/index.js'
import type { QueryHandler } from '../query/index.js'
import type { ListenAddress } from './listen-address.js'

export interface TcpLimits {
  /** Connections open at once across all clients; beyond it the least recently active one is closed. */
  readonly maxConnections: number
  /** Connections open at once from one client address. */
  readonly maxPerClient: number
  /** Close a connection with no complete query for this long (RFC 7766 section 6.2.3). */
  readonly idleTimeoutMs: number
  /** Answers written but not yet flushed to the client before reading pauses. */
  readonly maxPipelined: number
}

export interface TcpListener {
  readonly port: number
  /** Connections currently open (for metrics and tests). */
  connectionCount(): number
  close(): Promise<void>
}

/** Binds and starts answering. Rejects if the address cannot be bound. */
export async function listenTcp(
  addr: ListenAddress,
  handler: QueryHandler,
  limits: TcpLimits,
  logger: Logger,
): Promise<TcpListener> {
  // Insertion order is recency order: a connection moves to the end when it
  // completes a query, so the first one is the longest without one.
  const open = new Set<Socket>()
  const perClient = new Map<string, number>()
  const markActive = (socket: Socket): void => {
    if (!open.delete(socket)) return
    open.add(socket)
  }

  const server: Server = createServer({ noDelay: true }, (socket) => {
    const client = socket.remoteAddress ?? ''
    const fromClient = perClient.get(client) ?? 0
    if (fromClient >= limits.maxPerClient) {
      logger.debug({ client, open: open.size }, 'tcp connection refused: per-client limit')
      socket.destroy()
      return
    }
    if (open.size >= limits.maxConnections) {
      const idlest = open.values().next().value as Socket
      logger.debug({ client, closed: idlest.remoteAddress, open: open.size }, 'tcp at maxConnections: closed the least recently active connection')
      // Removed now, not at its 'close' event, so a burst of accepts evicts distinct connections.
      open.delete(idlest)
      idlest.destroy()
    }
    open.add(socket)
    perClient.set(client, fromClient + 1)
    socket.once('close', () => {
      open.delete(socket)
      const n = (perClient.get(client) ?? 1) - 1
      if (n <= 0) perClient.delete(client)
      else perClient.set(client, n)
    })
    serveConnection(socket, client, handler, limits, markActive)
  })
  server.on('error', (err) => logger.warn({ err }, 'tcp server error'))

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: addr.port, host: addr.host, ipv6Only: addr.family === 6 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = server.address()
  return {
    port: typeof bound === 'object' && bound ? bound.port : addr.port,
    connectionCount: () => open.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      }),
  }
}

function serveConnection(socket: Socket, client: string, handler: QueryHandler, limits: TcpLimits, markActive: (socket: Socket) => void): void {
  let pending: Buffer = Buffer.alloc(0)
  let unflushed = 0
  let paused = false
  // Idle: no bytes at all for idleTimeoutMs. A started message must also finish
  // within idleTimeoutMs, or a client trickling one byte at a time (slowloris)
  // would hold the connection forever.
  socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy())
  let partialTimer: NodeJS.Timeout | undefined

  const onWritten = (): void => {
    unflushed--
    if (paused && unflushed < limits.maxPipelined) {
      paused = false
      socket.resume()
      drain()
    }
  }

  const drain = (): void => {
    let completed = 0
    while (pending.length >= 2 && !socket.destroyed) {
      if (unflushed >= limits.maxPipelined) {
        paused = true
        socket.pause()
        return
      }
      const length = pending.readUInt16BE(0)
      if (length === 0) {
        // A zero-length frame cannot hold a DNS message: the stream is broken.
        socket.destroy()
        return
      }
      if (pending.length < 2 + length) break
      const message = pending.subarray(2, 2 + length)
      pending = pending.subarray(2 + length)
      completed++
      const answer = handler(message, 'tcp', client)
      if (answer) {
        const frame = Buffer.allocUnsafe(2 + answer.length)
        frame.writeUInt16BE(answer.length, 0)
        frame.set(answer, 2)
        unflushed++
        socket.write(frame, onWritten)
      }
    }
    if (completed > 0) markActive(socket)
    if (partialTimer && (completed > 0 || pending.length === 0)) {
      clearTimeout(partialTimer)
      partialTimer = undefined
    }
    if (pending.length > 0 && !partialTimer) {
      partialTimer = setTimeout(() => socket.destroy(), limits.idleTimeoutMs)
    }
  }

  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    if (!paused) drain()
  })
  socket.on('error', () => socket.destroy())
  socket.on('close', () => {
    if (partialTimer) clearTimeout(partialTimer)
  })
}
