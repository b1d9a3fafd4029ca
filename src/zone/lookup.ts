/**
 * The RFC 1034 section 4.3.2 algorithm over compiled zones: exact answers, CNAME
 * chains (loop-safe), wildcards with the closest-encloser rules of RFC 4592,
 * referrals at zone cuts, NXDOMAIN/NODATA with the negative SOA (RFC 2308), and
 * additional addresses for NS/MX/SRV targets. Pure and synchronous: it reads an
 * immutable ZoneSet and returns records; it never encodes or allocates buffers.
 */
import { isSubdomainOf, RCODE, rdataNames, RRTYPE } from '../wire/index.js'
import type { ResourceRecord } from '../wire/index.js'
import type { RRset, Zone, ZoneNode } from './zone-tree.js'

/** What a lookup decided; the server turns it into a message. */
export interface LookupResult {
  readonly rcode: number
  readonly authoritative: boolean
  readonly answer: readonly ResourceRecord[]
  readonly authority: readonly ResourceRecord[]
  readonly additional: readonly ResourceRecord[]
  /** Leading additional records that must fit or the answer is truncated (RFC 9471 glue). */
  readonly requiredAdditional: number
}

/** Finds the zone that answers a name; DS at a zone apex belongs to the parent (RFC 4035 section 3.1.4.1). */
export interface ZoneFinder {
  findZone(qname: string, qtype: number): Zone | undefined
}

/** Longest CNAME chain followed before giving up (BIND and Knot stop at 16 or fewer too). */
const MAX_CNAME_HOPS = 16

const REFUSED: LookupResult = {
  rcode: RCODE.REFUSED,
  authoritative: false,
  answer: [],
  authority: [],
  additional: [],
  requiredAdditional: 0,
}

/**
 * Answers one question from the served zones. Never throws; names outside every
 * zone are REFUSED (an authoritative-only server gives no referral to the root).
 * A CNAME chain stops before any name in `steered`: a steered answer
 * depends on the client, so it must be asked for by its own name (its ECS scope
 * and TTL would otherwise be lost inside a static answer).
 */
export function lookup(zones: ZoneFinder, qname: string, qtype: number, steered?: { has(name: string): boolean }): LookupResult {
  const firstZone = zones.findZone(qname, qtype)
  if (!firstZone) return REFUSED

  const answer: ResourceRecord[] = []
  const seen = new Set<string>()
  let zone: Zone = firstZone
  let name = qname
  for (let hop = 0; ; hop++) {
    const step = lookupInZone(zone, name, qtype)
    answer.push(...step.answer)
    if (step.kind !== 'cname') {
      const additional = step.kind === 'referral' ? step.additional : additionalFor(zone, answer)
      return {
        rcode: step.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR,
        authoritative: !(step.kind === 'referral' && hop === 0),
        answer,
        authority: step.authority,
        additional,
        requiredAdditional: step.kind === 'referral' ? step.requiredAdditional : 0,
      }
    }
    // RFC 1034 4.3.2 step 3a: restart with the canonical name, in whichever served
    // zone holds it; stop at a loop, a long chain or a name we do not serve.
    seen.add(name)
    const target = step.target
    const nextZone = zones.findZone(target, qtype)
    if (seen.has(target) || hop + 1 >= MAX_CNAME_HOPS || !nextZone || steered?.has(target)) {
      return {
        rcode: RCODE.NOERROR,
        authoritative: true,
        answer,
        authority: [],
        additional: [],
        requiredAdditional: 0,
      }
    }
    zone = nextZone
    name = target
  }
}

type Step =
  | { kind: 'answer' | 'nodata' | 'nxdomain'; answer: ResourceRecord[]; authority: ResourceRecord[] }
  | { kind: 'cname'; answer: ResourceRecord[]; target: string; authority: ResourceRecord[] }
  | {
      kind: 'referral'
      answer: ResourceRecord[]
      authority: ResourceRecord[]
      additional: ResourceRecord[]
      requiredAdditional: number
    }

function lookupInZone(zone: Zone, qname: string, qtype: number): Step {
  // Walk down from the apex one label at a time: the first zone cut on the way
  // answers with a referral; the first missing name ends the walk (closest encloser).
  const names = namesBelowApex(zone, qname)
  let encloser: ZoneNode = zone.apex
  for (let i = 0; i < names.length; i++) {
    const node = zone.nodes.get(names[i] as string)
    if (!node) return wildcardOrNxdomain(zone, encloser, qname, qtype)
    const isLast = i === names.length - 1
    // The DS RRset at a cut is parent-side data (RFC 4035 section 3.1.4.1).
    if (node.isDelegation && !(isLast && qtype === RRTYPE.DS)) return referral(zone, node)
    encloser = node
  }
  return answerFromNode(zone, encloser, qname, qtype)
}

