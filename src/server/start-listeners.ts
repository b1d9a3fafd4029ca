/**
 * Binds UDP and TCP on every listen address. With port 0 (tests) the UDP socket
 * picks a free port and TCP binds the same one, retrying with a new pick if TCP
 * finds it taken, so one address always means one port for both transports.
 */
import type { Logger } from '../telemetry/index.js'
import type { QueryHandler } from '../query/index.js'
import { formatListenAddress } from './listen-address.js'
import type { ListenAddress } from './listen-address.js'
import { listenTcp } from './tcp-listener.js'
import type { TcpLimits, TcpListener } from './tcp-listener.js'
import { listenUdp } from './udp-listener.js'
import type { UdpListener, UdpOptions } from './udp-socket.js'

export interface Listeners {
  /** Bound addresses with their real ports, in the order given. */
  readonly bound: readonly ListenAddress[]
  tcpConnectionCount(): number
  close(): Promise<void>
}

const PORT_ZERO_ATTEMPTS = 20

/** Binds everything or nothing: on failure, what was bound is closed and the error rethrown. */
export async function startListeners(
  addresses: readonly ListenAddress[],
  handler: QueryHandler,
  tcpLimits: TcpLimits,
  logger: Logger,
  udpOptions: UdpOptions = {},
): Promise<Listeners> {
  const udp: UdpListener[] = []
  const tcp: TcpListener[] = []
  const bound: ListenAddress[] = []
  const closeAll = async (): Promise<void> => {
    await Promise.all([...udp.map((l) => l.close()), ...tcp.map((l) => l.close())])
  }
  try {
    for (const addr of addresses) {
      for (let attempt = 1; ; attempt++) {
        const u = await listenUdp(addr, handler, logger, udpOptions)
        try {
          const t = await listenTcp({ ...addr, port: u.port }, handler, tcpLimits, logger)
          udp.push(u)
          tcp.push(t)
          bound.push({ ...addr, port: u.port })
          logger.info({ listen: formatListenAddress({ host: addr.host, port: u.port }), udpIo: u.io }, 'listening on udp and tcp')
          break
        } catch (err) {
          await u.close()
          const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
          if (addr.port !== 0 || !inUse || attempt >= PORT_ZERO_ATTEMPTS) throw err
        }
      }
    }
  } catch (err) {
    await closeAll()
    throw err
  }
  return {
    bound,
    tcpConnectionCount: () => tcp.reduce((n, l) => n + l.connectionCount(), 0),
    close: closeAll,
  }
}
