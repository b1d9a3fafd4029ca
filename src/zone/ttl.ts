/**
 * TTL and other durations as written in master files: a bare number of seconds
 * or unit blocks (`1h30m`, `1W2d`), the BIND extension that Knot's zscanner also
 * accepts. Pure text-to-number; knows nothing of defaults ($TTL handling lives in
 * the parser).
 */
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'

/**
 * Largest TTL: RFC 2181 section 8 makes the TTL a 31-bit value (the top bit of
 * the 32-bit field must be zero).
 */
export const MAX_TTL_SEC = 0x7fffffff

/** Largest value of a 32-bit duration field that is not a TTL (SOA refresh, retry, expire). */
export const MAX_UINT32 = 0xffffffff

const UNIT_SEC: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }

// Knot's grammar: a number, optionally followed by a unit and further
// number+unit blocks. So "90" and "1h30m" are valid, "1h30" is not.
const DURATION_RE = /^(?:[0-9]+|(?:[0-9]+[smhdw])+)$/i
const BLOCK_RE = /([0-9]+)([smhdw])/gi

/**
 * Seconds from a duration token. Units are case-insensitive. Throws
 * ZoneSyntaxError (BAD_TTL) when the text is not a duration or exceeds `maxSec`.
 */
export function parseDurationSec(text: string, maxSec: number, what = 'TTL'): number {
  if (!DURATION_RE.test(text)) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_TTL, `bad ${what} "${text}": expected seconds or units like 1h30m`)
  }
  let totalSec = 0
  if (/^[0-9]+$/.test(text)) {
    totalSec = Number(text)
  } else {
    for (const m of text.matchAll(BLOCK_RE)) {
      totalSec += Number(m[1]) * (UNIT_SEC[(m[2] as string).toLowerCase()] as number)
      // Checked per block so huge digit strings cannot pile up past float precision.
      if (totalSec > maxSec) break
    }
  }
  if (!Number.isSafeInteger(totalSec) || totalSec > maxSec) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_TTL, `${what} "${text}" is larger than ${maxSec} seconds`)
  }
  return totalSec
}

/** A record TTL or $TTL value in seconds, 0..2^31-1 (RFC 2181 section 8). Throws ZoneSyntaxError. */
export function parseTtlSec(text: string): number {
  return parseDurationSec(text, MAX_TTL_SEC)
}

/** True when the token looks like a TTL (starts with a digit), used to tell TTL from class and type. */
export function looksLikeTtl(text: string): boolean {
  const c = text.charCodeAt(0)
  return c >= 0x30 && c <= 0x39
}