/** Names from just below the apex down to qname, e.g. [b.zone, a.b.zone] for a.b.zone. */
function namesBelowApex(zone: Zone, qname: string): string[] {
  const out: string[] = []
  let name = qname
  while (name !== zone.origin) {
    out.push(name)
    const dot = nextLabelDot(name)
    if (dot < 0) break
    name = name.slice(dot + 1)
  }
  return out.reverse()
}

/** Index of the first unescaped dot, or -1. */
function nextLabelDot(name: string): number {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === 0x5c) i += /^[0-9]{3}$/.test(name.slice(i + 1, i + 4)) ? 3 : 1
    else if (c === 0x2e) return i
  }
  return -1
}

function answerFromNode(zone: Zone, node: ZoneNode, qname: string, qtype: number): Step {
  const cname = node.rrsets.get(RRTYPE.CNAME)
  // ANY at an alias gets the CNAME itself, unchased, like any other one RRset below.
  if (cname && qtype !== RRTYPE.CNAME && qtype !== RRTYPE.ANY) {
    const records = ownedBy(cname.records, qname)
    const target = rdataNames(records[0] as ResourceRecord)[0] ?? ''
    return { kind: 'cname', answer: records, target, authority: [] }
  }
  if (qtype === RRTYPE.ANY) {
    // RFC 8482 section 4.1: one RRset answers ANY (UDP and TCP alike, as Knot does),
    // so ANY cannot be used for amplification. The lowest type number is stable
    // and is what Knot picks.
    let first: RRset | undefined
    for (const set of node.rrsets.values()) if (!first || set.type < first.type) first = set
    if (!first) return nodata(zone)
    return { kind: 'answer', answer: ownedBy(first.records, qname), authority: [] }
  }
  const rrset = node.rrsets.get(qtype)
  if (!rrset) return nodata(zone)
  return { kind: 'answer', answer: ownedBy(rrset.records, qname), authority: [] }
}

function wildcardOrNxdomain(zone: Zone, encloser: ZoneNode, qname: string, qtype: number): Step {
  // RFC 4592 section 3.3.1: only the source of synthesis "*.<closest encloser>"
  // may match; a wildcard higher up never does.
  const source = zone.nodes.get(encloser.name === '' ? '*' : `*.${encloser.name}`)
  if (!source) return { kind: 'nxdomain', answer: [], authority: [zone.negativeSoa] }
  return answerFromNode(zone, source, qname, qtype)
}

function nodata(zone: Zone): Step {
  return { kind: 'nodata', answer: [], authority: [zone.negativeSoa] }
}

/** RFC 1034 4.3.2 step 3b: NS of the cut in authority, their addresses as glue. */
function referral(zone: Zone, cut: ZoneNode): Step {
  const ns = cut.rrsets.get(RRTYPE.NS)?.records ?? []
  const required: ResourceRecord[] = []
  const optional: ResourceRecord[] = []
  for (const rr of ns) {
    const host = rdataNames(rr)[0]
    if (host === undefined) continue
    // In-domain glue (below the cut) is needed to reach the child at all, so it
    // must fit or the referral is truncated (RFC 9471 section 3). Sibling glue elsewhere
    // in this zone is helpful but optional.
    const target = isSubdomainOf(host, cut.name) ? required : optional
    target.push(...addressesAt(zone, host))
  }
  return {
    kind: 'referral',
    answer: [],
    authority: [...ns],
    additional: [...required, ...optional],
    requiredAdditional: required.length,
  }
}

/** A/AAAA for the NS, MX and SRV targets in an answer, from the same zone (glue included). */
function additionalFor(zone: Zone, answer: readonly ResourceRecord[]): ResourceRecord[] {
  const out: ResourceRecord[] = []
  const done = new Set<string>()
  for (const rr of answer) {
    if (rr.type !== RRTYPE.NS && rr.type !== RRTYPE.MX && rr.type !== RRTYPE.SRV) continue
    for (const host of rdataNames(rr)) {
      if (done.has(host)) continue
      done.add(host)
      out.push(...addressesAt(zone, host))
    }
  }
  return out
}

function addressesAt(zone: Zone, host: string): ResourceRecord[] {
  if (!isSubdomainOf(host, zone.origin)) return []
  const node = zone.nodes.get(host)
  if (!node) return []
  return [...(node.rrsets.get(RRTYPE.A)?.records ?? []), ...(node.rrsets.get(RRTYPE.AAAA)?.records ?? [])]
}

/** Records with the owner replaced by qname (wildcard synthesis, RFC 4592 section 3.4.1). */
function ownedBy(records: readonly ResourceRecord[], qname: string): ResourceRecord[] {
  if (records[0]?.name === qname) return records as ResourceRecord[]
  return records.map((rr) => ({ ...rr, name: qname }))
}
