/** What every UDP listener implementation shares. */

export interface UdpListener {
  readonly port: number
  /** Which implementation serves this socket. */
  readonly io: UdpIo
  close(): Promise<void>
}

export type UdpIo = 'native' | 'dgram'

export interface UdpOptions {
  /** SO_REUSEPORT: several processes bind the same address and the kernel spreads datagrams over them. */
  readonly reusePort?: boolean
}

/**
 * SO_RCVBUF asked for. Linux's default (net.core.rmem_default, 208 KiB) holds
 * about 270 small datagrams: bench/guard-flood.mjs at 20k queries/s lost 5% of
 * a legitimate client's queries to RcvbufErrors with it. The kernel caps the
 * request at net.core.rmem_max, so raising that sysctl is the operator's lever.
 */
export const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
