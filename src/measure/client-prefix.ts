/**
 * Client and resolver addresses as measure/ keeps them: a client is reduced
 * to its configured prefix (map.ipv4Prefix / map.ipv6Prefix) the moment it is
 * read, so a raw client address is never stored; a resolver keeps its full
 * address, because the data plane looks non-ECS queries up by it. IPv4-mapped
 * IPv6 (::ffff:0:0/96) is IPv4, as everywhere in steering/. Parsing only: no
 * state, never throws.
 */
import { clientKey, formatAddress, maskAddress, parseAddress } from '../steering/index.js'

/** A client network: `address` is 4 or 16 bytes with every bit past `prefixLen` zero. */
export interface ClientPrefix {
  readonly family: 4 | 6
  readonly address: Uint8Array
  readonly prefixLen: number
}

/** Prefix lengths clients are reduced to, and the shortest a report may name. */
export interface PrefixPolicy {
  /** Client IPv4 addresses and longer prefixes are cut to this length (map.ipv4Prefix). */
  readonly ipv4Prefix: number
  /** Client IPv6 addresses and longer prefixes are cut to this length (map.ipv6Prefix). */
  readonly ipv6Prefix: number
  /**
   * Shorter client prefixes are refused (default /8 IPv4, /16 IPv6): a sample
   * for 0.0.0.0/0 would speak for every network that has none of its own.
   */
  readonly minIpv4Prefix?: number
  readonly minIpv6Prefix?: number
}

const DEFAULT_MIN_IPV4_PREFIX = 8
const DEFAULT_MIN_IPV6_PREFIX = 16

/**
 * "IP" or "IP/LEN" reduced by `policy`: an address or a prefix longer than the
 * configured length is cut to it, a shorter prefix is kept (host bits past its
 * length are cleared). Returns the prefix, or a reason (no path) when the
 * text is not one.
 */
export function reduceClient(text: unknown, policy: PrefixPolicy): ClientPrefix | string {
  if (typeof text !== 'string') return 'must be an IP address or prefix (a string)'
  const slash = text.indexOf('/')
  const ipText = slash < 0 ? text : text.slice(0, slash)
  const address = ipText.includes('%') ? undefined : parseAddress(ipText)
  if (!address) return `must be an IP address or prefix, not ${JSON.stringify(clip(text))}`
  const max = address.length * 8
  let len = max
  if (slash >= 0) {
    const lenText = text.slice(slash + 1)
    len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : -1
    if (len < 0 || len > max) return `prefix length must be 0-${max}, not ${JSON.stringify(clip(lenText))}`
  }
  const key = clientKey(address, len, 'ecs')
  const configured = key.family === 4 ? policy.ipv4Prefix : policy.ipv6Prefix
  const min = key.family === 4 ? (policy.minIpv4Prefix ?? DEFAULT_MIN_IPV4_PREFIX) : (policy.minIpv6Prefix ?? DEFAULT_MIN_IPV6_PREFIX)
  if (key.prefixLen < Math.min(min, configured)) {
    return `prefix length must be at least ${Math.min(min, configured)} for IPv${key.family}, not ${key.prefixLen}`
  }
  if (key.prefixLen <= configured) return { family: key.family, address: key.address, prefixLen: key.prefixLen }
  return { family: key.family, address: maskAddress(key.address, configured), prefixLen: configured }
}

/** A resolver's full address (IPv4-mapped as IPv4), or a reason when the text is not one address. */
export function parseResolverAddress(text: unknown): Uint8Array | string {
  if (typeof text !== 'string') return 'must be an IP address (a string)'
  const address = text.includes('/') || text.includes('%') ? undefined : parseAddress(text)
  if (!address) return `must be an IP address, not ${JSON.stringify(clip(text))}`
  return clientKey(address, address.length * 8, 'resolver').address
}

/** "198.51.100.0/24": canonical text of a client prefix. */
export function formatClientPrefix(p: ClientPrefix): string {
  return `${formatAddress(p.address)}/${p.prefixLen}`
}

/** Untrusted text quoted in a reason is cut short: a reason must not echo a megabyte. */
function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text
}
