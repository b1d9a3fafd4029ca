/**
 * Zone-level rules over parsed records, each problem pointing at the file and
 * line of the record that breaks the rule: one SOA at the apex, NS at the apex,
 * CNAME exclusivity, out-of-zone data, occluded data below delegations and
 * DNAMEs, duplicate records and TTLs that differ inside one RRset. Also returns
 * the records cleaned the way Knot loads them (duplicates merged, one TTL per
 * RRset, out-of-zone data dropped). Knows nothing of files or text.
 */
import { isRdataName, isSubdomainOf, parentName, toFqdn } from '../wire/index.js'
import type { RdataPart, ResourceRecord } from '../wire/index.js'
import type { SourcedRecord } from './master-file-parser.js'
import { ZONE_RRTYPE, rrTypeToText } from './rdata-types.js'
import { rdataKey } from './rdata-wire.js'
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

interface RRsetGroup {
  /** TTL of the RRset so far: the last record's, as Knot does. */
  ttlSec: number
  /** Distinct records in file order. */
  readonly records: SourcedRecord[]
  /** Rdata keys, built once the RRset is large enough for linear scans to hurt. */
  keys: Set<string> | undefined
}

interface Item {
  readonly src: SourcedRecord
  readonly group: RRsetGroup
}

// RRsets up to this size are scanned for duplicates; larger ones use a key set.
const LINEAR_DUPLICATE_SCAN = 16

/** parentName without splitting when the name has no escapes (the common case). */
function parentOf(name: string): string | undefined {
  if (name.includes('\\')) return parentName(name)
  if (name === '') return undefined
  const dot = name.indexOf('.')
  return dot < 0 ? '' : name.slice(dot + 1)
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false
  return true
}

function sameRdata(a: readonly RdataPart[], b: readonly RdataPart[]): boolean {
  if (a.length !== b.length) return false
  for (let k = 0; k < a.length; k++) {
    const x = a[k] as RdataPart
    const y = b[k] as RdataPart
    if (isRdataName(x)) {
      if (!isRdataName(y) || x.name !== y.name) return false
    } else if (isRdataName(y) || !sameBytes(x, y)) {
      return false
    }
  }
  return true
}

function isDuplicate(group: RRsetGroup, rr: ResourceRecord): boolean {
  if (group.keys === undefined && group.records.length < LINEAR_DUPLICATE_SCAN) {
    return group.records.some((other) => sameRdata(other.rr.rdata, rr.rdata))
  }
  if (group.keys === undefined) group.keys = new Set(group.records.map((r) => rdataKey(r.rr.rdata)))
  const key = rdataKey(rr.rdata)
  if (group.keys.has(key)) return true
  group.keys.add(key)
  return false
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

  // One pass groups records by name and type, merges duplicates and settles
  // each RRset's TTL. (Global maps keyed by name+type+rdata strings made this
  // the slowest step of loading a 400k-record zone.)
  const byName = new Map<string, Map<number, RRsetGroup>>()
  const unique: Item[] = []
  for (const src of inZone) {
    const rr = src.rr
    let types = byName.get(rr.name)
    if (types === undefined) byName.set(rr.name, (types = new Map()))
    let group = types.get(rr.type)
    if (group === undefined) types.set(rr.type, (group = { ttlSec: rr.ttlSec, records: [], keys: undefined }))
    // TTLs inside one RRset (RFC 2181 section 5.2). Knot loads the zone, logs
    // the mismatch and gives the RRset the TTL of the record added last; we do
    // the same and warn at every record that changes it. RRSIGs are exempt:
    // their TTLs follow the RRsets they cover.
    if (rr.type !== ZONE_RRTYPE.RRSIG && rr.ttlSec !== group.ttlSec) {
      add(
        src,
        ZONE_PROBLEM.TTL_MISMATCH,
        `TTL ${rr.ttlSec} differs from ${group.ttlSec} of earlier ${toFqdn(rr.name)} ${rrTypeToText(rr.type)} records; the RRset TTL is set to ${rr.ttlSec} (RFC 2181 section 5.2)`,
        'warning',
      )
      group.ttlSec = rr.ttlSec
    }
    // Duplicates collapse silently (RFC 2181 section 5: an RRset is a set).
    if (isDuplicate(group, rr)) continue
    const item: Item = { src, group }
    group.records.push(src)
    unique.push(item)
  }

  // SOA: exactly one, at the apex (RFC 1035 section 5.2; Knot refuses zero or several).
  const apexTypes = byName.get(origin)
  const apexSoa = apexTypes?.get(ZONE_RRTYPE.SOA)?.records ?? []
  if (apexSoa.length === 0) add({ file: mainFile, line: 0 }, ZONE_PROBLEM.SOA_MISSING, `the zone ${zoneText} has no SOA record at its apex`)
  for (const extra of apexSoa.slice(1)) add(extra, ZONE_PROBLEM.SOA_MULTIPLE, `a second SOA record for ${zoneText}: a zone has exactly one`)
  for (const [name, types] of byName) {
    if (name === origin) continue
    for (const soa of types.get(ZONE_RRTYPE.SOA)?.records ?? []) {
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
    const cnames = types.get(ZONE_RRTYPE.CNAME)?.records
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
    for (const [, group] of others) {
      const o = order.get(group.records[0] as SourcedRecord) as number
      if (o > culpritOrder) {
        culprit = group.records[0] as SourcedRecord
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
    // Nearest cut or DNAME strictly above each name, computed once per name.
    const above = new Map<string, { readonly at: string; readonly isDname: boolean } | null>()
    const nearestAbove = (name: string): { readonly at: string; readonly isDname: boolean } | null => {
      let found = above.get(name)
      if (found !== undefined) return found
      found = null
      for (let up = parentOf(name); up !== undefined && up !== origin; up = parentOf(up)) {
        if (dnames.has(up) || cuts.has(up)) {
          found = { at: up, isDname: dnames.has(up) }
          break
        }
      }
      above.set(name, found)
      return found
    }
    for (const { src } of unique) {
      const rr = src.rr
      const what = `${toFqdn(rr.name)} ${rrTypeToText(rr.type)}`
      if (cuts.has(rr.name) && !DELEGATION_TYPES.has(rr.type)) {
        add(src, ZONE_PROBLEM.OCCLUDED, `${what} is at a delegation point and will not be served`, 'warning')
        continue
      }
      const hit = nearestAbove(rr.name)
      if (hit === null) continue
      if (hit.isDname) {
        add(src, ZONE_PROBLEM.OCCLUDED, `${what} is below the DNAME at ${toFqdn(hit.at)} and will not be served`, 'warning')
      } else if (rr.type !== ZONE_RRTYPE.A && rr.type !== ZONE_RRTYPE.AAAA) {
        add(src, ZONE_PROBLEM.OCCLUDED, `${what} is below the delegation at ${toFqdn(hit.at)} and will not be served`, 'warning')
      }
    }
  }

  const records = unique.map(({ src, group }) => {
    const rr = src.rr
    return rr.type === ZONE_RRTYPE.RRSIG || rr.ttlSec === group.ttlSec ? rr : { ...rr, ttlSec: group.ttlSec }
  })
  return { records, problems }
}
