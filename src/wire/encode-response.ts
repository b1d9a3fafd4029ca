/**
 * The response encoder on the hot path: header, the question bytes as
 * received, the three record sections with name compression, OPT last, and
 * truncation. Hand-written over one preallocated scratch buffer (dns-packet
 * has no compression and allocates per field). Never reads zones or config:
 * it writes exactly what the Response says, or less when it does not fit.
 */
import type { Response, ResponseEdns } from './message.js'
import { MAX_LABEL_BYTES, MAX_NAME_WIRE_BYTES } from './name.js'
import { MAX_LABELS, NAME_SCAN, scanQuestionName, scanned } from './name-scan.js'
import type { ResourceRecord } from './record.js'
import { RRTYPE } from './record.js'

/** Error codes thrown for inputs no valid zone or decision can produce. */
export const ENCODE_ERROR = {
  LABEL_TOO_LONG: 'STEER_ERR_WIRE_LABEL_TOO_LONG',
  EMPTY_LABEL: 'STEER_ERR_WIRE_EMPTY_LABEL',
  NAME_TOO_LONG: 'STEER_ERR_WIRE_NAME_TOO_LONG',
  RDATA_TOO_LONG: 'STEER_ERR_WIRE_RDATA_TOO_LONG',
} as const

const HEADER_BYTES = 12
/** RFC 1035 section 4.2.1; RFC 6891 section 6.2.5 (nothing smaller is ever asked for). */
const MIN_MESSAGE_BYTES = 512
const MAX_MESSAGE_BYTES = 65535
const MAX_RDATA_BYTES = 65535
/** Root owner, TYPE, CLASS, TTL, RDLENGTH. */
const OPT_FIXED_BYTES = 11
const OPTION_HEADER_BYTES = 4
/** Compression pointers carry 14 bits of offset (RFC 1035 section 4.1.4). */
const MAX_POINTER_OFFSET = 0x3fff
/** Below this a byte loop copies faster than Buffer#copy's call overhead (measured on Node 20). */
const SMALL_COPY_BYTES = 256

const FLAG_QR = 0x8000
const FLAG_AA = 0x0400
const FLAG_TC = 0x0200
const FLAG_RD = 0x0100
const FLAG_CD = 0x0010
const EDNS_FLAG_DO = 0x8000

const BACKSLASH = 0x5c
const DOT = 0x2e

/**
 * One message at most, plus one record written past the limit before the
 * encoder sees that it does not fit (owner 255 + fixed 10 + rdata 65535), so
 * no write ever needs a bounds check of its own.
 */
const scratch = Buffer.alloc(MAX_MESSAGE_BYTES + MAX_NAME_WIRE_BYTES + 10 + MAX_RDATA_BYTES + 1)
/** Write position in `scratch`; the encoder is synchronous and not re-entrant. */
let pos = 0
/** Compression table: lowercase internal name suffix -> offset of its first label. */
const table = new Map<string, number>()
/** Keys added to `table`, in order, so a record that does not fit can be taken back. */
const undo: string[] = []

/** Where an internal-form name's labels start, and the suffix key of each. */
interface NameShape {
  /** keys[i]: the name from label i on (keys[0] is the name itself). */
  readonly keys: readonly string[]
  /** starts[i]: index in the text where label i starts. */
  readonly starts: readonly number[]
}

/**
 * Shapes of recently written names. Records come from immutable snapshots, so
 * the same name strings recur on every query; caching their suffix strings
 * means V8 hashes each key once (the hash lives in the string) instead of
 * slicing and hashing fresh strings per response. Measured on Node 20 with the
 * cache, Map#clear avoided and small copies looped: encodeResponse of a
 * two-record ECS answer went from about 3.6 to about 1.4 microseconds on a
 * loaded two-core machine (runs minutes apart: indicative; bench/ owns numbers).
 * Cleared wholesale when full, so a random-name flood costs what no cache would.
 */
const shapes = new Map<string, NameShape>()
const MAX_CACHED_SHAPES = 10_000

function rdataTooLong(rr: ResourceRecord): Error {
  return codedError(ENCODE_ERROR.RDATA_TOO_LONG, `rdata of ${rr.name} over ${MAX_RDATA_BYTES} bytes`)
}

function labelTooLong(name: string): Error {
  return codedError(ENCODE_ERROR.LABEL_TOO_LONG, `label over 63 bytes in ${name}`)
}

function nameTooLong(name: string): Error {
  return codedError(ENCODE_ERROR.NAME_TOO_LONG, `name over 255 bytes: ${name}`)
}

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

