/**
 * The resource record as every part of steerdns holds it: built once by the zone
 * parser (or the steering engine), read by lookup, written by the encoder.
 * Rdata is kept as parts so that names inside it can be compressed when the
 * record type allows it (RFC 3597 section 4) without re-parsing anything on the
 * query path.
 */

/** A domain name inside rdata. `compress` is true only for the RFC 1035 types. */
export interface RdataName {
  readonly name: string
  readonly compress: boolean
}

/** Either literal rdata bytes or a domain name to be written (maybe compressed). */
export type RdataPart = Uint8Array | RdataName

export interface ResourceRecord {
  /** Owner name, internal form (lowercase, no trailing dot). */
  readonly name: string
  readonly type: number
  readonly class: number
  readonly ttlSec: number
  readonly rdata: readonly RdataPart[]
}

/** True when the part is a name rather than literal bytes. */
export function isRdataName(part: RdataPart): part is RdataName {
  return !(part instanceof Uint8Array)
}

/** The names inside a record's rdata, in order (CNAME target, NS host, MX exchange...). */
export function rdataNames(rr: ResourceRecord): string[] {
  const names: string[] = []
  for (const p of rr.rdata) if (isRdataName(p)) names.push(p.name)
  return names
}

/** Record types by number (the ones the server treats specially or parses from text). */
export const RRTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  NAPTR: 35,
  DNAME: 39,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
  CAA: 257,
} as const

export const RRCLASS = {
  IN: 1,
  CH: 3,
  HS: 4,
  NONE: 254,
  ANY: 255,
} as const

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  NOTAUTH: 9,
  /** Extended rcode (needs OPT): 16 = BADVERS (RFC 6891 section 6.1.3). */
  BADVERS: 16,
  /** Extended rcode (needs OPT): 23 = BADCOOKIE (RFC 7873 section 8). */
  BADCOOKIE: 23,
} as const

export const OPCODE = {
  QUERY: 0,
  IQUERY: 1,
  STATUS: 2,
  NOTIFY: 4,
  UPDATE: 5,
} as const

/** EDNS option codes (IANA "DNS EDNS0 Option Codes"). */
export const EDNS_OPTION = {
  NSID: 3,
  ECS: 8,
  EXPIRE: 9,
  COOKIE: 10,
  PADDING: 12,
} as const
