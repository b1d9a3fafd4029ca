/**
 * Address access lists: a list of CIDRs compiled once (config load) into
 * byte masks, checked on the query path without allocation. Lists are short
 * (a handful of operator networks), so a linear scan beats any structure.
 */
// The one address parser lives with client keys; ACL entries are the same kind of text.
import { parseAddress } from '../steering/index.js'

interface CompiledCidr {
  readonly bytes: Uint8Array
  readonly prefixLen: number
}

export interface AddressAcl {
  /** True when `address` (4 or 16 bytes) is inside one of the networks. */
  allows(address: Uint8Array): boolean
}

/** Compiles "192.0.2.0/24", "::1/128" or a bare address. Throws STEER_ERR_GUARD_ACL naming the entry. */
export function createAcl(cidrs: readonly string[]): AddressAcl {
  const v4: CompiledCidr[] = []
  const v6: CompiledCidr[] = []
  for (const text of cidrs) {
    const slash = text.indexOf('/')
    const ip = slash < 0 ? text : text.slice(0, slash)
    const bytes = parseAddress(ip)
    const max = bytes ? bytes.length * 8 : 0
    const len = slash < 0 ? max : Number(text.slice(slash + 1))
    if (!bytes || !Number.isInteger(len) || len < 0 || len > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) {
      throw Object.assign(new Error(`"${text}" is not an address or CIDR`), { code: 'STEER_ERR_GUARD_ACL' })
    }
    ;(bytes.length === 4 ? v4 : v6).push({ bytes, prefixLen: len })
  }
  return {
    allows(address) {
      const list = address.length === 4 ? v4 : v6
      for (const c of list) if (matches(address, c)) return true
      return false
    },
  }
}

function matches(address: Uint8Array, c: CompiledCidr): boolean {
  const full = c.prefixLen >> 3
  for (let i = 0; i < full; i++) if (address[i] !== c.bytes[i]) return false
  const rest = c.prefixLen & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return ((address[full] as number) & mask) === ((c.bytes[full] as number) & mask)
}