/**
 * Encodes a response. Returns a fresh buffer holding exactly the message
 * (safe to keep and send asynchronously; the scratch buffer is reused).
 *
 * - Header: QR=1; opcode, AA, RD, CD as given; RA, Z, AD zero; TC set only by
 *   truncation. The rcode's low 4 bits go in the header and its upper 8 bits
 *   in the OPT TTL (RFC 6891 section 6.1.3). Without `edns` only the low bits
 *   are written: extended rcodes (BADVERS, BADCOOKIE) need an OPT, and the
 *   caller must supply one (Knot answers SERVFAIL instead; we keep the encoder
 *   literal and leave the policy to the caller).
 * - The question is `questionBytes` verbatim (QDCOUNT 1), or none.
 * - Names are compressed (RFC 1035 section 4.1.4) against every name written
 *   so far, the question first, so owners at or below the qname point into the
 *   question and echo the client's case. Rdata names are compressed only when
 *   `compress` is true (RFC 3597 section 4); names written whole (an SRV
 *   target) still become pointer targets for later names, as Knot does: that
 *   compresses nothing inside the SRV, and saves the bytes Knot saves.
 * - OPT comes last and its room is reserved first, so it always fits (if its
 *   options alone would not, it is written without options).
 * - `maxBytes` is clamped to 512..65535. When a record of the answer or
 *   authority section, or one of the first `requiredAdditional` additional
 *   records, does not fit: TC=1 and only header, question and OPT are sent,
 *   counts zeroed (a minimal answer, as BIND does: a partial RRset helps no
 *   one, the client retries over TCP). Other additional records that do not
 *   fit are left out silently, whole RRsets at a time (RFC 2181 section 9).
 *
 * Throws (coded STEER_ERR_WIRE_*) only for inputs that cannot be valid DNS: a
 * label over 63 bytes, an empty label, a name over 255 bytes, rdata over
 * 65535 bytes.
 */
export function encodeResponse(r: Response): Uint8Array {
  const maxBytes = clampMaxBytes(r.maxBytes)
  // Deleting the few keys of the last response is cheaper than Map#clear,
  // which allocates a fresh backing store. It also cleans up after a throw.
  rollback(0, 0)
  pos = HEADER_BYTES

  const question = r.questionBytes
  if (question !== undefined) {
    scratch.set(question, HEADER_BYTES)
    registerQuestion(question)
    pos += question.length
  }
  const afterQuestion = pos

  const edns = r.edns
  let optBytes = 0
  let withOptions = true
  if (edns !== undefined) {
    optBytes = optWireBytes(edns)
    if (afterQuestion + optBytes > maxBytes) {
      withOptions = false
      optBytes = OPT_FIXED_BYTES
    }
  }
  const limit = maxBytes - optBytes

  let anCount = 0
  let nsCount = 0
  let arCount = 0
  // A forced truncation (an RRL slip) sends the minimal TC=1 answer whatever fits.
  let truncated = r.truncate === true
  for (const rr of truncated ? [] : r.answer) {
    if (!put(rr, limit)) {
      truncated = true
      break
    }
    anCount++
  }
  if (!truncated) {
    for (const rr of r.authority) {
      if (!put(rr, limit)) {
        truncated = true
        break
      }
      nsCount++
    }
  }
  if (!truncated) {
    const additional = r.additional
    const required = Math.min(Math.max(r.requiredAdditional | 0, 0), additional.length)
    for (let i = 0; i < required; i++) {
      if (!put(additional[i] as ResourceRecord, limit)) {
        truncated = true
        break
      }
      arCount++
    }
    // Optional records go in RRset by RRset: a half RRset would be taken for
    // the whole one by a cache, so one that does not fit is dropped entirely.
    let i = required
    while (!truncated && i < additional.length) {
      const first = additional[i] as ResourceRecord
      let end = i + 1
      while (end < additional.length && sameRRset(additional[end] as ResourceRecord, first)) end++
      const markPos = pos
      const markUndo = undo.length
      let written = 0
      for (let k = i; k < end; k++) {
        if (!put(additional[k] as ResourceRecord, limit)) {
          rollback(markPos, markUndo)
          written = 0
          break
        }
        written++
      }
      arCount += written
      i = end
    }
  }
  if (truncated) {
    pos = afterQuestion
    anCount = 0
    nsCount = 0
    arCount = 0
  }

  if (edns !== undefined) {
    writeOpt(edns, withOptions, r.rcode)
    arCount++
  }

  let flags = FLAG_QR | ((r.opcode & 0xf) << 11) | (r.rcode & 0xf)
  if (r.authoritative) flags |= FLAG_AA
  if (truncated) flags |= FLAG_TC
  if (r.recursionDesired) flags |= FLAG_RD
  if (r.checkingDisabled) flags |= FLAG_CD
  put16(0, r.id)
  put16(2, flags)
  put16(4, question !== undefined ? 1 : 0)
  put16(6, anCount)
  put16(8, nsCount)
  put16(10, arCount)

  // Buffer.allocUnsafe takes small messages from Node's pool: cheaper than a
  // fresh ArrayBuffer each time, and the slice is never reused while held.
  const out = Buffer.allocUnsafe(pos)
  if (pos <= SMALL_COPY_BYTES) {
    for (let i = 0; i < pos; i++) out[i] = scratch[i] as number
  } else {
    scratch.copy(out, 0, 0, pos)
  }
  return out
}

