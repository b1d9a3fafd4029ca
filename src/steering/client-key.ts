/**
 * The client key: the network a steering decision is made for (DESIGN.md,
 * "A steering decision", step 1). A valid ECS source prefix > 0 gives the key;
 * otherwise the resolver's own address does. IPv4-mapped IPv6 (::ffff:0:0/96)
 * is treated as IPv4 so one map entry serves both spellings. Knows nothing of
 * the wire format: it receives address bytes and lengths.
 */
import { parseIpv4Into, parseIpv6Into } from './address-text.js'

export interface ClientKey {
  readonly family: 4 | 6
  /** 4 or 16 bytes; bits beyond prefixLen are zero. */
  readonly address: Uint8Array
  /** Significant bits: the ECS source prefix, or 32/128 for a resolver address. */
  readonly prefixLen: number
  /** Where the key came from: the query's ECS option or the resolver's source address. */
  readonly source: 'ecs' | 'resolver'
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

/** Copies `address` with every bit past `prefixLen` cleared. */
export function maskAddress(address: Uint8Array, prefixLen: number): Uint8Array {
  const out = new Uint8Array(address.length)
  const full = prefixLen >> 3
  out.set(address.subarray(0, full))
  const rest = prefixLen & 7
  if (rest > 0 && full < address.length) out[full] = (address[full] as number) & (0xff << (8 - rest))
  return out
}

/** True for an IPv6 address in ::ffff:0:0/96 (the first 96 bits). */
export function isIpv4Mapped(address: Uint8Array): boolean {
  if (address.length !== 16) return false
  for (let i = 0; i < 12; i++) if (address[i] !== MAPPED_PREFIX[i]) return false
  return true
}

/**
 * Builds a key from an address and prefix length. An IPv4-mapped IPv6 prefix of
 * /96 or longer becomes the IPv4 prefix of length - 96. Never throws for
 * lengths within the family (the wire layer validated them).
 */
export function clientKey(address: Uint8Array, prefixLen: number, source: ClientKey['source']): ClientKey {
  if (address.length === 16 && prefixLen >= 96 && isIpv4Mapped(address)) {
    return { family: 4, address: maskAddress(address.subarray(12), prefixLen - 96), prefixLen: prefixLen - 96, source }
  }
  return { family: address.length === 4 ? 4 : 6, address: maskAddress(address, prefixLen), prefixLen, source }
}

/**
 * Address bytes of an IPv4 or IPv6 text address, or undefined when it is
 * neither. A zone id (`fe80::1%eth0`, as sockets report link-local peers) is
 * ignored: it names an interface, not a network.
 */
export function parseAddress(text: string): Uint8Array | undefined {
  const percent = text.indexOf('%')
  const end = percent < 0 ? text.length : percent
  const v4 = new Uint8Array(4)
  if (parseIpv4Into(text, 0, end, v4)) return v4
  const v6 = new Uint8Array(16)
  return end > 0 && parseIpv6Into(text, 0, end, v6) ? v6 : undefined
}

/** Parses "IP" or "IP/LEN" into a key (a bare IP is a full-length prefix). Throws STEER_ERR_STEERING_BAD_PREFIX. */
export function parseClientKey(text: string, source: ClientKey['source']): ClientKey {
  const slash = text.indexOf('/')
  const ip = slash < 0 ? text : text.slice(0, slash)
  const address = parseAddress(ip)
  if (!address) throw badPrefix(`"${ip}" is not an IPv4 or IPv6 address`)
  const max = address.length * 8
  const len = slash < 0 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(len) || len < 0 || len > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) {
    throw badPrefix(`prefix length in "${text}" must be 0-${max}`)
  }
  return clientKey(address, len, source)
}

function badPrefix(message: string): Error {
  return Object.assign(new Error(message), { code: 'STEER_ERR_STEERING_BAD_PREFIX' })
}

/** "198.51.100.0/24" or "2001:db8::/48": the canonical text of a key's prefix. */
export function formatPrefix(key: Pick<ClientKey, 'address' | 'prefixLen'>): string {
  return `${formatAddress(key.address)}/${key.prefixLen}`
}

/** Dotted IPv4, or IPv6 in RFC 5952 form (lowercase, longest zero run compressed). */
export function formatAddress(address: Uint8Array): string {
  if (address.length === 4) return address.join('.')
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((address[i] as number) << 8) | (address[i + 1] as number))
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}
