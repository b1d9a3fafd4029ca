/**
 * Rdata as bytes, both ways: rendering parts to uncompressed wire bytes (for
 * duplicate detection and length checks) and turning RFC 3597 `\#` bytes of a
 * known type back into parts, so names inside them are seen by lookups and
 * compressed where the type allows. Never compresses, never reads compression
 * pointers: RFC 3597 section 5 requires names in generic rdata to be uncompressed.
 */
import { isRdataName, labelsToName, MAX_LABEL_BYTES, MAX_NAME_WIRE_BYTES, nameToWire } from '../wire/index.js'
import type { RdataPart } from '../wire/index.js'
import { bytesFrom } from './rdata-fields.js'
import { ZONE_RRTYPE, rrTypeToText } from './rdata-types.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'

/** Accumulates rdata parts, merging adjacent literal bytes into one part. */
export class RdataBuilder {
  private readonly parts: RdataPart[] = []
  private pending: number[] = []

  bytes(b: Uint8Array | readonly number[]): this {
    for (const x of b) this.pending.push(x)
    return this
  }

  name(name: string, compress: boolean): this {
    this.flush()
    this.parts.push({ name, compress })
    return this
  }

  done(): RdataPart[] {
    this.flush()
    return this.parts
  }

  private flush(): void {
    if (this.pending.length > 0) {
      this.parts.push(bytesFrom(this.pending))
      this.pending = []
    }
  }
}

/**
 * A string that is equal for two rdata exactly when their parts are: bytes as
 * latin1, names tagged with a character no byte can produce. Cheaper than
 * rendering wire bytes for duplicate detection over large zones.
 */
export function rdataKey(parts: readonly RdataPart[]): string {
  let key = ''
  for (const p of parts) {
    key += isRdataName(p) ? `\u0100${p.name}\u0101` : Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('latin1')
  }
  return key
}

/** Uncompressed wire bytes of rdata parts (names lowercased, as stored). */
export function rdataToWire(parts: readonly RdataPart[]): Uint8Array {
  const chunks = parts.map((p) => (isRdataName(p) ? nameToWire(p.name) : p))
  let size = 0
  for (const c of chunks) size += c.length
  const out = new Uint8Array(size)
  let o = 0
  for (const c of chunks) {
    out.set(c, o)
    o += c.length
  }
  return out
}

function bad(type: number, why: string): ZoneSyntaxError {
  return new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `generic rdata for ${rrTypeToText(type)}: ${why}`)
}

/** Reads an uncompressed name at `offset`; returns it and the offset after it. */
function readName(type: number, data: Uint8Array, offset: number): [string, number] {
  const labels: Uint8Array[] = []
  let o = offset
  let wireBytes = 1
  for (;;) {
    if (o >= data.length) throw bad(type, 'a name runs past the end of the data')
    const len = data[o] as number
    if (len === 0) return [labelsToName(labels), o + 1]
    if (len > MAX_LABEL_BYTES) throw bad(type, 'compressed or invalid label in a name (names must be uncompressed, RFC 3597 section 5)')
    wireBytes += 1 + len
    if (wireBytes > MAX_NAME_WIRE_BYTES) throw bad(type, `a name is longer than ${MAX_NAME_WIRE_BYTES} bytes`)
    if (o + 1 + len > data.length) throw bad(type, 'a label runs past the end of the data')
    labels.push(data.subarray(o + 1, o + 1 + len))
    o += 1 + len
  }
}

/** Offset after `count` character-strings starting at `offset`. */
function skipStrings(type: number, data: Uint8Array, offset: number, count: number): number {
  let o = offset
  for (let k = 0; k < count; k++) {
    if (o >= data.length) throw bad(type, 'missing character-string')
    o += 1 + (data[o] as number)
    if (o > data.length) throw bad(type, 'a character-string runs past the end of the data')
  }
  return o
}

function need(type: number, data: Uint8Array, offset: number, count: number): void {
  if (offset + count > data.length) throw bad(type, `needs at least ${offset + count} bytes, has ${data.length}`)
}

/**
 * Parts for RFC 3597 generic rdata of type `type`. For the types whose rdata
 * holds names (NS, CNAME, PTR, DNAME, MX, SOA, SRV, NAPTR) the names are decoded
 * so they behave exactly as if written in text form; fixed-size and
 * string-based types are checked for shape; other types are kept as bytes.
 * Throws ZoneSyntaxError (BAD_RDATA) when the bytes do not fit the type.
 */
export function genericToParts(type: number, data: Uint8Array): RdataPart[] {
  const b = new RdataBuilder()
  let end: number
  switch (type) {
    case ZONE_RRTYPE.A:
      if (data.length !== 4) throw bad(type, `must be 4 bytes, has ${data.length}`)
      return [data]
    case ZONE_RRTYPE.AAAA:
      if (data.length !== 16) throw bad(type, `must be 16 bytes, has ${data.length}`)
      return [data]
    case ZONE_RRTYPE.NS:
    case ZONE_RRTYPE.CNAME:
    case ZONE_RRTYPE.PTR:
    case ZONE_RRTYPE.DNAME: {
      const [name, o] = readName(type, data, 0)
      // RFC 3597 section 4: only the RFC 1035 types may be compressed; DNAME may not.
      b.name(name, type !== ZONE_RRTYPE.DNAME)
      end = o
      break
    }
    case ZONE_RRTYPE.MX: {
      need(type, data, 0, 2)
      const [name, o] = readName(type, data, 2)
      b.bytes(data.subarray(0, 2)).name(name, true)
      end = o
      break
    }
    case ZONE_RRTYPE.SOA: {
      const [mname, o1] = readName(type, data, 0)
      const [rname, o2] = readName(type, data, o1)
      need(type, data, o2, 20)
      b.name(mname, true).name(rname, true).bytes(data.subarray(o2, o2 + 20))
      end = o2 + 20
      break
    }
    case ZONE_RRTYPE.SRV: {
      need(type, data, 0, 6)
      const [name, o] = readName(type, data, 6)
      b.bytes(data.subarray(0, 6)).name(name, false)
      end = o
      break
    }
    case ZONE_RRTYPE.NAPTR: {
      need(type, data, 0, 4)
      const o1 = skipStrings(type, data, 4, 3)
      const [name, o2] = readName(type, data, o1)
      b.bytes(data.subarray(0, o1)).name(name, false)
      end = o2
      break
    }
    case ZONE_RRTYPE.TXT:
    case ZONE_RRTYPE.SPF: {
      if (data.length === 0) throw bad(type, 'needs at least one character-string')
      let o = 0
      while (o < data.length) o = skipStrings(type, data, o, 1)
      return [data]
    }
    case ZONE_RRTYPE.HINFO:
      end = skipStrings(type, data, 0, 2)
      b.bytes(data.subarray(0, end))
      break
    default:
      // Known types must not be empty (Knot refuses `\# 0` for them, APL
      // aside); unknown types may be (RFC 3597 section 5).
      if (data.length === 0 && type !== ZONE_RRTYPE.APL && (Object.values(ZONE_RRTYPE) as number[]).includes(type)) {
        throw bad(type, 'must not be empty')
      }
      return data.length === 0 ? [] : [data]
  }
  if (end !== data.length) throw bad(type, `${data.length - end} bytes left over after the last field`)
  return b.done()
}