function clampMaxBytes(maxBytes: number): number {
  // A value under 512 is the caller's bug (RFC 6891 section 6.2.5 treats it as 512).
  if (!(maxBytes >= MIN_MESSAGE_BYTES)) return MIN_MESSAGE_BYTES
  return maxBytes > MAX_MESSAGE_BYTES ? MAX_MESSAGE_BYTES : Math.floor(maxBytes)
}

function put16(at: number, value: number): void {
  scratch[at] = (value >> 8) & 0xff
  scratch[at + 1] = value & 0xff
}

function sameRRset(a: ResourceRecord, b: ResourceRecord): boolean {
  return a.type === b.type && a.class === b.class && a.name === b.name
}

function rollback(toPos: number, toUndo: number): void {
  for (let i = undo.length - 1; i >= toUndo; i--) table.delete(undo[i] as string)
  undo.length = toUndo
  pos = toPos
}

/** Writes one record; takes it back and answers false when it ends past `limit`. */
function put(rr: ResourceRecord, limit: number): boolean {
  const markPos = pos
  const markUndo = undo.length
  writeRecord(rr)
  if (pos > limit) {
    rollback(markPos, markUndo)
    return false
  }
  return true
}

function writeRecord(rr: ResourceRecord): void {
  writeName(rr.name, true)
  put16(pos, rr.type)
  put16(pos + 2, rr.class)
  // TTLs are 0..2^31-1 (RFC 2181 section 8); anything else is written as 0.
  const ttlSec = rr.ttlSec >= 0 && rr.ttlSec <= 0x7fffffff ? rr.ttlSec >>> 0 : 0
  scratch[pos + 4] = ttlSec >>> 24
  scratch[pos + 5] = (ttlSec >>> 16) & 0xff
  scratch[pos + 6] = (ttlSec >>> 8) & 0xff
  scratch[pos + 7] = ttlSec & 0xff
  const rdLenAt = pos + 8
  pos += 10
  const rdataStart = pos
  for (const part of rr.rdata) {
    if (part instanceof Uint8Array) {
      // Checked before the copy: the scratch margin covers one legal record only.
      if (pos - rdataStart + part.length > MAX_RDATA_BYTES) throw rdataTooLong(rr)
      scratch.set(part, pos)
      pos += part.length
    } else {
      writeName(part.name, part.compress)
      if (pos - rdataStart > MAX_RDATA_BYTES) throw rdataTooLong(rr)
    }
  }
  put16(rdLenAt, pos - rdataStart)
}

/**
 * Registers every suffix of the question name at its offset in the question,
 * keyed by canonical (lowercase) text. Names written later that share a
 * suffix point here, so the client's spelling is what it reads back.
 */
function registerQuestion(question: Uint8Array): void {
  if (scanQuestionName(question, 0) !== NAME_SCAN.OK || scanned.labelCount === 0) return // copied verbatim, never a target
  const shape = shapeOf(scanned.text)
  for (let i = 0; i < scanned.labelCount; i++) {
    const key = shape.keys[i] as string
    table.set(key, HEADER_BYTES + (scanned.labelWireOffsets[i] as number))
    undo.push(key)
  }
}

function shapeOf(name: string): NameShape {
  let shape = shapes.get(name)
  if (shape === undefined) {
    shape = splitLabels(name)
    if (shapes.size >= MAX_CACHED_SHAPES) shapes.clear()
    shapes.set(name, shape)
  }
  return shape
}

/**
 * Finds where each label of a non-root internal-form name starts (dots
 * escaped as `\.` are inside a label, `\DDD` is one byte).
 */
