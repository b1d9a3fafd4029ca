/**
 * Network text ("198.51.100.0/24", "2001:db8::/48") to the bits and prefix
 * length they occupy in a MaxMind DB IPv6 search tree, where IPv4 lives at
 * ::/96 (::a.b.c.d). Used by the writer and the list parser (control plane
 * only). geo/ keeps its own parser rather than importing steering/ so the
 * dependency stays one-way (steering reads geo, never the reverse). Must not
 * be used on the query path.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { GEO_ERROR, geoError } from './geo-error.js'

/** A parsed network, placed in the 128-bit tree. */
export interface TreeNetwork {
  /** The text it was parsed from. */
  readonly text: string
  readonly family: 4 | 6
  /** 16 bytes; an IPv4 network occupies the last 4 (::a.b.c.d). Host bits are zero. */
  readonly treeBits: Uint8Array
  /** Prefix length in the tree: an IPv4 /24 is 120. */
  readonly treePrefixLen: number
}

/**
 * Parses "ADDRESS/LEN". Throws STEER_ERR_GEO_BAD_NETWORK when the text is not
 * an address and length of one family, or when bits past the length are set
 * (198.51.100.1/24 is a typo for an address or for a network; we refuse to guess).
 */
export function parseTreeNetwork(text: string): TreeNetwork {
  const slash = text.indexOf('/')
  if (slash < 0) throw bad(text, 'expected ADDRESS/PREFIX_LEN')
  const addressText = text.slice(0, slash)
  const lenText = text.slice(slash + 1)
  const family = isIPv4(addressText) ? 4 : isIPv6(addressText) && !addressText.includes('%') ? 6 : undefined
  if (family === undefined) throw bad(text, `"${addressText}" is not an IPv4 or IPv6 address`)
  const maxLen = family === 4 ? 32 : 128
  const prefixLen = Number(lenText)
  if (!/^\d{1,3}$/.test(lenText) || prefixLen > maxLen) throw bad(text, `prefix length must be 0-${maxLen}`)
  const treeBits = new Uint8Array(16)
  if (family === 4) treeBits.set(parseIpv4(addressText), 12)
  else treeBits.set(parseIpv6(addressText))
  const treePrefixLen = family === 4 ? prefixLen + 96 : prefixLen
  for (let bit = treePrefixLen; bit < 128; bit++) {
    if (bitAt(treeBits, bit) === 1) throw bad(text, `host bits are set past /${prefixLen}`)
  }
  return { text, family, treeBits, treePrefixLen }
}

/**
 * IPv6 ranges that a MaxMind DB aliases to the IPv4 space (::/96), as MaxMind's
 * own databases do: IPv4-mapped ::ffff:0:0/96 and 6to4 2002::/16 (the 32 bits
 * after 2002: are the IPv4 address). Teredo (2001::/32) is not aliased: the
 * bits after its prefix are the Teredo server, not the client.
 */
export const IPV4_ALIAS_NETWORKS: readonly TreeNetwork[] = [parseTreeNetwork('::ffff:0:0/96'), parseTreeNetwork('2002::/16')]

/** The alias range that contains `net` (a network there could never be looked up), or undefined. */
export function ipv4AliasContaining(net: TreeNetwork): TreeNetwork | undefined {
  return IPV4_ALIAS_NETWORKS.find((alias) => net.treePrefixLen >= alias.treePrefixLen && covers(alias, net))
}

/** A key equal for equal networks however they were written ("2001:DB8::/32" and "2001:db8:0::/32"). */
export function treeNetworkKey(net: TreeNetwork): string {
  return `${Buffer.from(net.treeBits).toString('hex')}/${net.treePrefixLen}`
}

function covers(outer: TreeNetwork, inner: TreeNetwork): boolean {
  for (let bit = 0; bit < outer.treePrefixLen; bit++) if (bitAt(outer.treeBits, bit) !== bitAt(inner.treeBits, bit)) return false
  return true
}

/** Bit `index` (0 = most significant of byte 0) of `bytes`: 0 or 1. */
export function bitAt(bytes: Uint8Array, index: number): 0 | 1 {
  return (((bytes[index >> 3] as number) >> (7 - (index & 7))) & 1) as 0 | 1
}

function parseIpv4(text: string): number[] {
  return text.split('.').map(Number)
}

/** Expands a valid IPv6 text (node:net accepted it) to 16 bytes, including a dotted IPv4 tail. */
function parseIpv6(text: string): Uint8Array {
  let head = text
  const tail: number[] = []
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':')
    tail.push(...parseIpv4(text.slice(lastColon + 1)))
    head = `${text.slice(0, lastColon + 1)}0:0`
  }
  const [left = '', right] = head.split('::')
  const leftGroups = left === '' ? [] : left.split(':')
  const rightGroups = right === undefined || right === '' ? [] : right.split(':')
  const zeros = right === undefined ? 0 : 8 - leftGroups.length - rightGroups.length
  const groups = [...leftGroups, ...Array<string>(zeros).fill('0'), ...rightGroups]
  const out = new Uint8Array(16)
  groups.forEach((group, i) => {
    const value = parseInt(group, 16)
    out[i * 2] = value >> 8
    out[i * 2 + 1] = value & 0xff
  })
  if (tail.length === 4) out.set(tail, 12)
  return out
}

function bad(text: string, why: string): Error {
  return geoError(GEO_ERROR.BAD_NETWORK, `bad network "${text}": ${why}`)
}
