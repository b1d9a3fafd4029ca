/**
 * CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, the zlib/PNG/Ethernet
 * CRC) over bytes, continuable across chunks. Uses node:zlib's native crc32
 * when the runtime has it (added in Node 20.15 and 22.2); `engines` allows
 * older Node 20 releases, so a table-driven fallback (Sarwate's one table,
 * 256 entries) stands in there. Both must agree: test/state/crc32.test.ts
 * checks the fallback against the standard check value and against zlib.
 */
import * as zlib from 'node:zlib'

type Crc32Fn = (data: Uint8Array, value?: number) => number

const TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** Table-driven CRC-32, exported for the conformance test; prefer `crc32`. Never throws. */
export function crc32Table(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0
  for (let i = 0; i < data.length; i++) c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}

// Read through a record so Node releases without zlib.crc32 type-check and fall back alike.
const native = (zlib as unknown as Record<string, unknown>)['crc32'] as Crc32Fn | undefined

/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before; 0 to start). Unsigned 32-bit. */
export const crc32: Crc32Fn = native === undefined ? crc32Table : (data, value = 0) => native(data, value) >>> 0
