/**
 * Domain names in their one internal form: presentation text, ASCII lowercased,
 * no trailing dot, the root is "". Bytes that are not printable, and "." or "\"
 * inside a label, are escaped (`\.`, `\\`, `\DDD`), so the form is canonical:
 * one name, one string. Used as map keys by the zone tree and the compressor.
 * Must not depend on anything outside wire/.
 */

/** Longest name on the wire including the root label (RFC 1035 section 2.3.4). */
export const MAX_NAME_WIRE_BYTES = 255
/** Longest label (RFC 1035 section 2.3.4). */
export const MAX_LABEL_BYTES = 63

const DOT = 0x2e
const BACKSLASH = 0x5c

/** Canonical text of one label from its raw bytes (lowercased). */
export function labelToText(label: Uint8Array): string {
  let out = ''
  for (let i = 0; i < label.length; i++) {
    let b = label[i] as number
    if (b >= 0x41 && b <= 0x5a) b += 0x20
    if (b === DOT || b === BACKSLASH) out += '\\' + String.fromCharCode(b)
    else if (b > 0x20 && b < 0x7f) out += String.fromCharCode(b)
    else out += '\\' + String(b).padStart(3, '0')
  }
  return out
}

/** Canonical internal name from raw labels (no empty root label in the list). */
export function labelsToName(labels: readonly Uint8Array[]): string {
  return labels.map(labelToText).join('.')
}

/**
 * Raw labels of an internal name. Accepts any escaped presentation form without
 * the trailing dot. Cannot throw for names produced by labelsToName; malformed
 * escapes are taken literally.
 */
export function nameToLabels(name: string): Uint8Array[] {
  if (name === '') return []
  if (!name.includes('\\')) return name.split('.').map((l) => Buffer.from(l, 'latin1'))
  const labels: Uint8Array[] = []
  let cur: number[] = []
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === BACKSLASH && i + 1 < name.length) {
      const d = name.slice(i + 1, i + 4)
      if (/^[0-9]{3}$/.test(d)) {
        cur.push(Number(d) & 0xff)
        i += 3
      } else {
        cur.push(name.charCodeAt(i + 1) & 0xff)
        i += 1
      }
    } else if (c === DOT) {
      labels.push(Uint8Array.from(cur))
      cur = []
    } else {
      cur.push(c & 0xff)
    }
  }
  labels.push(Uint8Array.from(cur))
  return labels
}

/** Uncompressed wire form of an internal name, root label included. */
export function nameToWire(name: string): Uint8Array {
  const labels = nameToLabels(name)
  let size = 1
  for (const l of labels) size += 1 + l.length
  const out = new Uint8Array(size)
  let o = 0
  for (const l of labels) {
    out[o++] = l.length
    out.set(l, o)
    o += l.length
  }
  out[o] = 0
  return out
}

/** Bytes the name takes on the wire uncompressed, root label included. */
export function nameWireLength(name: string): number {
  return nameToWire(name).length
}

/**
 * Splits an internal name into its label texts (still escaped), respecting
 * escaped dots. "" (root) gives [].
 */
export function splitName(name: string): string[] {
  if (name === '') return []
  if (!name.includes('\\')) return name.split('.')
  const out: string[] = []
  let start = 0
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === BACKSLASH) {
      i += /^[0-9]{3}$/.test(name.slice(i + 1, i + 4)) ? 3 : 1
    } else if (c === DOT) {
      out.push(name.slice(start, i))
      start = i + 1
    }
  }
  out.push(name.slice(start))
  return out
}

/** The name one label up; the root's parent is undefined. */
export function parentName(name: string): string | undefined {
  if (name === '') return undefined
  const labels = splitName(name)
  return labels.slice(1).join('.')
}

/** True when `name` equals `ancestor` or lies below it. Both internal form. */
export function isSubdomainOf(name: string, ancestor: string): boolean {
  if (ancestor === '') return true
  if (name === ancestor) return true
  if (!name.endsWith('.' + ancestor)) return false
  // "a\.example" ends with ".example" but its last label is "a.example": check
  // the dot we matched is not escaped.
  const cut = name.length - ancestor.length - 1
  let backslashes = 0
  for (let i = cut - 1; i >= 0 && name.charCodeAt(i) === BACKSLASH; i--) backslashes++
  return backslashes % 2 === 0
}

/** Presentation form with the trailing dot, as dig prints it ("." for the root). */
export function toFqdn(name: string): string {
  return name === '' ? '.' : name + '.'
}

/** Number of labels, root not counted. */
export function labelCount(name: string): number {
  return splitName(name).length
}
