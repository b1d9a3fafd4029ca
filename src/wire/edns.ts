/**
 * Builders for the EDNS options a response carries (ECS echo, NSID). Pure and
 * allocation-light; the OPT record itself is written by encode-response.ts.
 */
import type { ClientSubnet, EdnsOption } from './message.js'
import { EDNS_OPTION } from './record.js'

/**
 * The ECS option of a response (RFC 7871 section 6): FAMILY and SOURCE
 * PREFIX-LENGTH echoed from the query, SCOPE PREFIX-LENGTH set to
 * `scopePrefixLen`, ADDRESS truncated to ceil(source / 8) bytes with the bits
 * past the source prefix zeroed (the decoder already rejected queries with such
 * bits set; masking again keeps this safe for hand-built inputs).
 * `scopePrefixLen` is rounded down and clamped to 0..32 (IPv4) or 0..128
 * (IPv6); a scope longer than the source is legal (section 7.2.1: "the
 * provided prefix length was not specific enough"). Never throws.
 */
export function clientSubnetOption(ecs: ClientSubnet, scopePrefixLen: number): EdnsOption {
  const maxPrefixLen = ecs.family === 1 ? 32 : 128
  const source = Math.min(Math.max(ecs.sourcePrefixLen | 0, 0), maxPrefixLen)
  const scope = Number.isFinite(scopePrefixLen) ? Math.min(Math.max(Math.floor(scopePrefixLen), 0), maxPrefixLen) : 0
  const addressBytes = (source + 7) >> 3
  const data = new Uint8Array(4 + addressBytes)
  data[0] = 0
  data[1] = ecs.family
  data[2] = source
  data[3] = scope
  for (let i = 0; i < addressBytes; i++) data[4 + i] = ecs.address[i] ?? 0
  const spareBits = addressBytes * 8 - source
  if (spareBits > 0) data[3 + addressBytes] = (data[3 + addressBytes] as number) & (0xff << spareBits) & 0xff
  return { code: EDNS_OPTION.ECS, data }
}

/**
 * The NSID option of a response (RFC 5001 section 2.3): the server's identity
 * as opaque bytes, sent only when the query asked with an NSID option. The
 * bytes are used as given (not copied); at most 65535 bytes or the encoder
 * throws.
 */
export function nsidOption(identity: Uint8Array): EdnsOption {
  return { code: EDNS_OPTION.NSID, data: identity }
}
