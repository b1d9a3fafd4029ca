/**
 * Record type mnemonics as master files spell them, and the RFC 3597 `TYPEnnn`
 * form. The numbers come from the IANA "Resource Record (RR) TYPEs" registry;
 * wire/record.ts holds the ones the server treats specially, this table adds the
 * ones a zone file may name. Which of them have a text parser is rdata-text.ts's
 * business.
 */
import { RRTYPE } from '../wire/index.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'

/** Type numbers by mnemonic (upper case). */
export const ZONE_RRTYPE = {
  A: RRTYPE.A,
  NS: RRTYPE.NS,
  CNAME: RRTYPE.CNAME,
  SOA: RRTYPE.SOA,
  PTR: RRTYPE.PTR,
  HINFO: RRTYPE.HINFO,
  MX: RRTYPE.MX,
  TXT: RRTYPE.TXT,
  RP: 17,
  AFSDB: 18,
  AAAA: RRTYPE.AAAA,
  LOC: 29,
  SRV: RRTYPE.SRV,
  NAPTR: RRTYPE.NAPTR,
  KX: 36,
  CERT: 37,
  DNAME: RRTYPE.DNAME,
  APL: 42,
  DS: RRTYPE.DS,
  SSHFP: 44,
  IPSECKEY: 45,
  RRSIG: RRTYPE.RRSIG,
  NSEC: RRTYPE.NSEC,
  DNSKEY: RRTYPE.DNSKEY,
  DHCID: 49,
  NSEC3: 50,
  NSEC3PARAM: 51,
  TLSA: 52,
  SMIMEA: 53,
  CDS: 59,
  CDNSKEY: 60,
  OPENPGPKEY: 61,
  CSYNC: 62,
  ZONEMD: 63,
  SVCB: 64,
  HTTPS: 65,
  SPF: 99,
  EUI48: 108,
  EUI64: 109,
  URI: 256,
  CAA: RRTYPE.CAA,
} as const

// Mnemonics of meta and query types: recognised only to be refused clearly.
const META_RRTYPE: Readonly<Record<string, number>> = { OPT: RRTYPE.OPT, TKEY: 249, TSIG: 250, IXFR: RRTYPE.IXFR, AXFR: RRTYPE.AXFR, MAILB: 253, MAILA: 254 }

const NAME_BY_TYPE = new Map<number, string>(Object.entries(ZONE_RRTYPE).map(([k, v]) => [v, k]))

// Meta and query types cannot be stored in a zone (RFC 6895 section 3.1; OPT is
// a pseudo-record, RFC 6891 section 6.1.1). Type 0 is reserved.
const NOT_DATA_TYPES: ReadonlySet<number> = new Set([0, RRTYPE.OPT, 128, 249, 250, RRTYPE.IXFR, RRTYPE.AXFR, 253, 254, RRTYPE.ANY])

/**
 * Type number of a type token (`A`, `aaaa`, `TYPE65280`), or undefined when the
 * token is not a type at all. Throws ZoneSyntaxError for a `TYPEnnn` out of range
 * or for meta/query types that cannot appear in zone data.
 */
export function parseRrType(text: string): number | undefined {
  const upper = text.toUpperCase()
  let type: number | undefined = (ZONE_RRTYPE as Record<string, number>)[upper] ?? META_RRTYPE[upper]
  if (type === undefined) {
    const m = /^TYPE([0-9]+)$/.exec(upper)
    if (m === null) return undefined
    type = Number(m[1])
    if (type > 0xffff) throw new ZoneSyntaxError(ZONE_PROBLEM.UNKNOWN_TYPE, `type ${text} is above 65535`)
  }
  if (NOT_DATA_TYPES.has(type)) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.UNSUPPORTED_TYPE, `type ${text} is a meta or query type and cannot appear in a zone`)
  }
  return type
}

/** Mnemonic of a type number, or `TYPEnnn` (RFC 3597 section 5). */
export function rrTypeToText(type: number): string {
  return NAME_BY_TYPE.get(type) ?? `TYPE${type}`
}
