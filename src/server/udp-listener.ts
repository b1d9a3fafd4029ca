/**
 * One UDP socket answering queries: each datagram goes to the handler and the
 * answer (if any) goes back to its source. Socket errors are logged, never fatal.
 */
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import type { Logger } from '../telemetry/index.js'
import type { QueryHandler } from '../query/index.js'
import type { ListenAddress } from './listen-address.js'

export interface UdpListener {
  readonly port: number
  close(): Promise<void>
}

/**
 * SO_RCVBUF asked for. Linux's default (net.core.rmem_default, 208 KiB) holds
 * about 270 small datagrams: bench/guard-flood.mjs at 20k queries/s lost 5% of
 * a legitimate client's queries to RcvbufErrors with it. The kernel caps the
 * request at net.core.rmem_max, so raising that sysctl is the operator's lever.
 */
const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

/** Binds and starts answering. Rejects if the address cannot be bound. */
export async function listenUdp(addr: ListenAddress, handler: QueryHandler, logger: Logger): Promise<UdpListener> {
  const socket: Socket = createSocket({
    type: addr.family === 6 ? 'udp6' : 'udp4',
    ipv6Only: addr.family === 6,
    recvBufferSize: UDP_RECEIVE_BUFFER_BYTES,
  })
  socket.on('message', (msg, rinfo) => {
    const answer = handler(msg, 'udp', rinfo.address)
    if (!answer) return
    socket.send(answer, rinfo.port, rinfo.address, (err) => {
      if (err) logger.debug({ err, client: rinfo.address }, 'udp send failed')
    })
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
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}