function splitLabels(name: string): NameShape {
  const starts = [0]
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === BACKSLASH) {
      i += isDigit3(name, i + 1) ? 3 : 1
    } else if (c === DOT) {
      if (starts.length >= MAX_LABELS) throw nameTooLong(name)
      starts.push(i + 1)
    }
  }
  const keys = starts.map((start) => (start === 0 ? name : name.slice(start)))
  return { keys, starts }
}

function isDigit3(s: string, i: number): boolean {
  if (i + 3 > s.length) return false
  for (let k = i; k < i + 3; k++) {
    const c = s.charCodeAt(k)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/**
 * Writes an internal-form name at `pos`. With `compress`, the longest suffix
 * already in the table becomes a pointer; either way the labels written here
 * become pointer targets for later names. The 255-byte limit is checked on
 * the labels written here; a suffix taken by pointer was checked when written
 * (zone loading validates whole names, so their sum cannot exceed it).
 */
function writeName(name: string, compress: boolean): void {
  if (name === '') {
    scratch[pos++] = 0
    return
  }
  const { keys, starts } = shapeOf(name)
  const count = starts.length
  let match = count
  let matchOffset = 0
  if (compress) {
    for (let i = 0; i < count; i++) {
      const at = table.get(keys[i] as string)
      if (at !== undefined) {
        match = i
        matchOffset = at
        break
      }
    }
  }
  const nameStart = pos
  for (let i = 0; i < match; i++) {
    const labelAt = pos
    // With compress, labels before the match are new by construction; without,
    // an existing (earlier) target is kept so a rollback never removes it.
    const key = keys[i] as string
    if (labelAt <= MAX_POINTER_OFFSET && (compress || !table.has(key))) {
      table.set(key, labelAt)
      undo.push(key)
    }
    const textStart = starts[i] as number
    const textEnd = i + 1 < count ? (starts[i + 1] as number) - 1 : name.length
    // Each byte takes at most 4 characters (\DDD): longer text cannot be a
    // legal label, and refusing it here keeps every write inside the scratch.
    if (textEnd - textStart > MAX_LABEL_BYTES * 4) throw labelTooLong(name)
    pos++
    writeLabelText(name, textStart, textEnd)
    const labelBytes = pos - labelAt - 1
    if (labelBytes > MAX_LABEL_BYTES) throw labelTooLong(name)
    if (labelBytes === 0) throw codedError(ENCODE_ERROR.EMPTY_LABEL, `empty label in ${name}`)
    scratch[labelAt] = labelBytes
    if (pos - nameStart >= MAX_NAME_WIRE_BYTES) throw nameTooLong(name) // root or pointer still to come
  }
  if (match < count) {
    scratch[pos++] = 0xc0 | (matchOffset >> 8)
    scratch[pos++] = matchOffset & 0xff
  } else {
    scratch[pos++] = 0
  }
}

/** Writes the raw bytes of one label from its escaped text, no length byte. */
function writeLabelText(name: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const c = name.charCodeAt(i)
    if (c === BACKSLASH && i + 1 < to) {
      if (isDigit3(name, i + 1)) {
        scratch[pos++] = Number(name.slice(i + 1, i + 4)) & 0xff
        i += 3
      } else {
        scratch[pos++] = name.charCodeAt(i + 1) & 0xff
        i += 1
      }
    } else {
      scratch[pos++] = c & 0xff
    }
  }
}

function optWireBytes(edns: ResponseEdns): number {
  let bytes = OPT_FIXED_BYTES
  for (const option of edns.options) bytes += OPTION_HEADER_BYTES + option.data.length
  return bytes
}

/** OPT record (RFC 6891 section 6.1.2): always version 0, extended rcode bits in the TTL. */
function writeOpt(edns: ResponseEdns, withOptions: boolean, rcode: number): void {
  scratch[pos] = 0 // root owner
  put16(pos + 1, RRTYPE.OPT)
  put16(pos + 3, edns.udpPayloadBytes & 0xffff)
  scratch[pos + 5] = (rcode >>> 4) & 0xff
  scratch[pos + 6] = 0 // version
  put16(pos + 7, edns.dnssecOk ? EDNS_FLAG_DO : 0)
  const rdLenAt = pos + 9
  pos += OPT_FIXED_BYTES
  const rdataStart = pos
  if (withOptions) {
    for (const option of edns.options) {
      put16(pos, option.code)
      put16(pos + 2, option.data.length)
      scratch.set(option.data, pos + 4)
      pos += OPTION_HEADER_BYTES + option.data.length
    }
  }
  put16(rdLenAt, pos - rdataStart)
}
