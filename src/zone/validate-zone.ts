/**
 * Zone-level rules over parsed records, each problem pointing at the file and
 * line of the record that breaks the rule: one SOA at the apex, NS at the apex,
 * CNAME exclusivity, out-of-zone data, occluded data below delegations and
 * DNAMEs, duplicate records and TTLs that differ inside one RRset. Also returns
 * the records cleaned the way Knot loads them (duplicates merged, one TTL per
 * RRset, out-of-zone data dropped). Knows nothing of files or text.
 */
import { isSubdomainOf, parentName, toFqdn } from '../wire/index.js'
import type { ResourceRecord } from '../wire/index.js'
import type { SourcedRecord } from './master-file-parser.js'
import { ZONE_RRTYPE, rrTypeToText } from './rdata-types.js'
import { rdataToWire } from './rdata-wire.js'
import { ZONE_PROBLEM } from './zone-problem.js'
import type { ZoneProblem, ZoneProblemCode } from './zone-problem.js'

export interface ZoneValidation {
  /** Records to serve if there are no errors: in file order, deduplicated, one TTL per RRset. */
  readonly records: ResourceRecord[]
  readonly problems: ZoneProblem[]
}

// Types that may sit beside a CNAME (RFC 2181 section 10.1, RFC 4035 section 2.5).
const CNAME_COMPANIONS: ReadonlySet<number> = new Set([ZONE_RRTYPE.CNAME, ZONE_RRTYPE.RRSIG, ZONE_RRTYPE.NSEC])
// Types that belong at a delegation point in the parent (RFC 4035 section 2.2, 2.4).
const DELEGATION_TYPES: ReadonlySet<number> = new Set([ZONE_RRTYPE.NS, ZONE_RRTYPE.DS, ZONE_RRTYPE.RRSIG, ZONE_RRTYPE.NSEC])

interface Item {
  readonly src: SourcedRecord
  readonly key: string
  ttlSec: number
}

/**
 * Checks parsed records of the zone `origin` (internal form). `mainFile` is
 * named by problems that concern the zone as a whole (line 0). Pure; never throws.
 */
