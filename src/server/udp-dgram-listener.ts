/**
 * One UDP socket on node:dgram answering queries: each datagram goes to the handler and the
 * answer (if any) goes back to its source. Socket errors are logged, never fatal.
 */
import { createSocket } from 'node:dgram'
import type { Socket, SocketOptions } from 'node:dgram'
import type { Logger } from '../telemetry/index.js'
import type { QueryHandler } from '../query/index.js'
import type { ListenAddress } from './listen-address.js'

import { UDP_RECEIVE_BUFFER_BYTES } from './udp-socket.js'
import type { UdpListener, UdpOptions } from './udp-socket.js'

/**
 * Binds and starts answering. Rejects if the address cannot be bound.
 * `reusePort` is not available on node:dgram before Node 22; in a cluster
 * worker, Node shares the primary's socket instead.
 */
export async function listenUdpDgram(addr: ListenAddress, handler: QueryHandler, logger: Logger, _options: UdpOptions = {}): Promise<UdpListener> {
  const family = addr.family
  const socket: Socket = createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    ipv6Only: family === 6,
    recvBufferSize: UDP_RECEIVE_BUFFER_BYTES,
    // Replies go to the address the datagram came from, always an IP literal:
    // the default dns.lookup checks it with a regex and defers the send by a
    // tick (3% of server CPU under dnsperf, measured with --cpu-prof).
    lookup: (address: string, _options: unknown, callback: (err: Error | null, address: string, family: number) => void) => callback(null, address, family),
  } as SocketOptions)
  const onSent = (err: Error | null): void => {
    if (err) logger.debug({ err }, 'udp send failed')
  }
  socket.on('message', (msg, rinfo) => {
    const answer = handler(msg, 'udp', rinfo.address)
    if (!answer) return
    socket.send(answer, rinfo.port, rinfo.address, onSent)
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(addr.port, addr.host, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  socket.on('error', (err) => logger.warn({ err }, 'udp socket error'))
  return {
    port: socket.address().port,
    io: 'dgram',
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}
