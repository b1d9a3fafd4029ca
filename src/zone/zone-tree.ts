/**
 * One zone compiled for lookup: every name (including empty non-terminals) in a
 * map, RRsets grouped by type, delegation points marked, the negative-caching
 * TTL precomputed. Built once by the control plane from validated records and
 * never mutated afterwards, so the query path can read it without locks.
 */
import { isRdataName, nameToLabels, parentName, RRTYPE } from '../wire/index.js'
import type { ResourceRecord } from '../wire/index.js'

export interface RRset {
  readonly name: string
  readonly type: number
  readonly records: readonly ResourceRecord[]
}

export interface ZoneNode {
  readonly name: string
  /** Empty for empty non-terminals. */
  readonly rrsets: ReadonlyMap<number, RRset>
  /** True at a zone cut below the apex (NS present, not the apex). */
  readonly isDelegation: boolean
}

export interface Zone {
  /** Internal form, e.g. "edge.example.net". */
  readonly origin: string
  readonly labelCount: number
  readonly nodes: ReadonlyMap<string, ZoneNode>
  readonly apex: ZoneNode
  /** The apex SOA with its TTL lowered for negative answers (RFC 2308 section 3). */
  readonly negativeSoa: ResourceRecord
  readonly serial: number
}

/**
 * Compiles validated records into a lookup-ready zone. Throws STEER_ERR_ZONE_NO_SOA
 * when the apex has no SOA (the validator reports that first; this is a guard).
 */
export function buildZone(origin: string, records: readonly ResourceRecord[]): Zone {
  const byName = new Map<string, Map<number, ResourceRecord[]>>()
  for (const rr of records) {
    let types = byName.get(rr.name)
    if (!types) {
      types = new Map()
      byName.set(rr.name, types)
    }
    const list = types.get(rr.type)
    if (list) list.push(rr)
    else types.set(rr.type, [rr])
  }

  const nodes = new Map<string, ZoneNode>()
  for (const [name, types] of byName) {
    const rrsets = new Map<number, RRset>()
    for (const [type, list] of types) rrsets.set(type, { name, type, records: list })
    nodes.set(name, { name, rrsets, isDelegation: name !== origin && rrsets.has(RRTYPE.NS) })
  }
  // Empty non-terminals exist (RFC 4592 section 2.2.2): a query for one is NODATA,
  // not NXDOMAIN, and it stops a wildcard above it from matching.
  for (const name of byName.keys()) {
    for (let p = parentName(name); p !== undefined && p !== origin; p = parentName(p)) {
      if (nodes.has(p)) break
      nodes.set(p, { name: p, rrsets: new Map(), isDelegation: false })
    }
  }
  if (!nodes.has(origin)) nodes.set(origin, { name: origin, rrsets: new Map(), isDelegation: false })

  const apex = nodes.get(origin) as ZoneNode
  const soa = apex.rrsets.get(RRTYPE.SOA)?.records[0]
  if (!soa) {
    throw Object.assign(new Error(`zone ${origin} has no SOA at its apex`), { code: 'STEER_ERR_ZONE_NO_SOA' })
  }
  const { minimumSec, serial } = readSoaTimers(soa)
  return {
    origin,
    labelCount: nameToLabels(origin).length,
    nodes,
    apex,
    negativeSoa: { ...soa, ttlSec: Math.min(soa.ttlSec, minimumSec) },
    serial,
  }
}

/** SERIAL and MINIMUM from SOA rdata (the 20 bytes after the two names). */
export function readSoaTimers(soa: ResourceRecord): { serial: number; minimumSec: number } {
  const fixed = soa.rdata.find((p): p is Uint8Array => !isRdataName(p))
  if (!fixed || fixed.length < 20) return { serial: 0, minimumSec: soa.ttlSec }
  const view = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength)
  return { serial: view.getUint32(0), minimumSec: view.getUint32(16) }
}