export function validateZone(origin: string, parsed: readonly SourcedRecord[], mainFile: string): ZoneValidation {
  const problems: ZoneProblem[] = []
  const add = (src: { file: string; line: number }, code: ZoneProblemCode, message: string, severity: 'error' | 'warning' = 'error'): void => {
    problems.push({ file: src.file, line: src.line, severity, code, message })
  }
  const zoneText = toFqdn(origin)

  // Out-of-zone data: Knot warns and drops it; we refuse the zone, because a
  // record the operator wrote and we silently ignore is a steering outage later.
  const inZone: SourcedRecord[] = []
  for (const src of parsed) {
    if (isSubdomainOf(src.rr.name, origin)) inZone.push(src)
    else add(src, ZONE_PROBLEM.OUT_OF_ZONE, `${toFqdn(src.rr.name)} is outside the zone ${zoneText}`)
  }

  // TTLs inside one RRset (RFC 2181 section 5.2). Knot loads the zone, logs the
  // mismatch and gives the RRset the TTL of the record added last; we do the
  // same and warn at every record that changes it. RRSIGs are exempt: their
  // TTLs follow the RRsets they cover.
  const rrsetTtl = new Map<string, number>()
  const items: Item[] = []
  for (const src of inZone) {
    const rr = src.rr
    const setKey = `${rr.name}\u0000${rr.type}`
    const item: Item = { src, key: `${setKey}\u0000${Buffer.from(rdataToWire(rr.rdata)).toString('hex')}`, ttlSec: rr.ttlSec }
    items.push(item)
    if (rr.type === ZONE_RRTYPE.RRSIG) continue
    const current = rrsetTtl.get(setKey)
    if (current !== undefined && current !== rr.ttlSec) {
      add(
        src,
        ZONE_PROBLEM.TTL_MISMATCH,
        `TTL ${rr.ttlSec} differs from ${current} of earlier ${toFqdn(rr.name)} ${rrTypeToText(rr.type)} records; the RRset TTL is set to ${rr.ttlSec} (RFC 2181 section 5.2)`,
        'warning',
      )
    }
    rrsetTtl.set(setKey, rr.ttlSec)
  }

  // Duplicates collapse silently (RFC 2181 section 5: an RRset is a set).
  const seen = new Set<string>()
  const unique: Item[] = []
  for (const item of items) {
    if (seen.has(item.key)) continue
    seen.add(item.key)
    const rr = item.src.rr
    if (rr.type !== ZONE_RRTYPE.RRSIG) item.ttlSec = rrsetTtl.get(`${rr.name}\u0000${rr.type}`) as number
    unique.push(item)
  }

  // Index: name → type → records in file order.
  const byName = new Map<string, Map<number, SourcedRecord[]>>()
  for (const { src } of unique) {
    let types = byName.get(src.rr.name)
    if (types === undefined) byName.set(src.rr.name, (types = new Map()))
    const list = types.get(src.rr.type)
    if (list === undefined) types.set(src.rr.type, [src])
    else list.push(src)
  }

  // SOA: exactly one, at the apex (RFC 1035 section 5.2; Knot refuses zero or several).
  const apexTypes = byName.get(origin)
  const apexSoa = apexTypes?.get(ZONE_RRTYPE.SOA) ?? []
  if (apexSoa.length === 0) add({ file: mainFile, line: 0 }, ZONE_PROBLEM.SOA_MISSING, `the zone ${zoneText} has no SOA record at its apex`)
  for (const extra of apexSoa.slice(1)) add(extra, ZONE_PROBLEM.SOA_MULTIPLE, `a second SOA record for ${zoneText}: a zone has exactly one`)
  for (const [name, types] of byName) {
    if (name === origin) continue
    for (const soa of types.get(ZONE_RRTYPE.SOA) ?? []) {
      add(soa, ZONE_PROBLEM.SOA_NOT_AT_APEX, `SOA record at ${toFqdn(name)}, which is not the zone apex ${zoneText}`)
    }
  }
  // NS at the apex (RFC 1035 section 5.2, RFC 1034 section 4.2.1).
  if (apexTypes?.get(ZONE_RRTYPE.NS) === undefined) {
    const at = apexSoa[0] ?? { file: mainFile, line: 0 }
    add(at, ZONE_PROBLEM.NS_MISSING, `the zone ${zoneText} has no NS records at its apex`)
  }

  // CNAME rules (RFC 1034 section 3.6.2, RFC 2181 section 10.1).
  const order = new Map<SourcedRecord, number>()
  unique.forEach((item, k) => order.set(item.src, k))
  for (const [name, types] of byName) {
    const cnames = types.get(ZONE_RRTYPE.CNAME)
    if (cnames === undefined) continue
    const first = cnames[0] as SourcedRecord
    if (name === origin) {
      add(first, ZONE_PROBLEM.CNAME_AT_APEX, `CNAME at the zone apex ${zoneText}: the apex must hold SOA and NS (RFC 1034 section 3.6.2)`)
      continue
    }
    for (const extra of cnames.slice(1)) {
      add(extra, ZONE_PROBLEM.CNAME_MULTIPLE, `more than one CNAME record at ${toFqdn(name)} (RFC 2181 section 10.1)`)
    }
    const others = [...types.entries()].filter(([t]) => !CNAME_COMPANIONS.has(t))
    if (others.length === 0) continue
    // Point at whichever came second: that is the line the operator must look at.
    let culprit = first
    let culpritOrder = order.get(first) as number
    for (const [, list] of others) {
      const o = order.get(list[0] as SourcedRecord) as number
      if (o > culpritOrder) {
        culprit = list[0] as SourcedRecord
        culpritOrder = o
      }
    }
    const otherTypes = others.map(([t]) => rrTypeToText(t)).join(', ')
    add(culprit, ZONE_PROBLEM.CNAME_AND_OTHER_DATA, `${toFqdn(name)} has a CNAME and other data (${otherTypes}) (RFC 1034 section 3.6.2)`)
  }

  // Occluded data: below a zone cut only glue addresses belong (RFC 1034
  // section 4.2.1); at the cut only NS, DS and DNSSEC records; below a DNAME
  // nothing (RFC 6672 section 2.4). Such data is never served, so it is a warning.
  const cuts = new Set<string>()
  const dnames = new Set<string>()
  for (const [name, types] of byName) {
    if (name === origin) continue
    if (types.has(ZONE_RRTYPE.NS)) cuts.add(name)
    if (types.has(ZONE_RRTYPE.DNAME)) dnames.add(name)
  }
  if (cuts.size > 0 || dnames.size > 0) {
    for (const { src } of unique) {
      const rr = src.rr
      if (cuts.has(rr.name) && !DELEGATION_TYPES.has(rr.type)) {
        add(src, ZONE_PROBLEM.OCCLUDED, `${toFqdn(rr.name)} ${rrTypeToText(rr.type)} is at a delegation point and will not be served`, 'warning')
        continue
      }
      for (let up = parentName(rr.name); up !== undefined && up !== origin && isSubdomainOf(up, origin); up = parentName(up)) {
        if (dnames.has(up)) {
          add(src, ZONE_PROBLEM.OCCLUDED, `${toFqdn(rr.name)} ${rrTypeToText(rr.type)} is below the DNAME at ${toFqdn(up)} and will not be served`, 'warning')
          break
        }
        if (cuts.has(up)) {
          if (rr.type !== ZONE_RRTYPE.A && rr.type !== ZONE_RRTYPE.AAAA) {
            add(src, ZONE_PROBLEM.OCCLUDED, `${toFqdn(rr.name)} ${rrTypeToText(rr.type)} is below the delegation at ${toFqdn(up)} and will not be served`, 'warning')
          }
          break
        }
      }
    }
  }

  const records = unique.map(({ src, ttlSec }) => (ttlSec === src.rr.ttlSec ? src.rr : { ...src.rr, ttlSec }))
  return { records, problems }
}
