/**
 * Field-level decoders for master-file text: domain names (absolute, relative,
 * `@`, `\.` and `\DDD` escapes), character-strings, unsigned numbers, hex and
 * IP addresses, plus the slab allocator their bytes come from. Shared by owner
 * parsing and every rdata type. Each decoder throws ZoneSyntaxError with a
 * message naming the field; callers turn that into a problem for the record.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { labelsToName, MAX_LABEL_BYTES, MAX_NAME_WIRE_BYTES, nameToLabels, nameWireLength } from '../wire/index.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'
import type { ZoneProblemCode } from './zone-problem.js'

const BACKSLASH = 0x5c
const DOT = 0x2e

const SLAB_BYTES = 64 * 1024
let slab = new Uint8Array(0)
let slabUsed = 0

/**
 * A zeroed Uint8Array of `size` bytes, carved from a shared 64 KiB slab. With
 * one ArrayBuffer per rdata field, parsing and validating a 400k-record zone
 * took 11.5 s, mostly in the garbage collector; with slabs and the plain-name
 * fast path below about 5 s (same machine, same minute). The views are only
 * read after loading.
 */
export function allocBytes(size: number): Uint8Array {
  if (size > 4096) return new Uint8Array(size)
  if (slabUsed + size > slab.length) {
    slab = new Uint8Array(SLAB_BYTES)
    slabUsed = 0
  }
  const out = slab.subarray(slabUsed, slabUsed + size)
  slabUsed += size
  return out
}

/** A slab-backed copy of `src` (see allocBytes). */
export function bytesFrom(src: ArrayLike<number>): Uint8Array {
  const out = allocBytes(src.length)
  out.set(src)
  return out
}

// Names made only of plain characters take a fast path without per-label arrays.
const PLAIN_NAME_RE = /^[A-Za-z0-9_/*-]+(?:\.[A-Za-z0-9_/*-]+)*\.?$/
let cachedOrigin = ''
let cachedOriginWireBytes = 1

function originWireBytes(origin: string): number {
  if (origin !== cachedOrigin) {
    cachedOrigin = origin
    cachedOriginWireBytes = nameWireLength(origin)
  }
  return cachedOriginWireBytes
}

// Characters a name may carry unescaped: Knot's zscanner accepts letters, digits
// and "-_/*". Anything else (a "@" in an SOA RNAME, a ":" pasted from a URL) is
// almost always a mistake, so it is refused rather than stored.
function isPlainNameChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x2d ||
    c === 0x5f ||
    c === 0x2f ||
    c === 0x2a
  )
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** Reads `\DDD` at text[i] (the backslash). Returns the byte, or undefined when not three digits. */
function readDecimalEscape(text: string, i: number, code: ZoneProblemCode, what: string): number | undefined {
  if (!(isDigit(text.charCodeAt(i + 1)) && isDigit(text.charCodeAt(i + 2)) && isDigit(text.charCodeAt(i + 3)))) {
    if (isDigit(text.charCodeAt(i + 1))) {
      throw new ZoneSyntaxError(code, `bad escape in ${what} "${text}": \\DDD needs exactly three digits`)
    }
    return undefined
  }
  const value = Number(text.slice(i + 1, i + 4))
  if (value > 255) throw new ZoneSyntaxError(code, `bad escape in ${what} "${text}": \\${text.slice(i + 1, i + 4)} is above 255`)
  return value
}

/**
 * Internal form of a domain name written in a master file. `@` is the origin; a
 * name without a trailing dot is relative to `origin` (internal form). Throws
 * ZoneSyntaxError (BAD_NAME) for empty or oversized labels, bad escapes, or
 * characters a name cannot hold unescaped.
 */
export function parseNameText(text: string, origin: string, what = 'name'): string {
  if (text === '@') return origin
  if (text === '.') return ''
  if (text.length === 0) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `empty ${what}`)
  if (PLAIN_NAME_RE.test(text)) return parsePlainName(text, origin, what)
  const labels: Uint8Array[] = []
  let cur: number[] = []
  let absolute = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === BACKSLASH) {
      if (i + 1 >= text.length) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}" ends with a lone backslash`)
      const dec = readDecimalEscape(text, i, ZONE_PROBLEM.BAD_NAME, what)
      if (dec !== undefined) {
        cur.push(dec)
        i += 3
      } else {
        const e = text.charCodeAt(i + 1)
        if (e > 0x7e || e < 0x20) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}": only ASCII may follow a backslash (use \\DDD)`)
        cur.push(e)
        i += 1
      }
    } else if (c === DOT) {
      if (cur.length === 0) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}" has an empty label`)
      labels.push(Uint8Array.from(cur))
      cur = []
      if (i === text.length - 1) absolute = true
    } else if (isPlainNameChar(c)) {
      cur.push(c)
    } else {
      const shown = c > 0x20 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `code ${c}`
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}": character ${shown} must be escaped`)
    }
    if (cur.length > MAX_LABEL_BYTES) {
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}" has a label longer than ${MAX_LABEL_BYTES} bytes (RFC 1035 section 2.3.4)`)
    }
  }
  if (!absolute) {
    labels.push(Uint8Array.from(cur))
    for (const l of nameToLabels(origin)) labels.push(l)
  }
  let wireBytes = 1
  for (const l of labels) wireBytes += 1 + l.length
  if (wireBytes > MAX_NAME_WIRE_BYTES) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}" is ${wireBytes} bytes on the wire, above ${MAX_NAME_WIRE_BYTES} (RFC 1035 section 2.3.4)`)
  }
  return labelsToName(labels)
}

