/**
 * A UDP socket served by the native addon (native/udp_batch.c): the addon
 * reads up to BATCH datagrams with one recvmmsg, calls onBatch once, and sends
 * what onBatch left in the shared tx buffer with one sendmmsg. The buffers are
 * allocated once per socket; per datagram this file creates one subarray view
 * and, for the handler, the source address as text.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../telemetry/index.js'
import type { QueryHandler } from '../query/index.js'
import { formatAddress } from '../steering/index.js'
import type { ListenAddress } from './listen-address.js'
import { UDP_RECEIVE_BUFFER_BYTES } from './udp-socket.js'
import type { UdpListener, UdpOptions } from './udp-socket.js'

/** The addon's exports (native/udp_batch.c). */
interface UdpBatchAddon {
  readonly BATCH: number
  readonly RX_SLOT_BYTES: number
  readonly TX_SLOT_BYTES: number
  readonly META_INTS: number
  readonly ADDR_BYTES: number
  open(
    host: string,
    port: number,
    family: number,
    reusePort: boolean,
    recvBufferBytes: number,
    rx: Uint8Array,
    meta: Int32Array,
    addr: Uint8Array,
    tx: Uint8Array,
    txLen: Int32Array,
    onBatch: (count: number) => void,
  ): { handle: object; port: number }
  sendTo(handle: object, index: number, bytes: Uint8Array): void
  counters(handle: object): UdpBatchCounters
  close(handle: object): void
}

export interface UdpBatchCounters {
  readonly received: number
  readonly sent: number
  readonly sendErrors: number
  readonly receiveErrors: number
}

/** Where node-gyp puts the addon, from dist/server/ and src/server/ alike. */
const ADDON_PATH = fileURLToPath(new URL('../../build/Release/udp_batch.node', import.meta.url))
/** Per-datagram metadata the addon writes: length, source port, family (4|6), flags (bit 0: cut at RX_SLOT_BYTES). */
const META_LENGTH = 0
const META_FAMILY = 2

let cached: { ok: true; addon: UdpBatchAddon } | { ok: false; error: string } | undefined

/** Loads the addon once; a missing or broken build is a reason, not an exception. */
export function loadUdpBatch(): { ok: true; addon: UdpBatchAddon } | { ok: false; error: string } {
  if (!cached) {
    try {
      const addon = createRequire(import.meta.url)(ADDON_PATH) as UdpBatchAddon
      cached = { ok: true, addon }
    } catch (err) {
      cached = { ok: false, error: (err as Error).message.split('\n')[0] ?? String(err) }
    }
  }
  return cached
}

/** Binds and starts answering through the addon. Rejects (code EADDRINUSE etc.) if the address cannot be bound. */
export async function listenUdpBatch(addr: ListenAddress, handler: QueryHandler, logger: Logger, options: UdpOptions = {}): Promise<UdpListener> {
  const loaded = loadUdpBatch()
  if (!loaded.ok) throw Object.assign(new Error(`native UDP addon not loadable: ${loaded.error}`), { code: 'STEER_ERR_UDP_NATIVE' })
  const native = loaded.addon
  const { BATCH, RX_SLOT_BYTES, TX_SLOT_BYTES, META_INTS, ADDR_BYTES } = native
  const rx = new Uint8Array(BATCH * RX_SLOT_BYTES)
  const meta = new Int32Array(BATCH * META_INTS)
  const addresses = new Uint8Array(BATCH * ADDR_BYTES)
  const tx = new Uint8Array(BATCH * TX_SLOT_BYTES)
  const txLen = new Int32Array(BATCH)
  // Set once open() returns; onBatch only runs after that.
  const opened: { handle?: object } = {}

  const onBatch = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const m = i * META_INTS
      // A datagram over RX_SLOT_BYTES arrives cut; the decoder finds it malformed (FORMERR or a counted drop).
      const length = meta[m + META_LENGTH] as number
      const start = i * RX_SLOT_BYTES
      const a = i * ADDR_BYTES
      const client =
        meta[m + META_FAMILY] === 4
          ? `${addresses[a]}.${addresses[a + 1]}.${addresses[a + 2]}.${addresses[a + 3]}`
          : formatAddress(addresses.subarray(a, a + 16))
      const answer = handler(rx.subarray(start, start + length), 'udp', client)
      if (!answer) continue
      if (answer.length <= TX_SLOT_BYTES) {
        tx.set(answer, i * TX_SLOT_BYTES)
        txLen[i] = answer.length
      } else if (opened.handle) {
        native.sendTo(opened.handle, i, answer)
      }
    }
  }

  const { handle, port } = native.open(addr.host, addr.port, addr.family, options.reusePort === true, UDP_RECEIVE_BUFFER_BYTES, rx, meta, addresses, tx, txLen, onBatch)
  opened.handle = handle
  logger.debug({ port: port, batch: BATCH }, 'udp socket (native batch I/O)')
  let closed = false
  return {
    port: port,
    io: 'native',
    close: async () => {
      if (closed) return
      closed = true
      const c = native.counters(handle)
      if (c.sendErrors > 0 || c.receiveErrors > 0) logger.warn(c, 'udp socket closed with send or receive errors')
      // The fd closes here; libuv frees the poll handle (and the addon its memory) on a later loop turn.
      native.close(handle)
    },
  }
}
