/**
 * Address text to bytes without allocating, for loading large maps: a
 * million IPv6 prefixes through client-key.ts's parseAddress (node:net's
 * regular expression, then split and map) took about 6.5 µs each on the
 * bench machine, most of a map's load time. Accepts exactly what
 * node:net's isIPv4/isIPv6 accept, minus zone ids (an interface, not a
 * network); test/steering/address-text.test.ts checks the agreement.
 */

/** Dotted-quad text[from, to) into out[at..at+3]; false unless it is exactly four decimal octets without leading zeros. */
export function parseIpv4Into(text: string, from: number, to: number, out: Uint8Array, at = 0): boolean {
  let part = 0
  let octet = 0
  let digits = 0
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x2e) {
      if (digits === 0 || part === 3) return false
      out[at + part++] = octet
      octet = 0
      digits = 0
    } else if (c >= 0x30 && c <= 0x39 && !(digits > 0 && octet === 0)) {
      octet = octet * 10 + c - 0x30
      digits++
      if (octet > 255) return false
    } else return false
  }
  if (part !== 3 || digits === 0) return false
  out[at + 3] = octet
  return true
}

/** The 16-bit groups of the address being parsed (the query path never calls this; one at a time). */
const groups = new Uint16Array(8)

/**
 * IPv6 text[from, to) (RFC 4291 section 2.2: hex groups, one `::`, an IPv4
 * tail) into out[0..15]; false when it is not one.
 */
export function parseIpv6Into(text: string, from: number, to: number, out: Uint8Array): boolean {
  let count = 0
  let gap = -1
  let i = from
  if (text.charCodeAt(i) === 0x3a) {
    if (text.charCodeAt(i + 1) !== 0x3a) return false
    gap = 0
    i += 2
    if (i === to) return fill(out, 0, gap)
  }
  for (;;) {
    const start = i
    let value = 0
    while (i < to && i - start < 5) {
      const h = hexValue(text.charCodeAt(i))
      if (h < 0) break
      value = value * 16 + h
      i++
    }
    if (i < to && text.charCodeAt(i) === 0x2e) {
      // An IPv4 tail: the last 32 bits, and the end of the text.
      if (count > 6 || (gap < 0 && count !== 6)) return false
      if (!parseIpv4Into(text, start, to, out, 12)) return false
      groups[count++] = ((out[12] as number) << 8) | (out[13] as number)
      groups[count++] = ((out[14] as number) << 8) | (out[15] as number)
      return fill(out, count, gap)
    }
    const digits = i - start
    if (digits === 0 || digits > 4 || count === 8) return false
    groups[count++] = value
    if (i === to) return fill(out, count, gap)
    if (text.charCodeAt(i) !== 0x3a) return false
    i++
    if (text.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false
      gap = count
      i++
      if (i === to) return fill(out, count, gap)
    }
  }
}

/** Writes `count` groups to `out`, zeros standing for the `::` at group `gap` (-1: none). */
function fill(out: Uint8Array, count: number, gap: number): boolean {
  if (gap < 0 ? count !== 8 : count > 7) return false
  const tail = gap < 0 ? 0 : count - gap
  out.fill(0, 0, 16)
  for (let g = 0; g < count; g++) {
    const slot = gap >= 0 && g >= gap ? 8 - tail + (g - gap) : g
    const v = groups[g] as number
    out[slot * 2] = v >> 8
    out[slot * 2 + 1] = v & 0xff
  }
  return true
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  return -1
}