function parsePlainName(text: string, origin: string, what: string): string {
  const absolute = text.endsWith('.')
  const body = (absolute ? text.slice(0, -1) : text).toLowerCase()
  let start = 0
  for (let dot = body.indexOf('.'); ; dot = body.indexOf('.', start)) {
    const end = dot === -1 ? body.length : dot
    if (end - start > MAX_LABEL_BYTES) {
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}" has a label longer than ${MAX_LABEL_BYTES} bytes (RFC 1035 section 2.3.4)`)
    }
    if (dot === -1) break
    start = dot + 1
  }
  // Plain text is one byte per character: a length byte per label plus the root.
  const wireBytes = absolute ? body.length + 2 : body.length + 1 + originWireBytes(origin)
  if (wireBytes > MAX_NAME_WIRE_BYTES) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `${what} "${text}" is ${wireBytes} bytes on the wire, above ${MAX_NAME_WIRE_BYTES} (RFC 1035 section 2.3.4)`)
  }
  if (absolute || origin === '') return body
  return `${body}.${origin}`
}

/**
 * Bytes of a character-string or other text field: `\DDD` is one byte, `\X` is X,
 * anything else is its UTF-8 encoding. No length limit here (callers check).
 * Throws ZoneSyntaxError (BAD_RDATA) for a bad `\DDD`.
 */
export function decodeText(text: string, what = 'string'): Uint8Array {
  if (!text.includes('\\')) return bytesFrom(Buffer.from(text, 'utf8'))
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === BACKSLASH && i + 1 < text.length) {
      const dec = readDecimalEscape(text, i, ZONE_PROBLEM.BAD_RDATA, what)
      if (dec !== undefined) {
        out.push(dec)
        i += 3
        continue
      }
      i += 1
    }
    const cp = text.codePointAt(i) as number
    if (cp < 0x80) {
      out.push(cp)
    } else {
      const ch = String.fromCodePoint(cp)
      for (const b of Buffer.from(ch, 'utf8')) out.push(b)
      i += ch.length - 1
    }
  }
  return bytesFrom(out)
}

/** Maximum length of one character-string (RFC 1035 section 3.3). */
export const MAX_CHARACTER_STRING_BYTES = 255

/**
 * One character-string with its length byte. Throws ZoneSyntaxError when longer
 * than 255 bytes.
 */
export function encodeCharacterString(text: string, what: string): Uint8Array {
  const bytes = decodeText(text, what)
  if (bytes.length > MAX_CHARACTER_STRING_BYTES) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${what} is ${bytes.length} bytes, above ${MAX_CHARACTER_STRING_BYTES} (RFC 1035 section 3.3)`)
  }
  const out = allocBytes(bytes.length + 1)
  out[0] = bytes.length
  out.set(bytes, 1)
  return out
}

/** Unsigned decimal in 0..max. Throws ZoneSyntaxError (BAD_RDATA). */
export function parseUint(text: string, max: number, what: string): number {
  if (!/^[0-9]+$/.test(text)) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${what} "${text}" is not an unsigned number`)
  const value = Number(text)
  if (value > max) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${what} ${text} is above ${max}`)
  return value
}

/** Big-endian bytes of an unsigned integer of `size` bytes (1, 2 or 4). */
export function uintBytes(value: number, size: 1 | 2 | 4): Uint8Array {
  const out = allocBytes(size)
  for (let k = size - 1, v = value; k >= 0; k--, v = Math.floor(v / 256)) out[k] = v & 0xff
  return out
}

/**
 * Bytes from hex words, each an even number of hex digits (Knot splits a hex
 * field on blanks but never inside a byte). Throws ZoneSyntaxError (BAD_RDATA).
 */
export function parseHexWords(words: readonly string[], what: string): Uint8Array {
  const parts: Buffer[] = []
  for (const w of words) {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(w)) {
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${what}: "${w}" is not hex with an even number of digits`)
    }
    parts.push(Buffer.from(w, 'hex'))
  }
  return bytesFrom(Buffer.concat(parts))
}

/**
 * The 4 bytes of a dotted-quad IPv4 address. Strict: exactly four decimal parts,
 * each 0..255 without leading zeros (as inet_pton, so "010.0.0.1" is refused
 * rather than guessed as octal or decimal). Throws ZoneSyntaxError (BAD_RDATA).
 */
export function parseIpv4(text: string): Uint8Array {
  if (!isIPv4(text)) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `"${text}" is not an IPv4 address`)
  return bytesFrom(text.split('.').map(Number))
}

/**
 * The 16 bytes of an IPv6 address (RFC 4291 section 2.2 text forms, including
 * "::" and a trailing dotted quad). Zone indexes ("%eth0") are refused: they
 * have no meaning in DNS data. Throws ZoneSyntaxError (BAD_RDATA).
 */
export function parseIpv6(text: string): Uint8Array {
  if (text.includes('%') || !isIPv6(text)) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `"${text}" is not an IPv6 address`)
  }
  let head = text
  let tail4: number[] = []
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.', lastColon)) {
    tail4 = Array.from(parseIpv4(text.slice(lastColon + 1)))
    head = text.slice(0, lastColon + 1) + '0:0'
  }
  const groupsFor = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)))
  let groups: number[]
  const gap = head.indexOf('::')
  if (gap >= 0) {
    const left = groupsFor(head.slice(0, gap))
    const right = groupsFor(head.slice(gap + 2))
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
  } else {
    groups = groupsFor(head)
  }
  const out = allocBytes(16)
  groups.forEach((g, k) => {
    out[k * 2] = g >> 8
    out[k * 2 + 1] = g & 0xff
  })
  if (tail4.length === 4) out.set(tail4, 12)
  return out
}
