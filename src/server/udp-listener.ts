/**
 * UDP listeners: the batched native socket (native/udp_batch.c) when the
 * addon is built, node:dgram otherwise. Both hand each datagram to the same
 * synchronous QueryHandler and send its answer back to the datagram's source.
 *
 * STEERDNS_UDP_IO=dgram forces node:dgram (for comparison and for tests of
 * that path); =native makes a missing addon an error instead of a fallback.
 */
import type { Logger } from '../telemetry/index.js'
import type { QueryHandler } from '../query/index.js'
import type { ListenAddress } from './listen-address.js'
import { listenUdpBatch, loadUdpBatch } from './udp-batch-listener.js'
import { listenUdpDgram } from './udp-dgram-listener.js'
import type { UdpIo, UdpListener, UdpOptions } from './udp-socket.js'

/** The implementation new listeners get: native when built (unless STEERDNS_UDP_IO=dgram). Throws when native is demanded and missing. */
export function chosenUdpIo(): { io: UdpIo; why: string } {
  const asked = process.env.STEERDNS_UDP_IO ?? 'auto'
  if (asked === 'dgram') return { io: 'dgram', why: 'STEERDNS_UDP_IO=dgram' }
  const loaded = loadUdpBatch()
  if (loaded.ok) return { io: 'native', why: 'native/udp_batch built' }
  if (asked === 'native') throw Object.assign(new Error(`STEERDNS_UDP_IO=native but the addon is not loadable: ${loaded.error}`), { code: 'STEER_ERR_UDP_NATIVE' })
  return { io: 'dgram', why: `native addon not loadable (${loaded.error}); run npm run build:native` }
}

/** Binds and starts answering. Rejects if the address cannot be bound. */
export async function listenUdp(addr: ListenAddress, handler: QueryHandler, logger: Logger, options: UdpOptions = {}): Promise<UdpListener> {
  const { io } = chosenUdpIo()
  return io === 'native' ? listenUdpBatch(addr, handler, logger, options) : listenUdpDgram(addr, handler, logger, options)
}
