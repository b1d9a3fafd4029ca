/**
 * Reads domain names out of received wire bytes without throwing and without
 * per-label allocations: the one-pass scanners the query decoder and the
 * response encoder share. Internal to wire/ (not exported by index.ts).
 * Produces the canonical internal form of name.ts (labelToText) byte for byte.
 */
import { MAX_LABEL_BYTES, MAX_NAME_WIRE_BYTES } from './name.js'

/** Outcome codes of the scanners (0 = ok). Values are stable: tests use them. */
export const NAME_SCAN = {
  OK: 0,
  TRUNCATED: 1,
  /** A compression pointer where none may be (the question: nothing precedes it). */
  POINTER: 2,
  /** Label type 0x40 or 0x80 (RFC 6891 section 5 retired extended labels). */
  LABEL_TYPE: 3,
  /** More than 255 bytes uncompressed (RFC 1035 section 2.3.4). */
  TOO_LONG: 4,
  /** Pointer into the header, forward, to itself, or too many hops. */
  BAD_POINTER: 5,
} as const

export type NameScanCode = (typeof NAME_SCAN)[keyof typeof NAME_SCAN]

/** Most labels a 255-byte name can hold (each takes at least 2 bytes, plus the root). */
export const MAX_LABELS = 127

/**
 * Longest chain of pointers followed for one name. Pointers must go strictly
 * backwards (see skipName) so loops are impossible anyway; this bounds the work
 * a hostile message can cause to a constant.
 */
const MAX_POINTER_HOPS = 64

const HEADER_BYTES = 12

/**
 * Output slots of the last scanQuestionName call, module-level so the hot path
 * allocates only the final text string. Valid until the next call.
 */
export const scanned = {
  /** Offset just after the name's root label. */
  end: 0,
  /** Canonical internal text (lowercase, escaped, no trailing dot). */
  text: '',
  labelCount: 0,
  /** For label i: offset of its length byte, relative to the scan start. */
  labelWireOffsets: new Int32Array(MAX_LABELS),
  /** For label i: index in `text` where the label's text starts. */
  labelTextOffsets: new Int32Array(MAX_LABELS),
}

// Each wire byte becomes at most 4 characters (`\DDD`), plus one dot per label.
const textScratch = Buffer.allocUnsafe(MAX_NAME_WIRE_BYTES * 4 + MAX_LABELS)

const BACKSLASH = 0x5c
const DOT = 0x2e

/**
 * Scans an uncompressed name at `start` (the question name: RFC 1035 section
 * 4.1.4 allows pointers only to prior names, and nothing precedes the first
 * question). Fills `scanned` on success. Never throws.
 */
export function scanQuestionName(msg: Uint8Array, start: number): NameScanCode {
  let pos = start
  let wireBytes = 0
  let t = 0
  let labels = 0
  const len = msg.length
  for (;;) {
    if (pos >= len) return NAME_SCAN.TRUNCATED
    const labelLen = msg[pos] as number
    wireBytes += labelLen + 1
    if (labelLen === 0) break
    if (labelLen > MAX_LABEL_BYTES) {
      return (labelLen & 0xc0) === 0xc0 ? NAME_SCAN.POINTER : NAME_SCAN.LABEL_TYPE
    }
    if (wireBytes >= MAX_NAME_WIRE_BYTES) return NAME_SCAN.TOO_LONG // root byte still to come
    if (pos + 1 + labelLen > len) return NAME_SCAN.TRUNCATED
    if (labels > 0) textScratch[t++] = DOT
    scanned.labelWireOffsets[labels] = pos - start
    scanned.labelTextOffsets[labels] = t
    labels++
    for (let i = pos + 1; i <= pos + labelLen; i++) {
      let b = msg[i] as number
      if (b >= 0x41 && b <= 0x5a) b += 0x20
      if (b === DOT || b === BACKSLASH) {
        textScratch[t++] = BACKSLASH
        textScratch[t++] = b
      } else if (b > 0x20 && b < 0x7f) {
        textScratch[t++] = b
      } else {
        // \DDD, three decimal digits (RFC 1035 section 5.1).
        textScratch[t++] = BACKSLASH
        textScratch[t++] = 0x30 + ((b / 100) | 0)
        textScratch[t++] = 0x30 + (((b / 10) | 0) % 10)
        textScratch[t++] = 0x30 + (b % 10)
      }
    }
    pos += 1 + labelLen
  }
  scanned.end = pos + 1
  scanned.labelCount = labels
  scanned.text = t === 0 ? '' : textScratch.toString('latin1', 0, t)
  return NAME_SCAN.OK
}

/** Output of skipName: offset just after the name as it sits in the record. */
export const skipped = { end: 0, isRoot: false }

/**
 * Validates a possibly compressed name at `start` and finds where it ends in
 * the record. Pointers must point at or after the header and strictly before
 * the start of the label run that contains them, so every hop goes backwards
 * and no loop can exist (the same rule as Knot's dname check and dns-packet);
 * hops are bounded on top. Fills `skipped` on success. Never throws.
 */
export function skipName(msg: Uint8Array, start: number): NameScanCode {
  let pos = start
  let runStart = start
  let end = -1
  let wireBytes = 0
  let hops = 0
  let labels = 0
  const len = msg.length
  for (;;) {
    if (pos >= len) return NAME_SCAN.TRUNCATED
    const labelLen = msg[pos] as number
    if (labelLen === 0) {
      if (end < 0) end = pos + 1
      break
    }
    if (labelLen > MAX_LABEL_BYTES) {
      if ((labelLen & 0xc0) !== 0xc0) return NAME_SCAN.LABEL_TYPE
      if (pos + 1 >= len) return NAME_SCAN.TRUNCATED
      const target = ((labelLen & 0x3f) << 8) | (msg[pos + 1] as number)
      if (end < 0) end = pos + 2
      if (target < HEADER_BYTES || target >= runStart || ++hops > MAX_POINTER_HOPS) {
        return NAME_SCAN.BAD_POINTER
      }
      pos = target
      runStart = target
      continue
    }
    wireBytes += labelLen + 1
    if (wireBytes >= MAX_NAME_WIRE_BYTES) return NAME_SCAN.TOO_LONG
    if (pos + 1 + labelLen > len) return NAME_SCAN.TRUNCATED
    labels++
    pos += 1 + labelLen
  }
  skipped.end = end
  skipped.isRoot = labels === 0
  return NAME_SCAN.OK
}
