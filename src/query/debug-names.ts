/**
 * Names that answer questions about the query itself, for operators with dig:
 *
 * - `whoami.<zone>` (every served zone): A/AAAA with the resolver's address
 *   (when the family matches), TXT with the resolver, the ECS subnet the
 *   server saw, and the node identity. gdnsd's "reflect", CoreDNS's whoami.
 *   Open to everyone: it tells a client only what it sent.
 * - `_steer.<steered name>` TXT: the steering decision for this query's
 *   client key, as short key=value strings (client key and source, rule and
 *   matched prefix, chosen target and runner-up with scores and samples, map
 *   version and age, TTL and scope with reasons, node). Only for sources in
 *   guard.acl.debug; others get REFUSED, since the trace reveals the map.
 *
 * Both are reserved: they shadow zone data of the same name. TTL 0, so no
 * resolver caches them; the ECS scope is the source prefix when the answer
 * depends on the subnet (RFC 7871 section 7.2.1), else 0.
 */
import { explain, formatAddress } from '../steering/index.js'
import type { CandidateTrace, SteeringView } from '../steering/index.js'
import type { AddressAcl } from '../guard/index.js'
import { RCODE, RRCLASS, RRTYPE } from '../wire/index.js'
import type { Query, ResourceRecord } from '../wire/index.js'
import type { LookupResult, ZoneFinder } from '../zone/index.js'
import { keyForQuery } from './steered-answer.js'

export interface DebugNamesDeps {
  readonly identity: string
  /** Who may ask `_steer.` names; absent: everyone (tests of other stages). */
  readonly debugAcl: AddressAcl | undefined
}

const WHOAMI = 'whoami.'
const STEER = '_steer.'
const encoder = new TextEncoder()

/**
 * The answer when `query` asks a debug name, else undefined (the common case:
 * one character comparison). `address` is the resolver's address bytes.
 */
export function answerDebugName(
  query: Query,
  client: string,
  address: Uint8Array | undefined,
  zones: ZoneFinder,
  view: SteeringView | undefined,
  nowMs: number,
  deps: DebugNamesDeps,
): { result: LookupResult; scopePrefixLen: number } | undefined {
  const first = query.qname.charCodeAt(0)
  if (first === 0x77 /* w */ && query.qname.startsWith(WHOAMI)) return whoami(query, client, address, zones, deps)
  if (first === 0x5f /* _ */ && query.qname.startsWith(STEER) && view) return steerTrace(query, client, address, zones, view, nowMs, deps)
  return undefined
}

function whoami(query: Query, client: string, address: Uint8Array | undefined, zones: ZoneFinder, deps: DebugNamesDeps): { result: LookupResult; scopePrefixLen: number } | undefined {
  const zone = zones.findZone(query.qname, query.qtype)
  // Only directly below an apex: whoami.sub.zone is ordinary data.
  if (!zone || zone.origin !== query.qname.slice(WHOAMI.length)) return undefined
  const ecs = query.edns?.clientSubnet
  const answer: ResourceRecord[] = []
  let scopePrefixLen = 0
  if (query.qtype === RRTYPE.A && address?.length === 4) answer.push(record(query.qname, RRTYPE.A, [address]))
  else if (query.qtype === RRTYPE.AAAA && address?.length === 16) answer.push(record(query.qname, RRTYPE.AAAA, [address]))
  else if (query.qtype === RRTYPE.TXT || query.qtype === RRTYPE.ANY) {
    const subnet = ecs ? `${formatAddress(ecs.address)}/${ecs.sourcePrefixLen}` : 'none'
    answer.push(txt(query.qname, [`resolver=${client}`, `ecs=${subnet}`, `node=${deps.identity}`]))
    scopePrefixLen = ecs?.sourcePrefixLen ?? 0
  }
  return { result: { rcode: RCODE.NOERROR, authoritative: true, answer, authority: answer.length === 0 ? [zone.negativeSoa] : [], additional: [], requiredAdditional: 0 }, scopePrefixLen }
}

function steerTrace(
  query: Query,
  client: string,
  address: Uint8Array | undefined,
  zones: ZoneFinder,
  view: SteeringView,
  nowMs: number,
  deps: DebugNamesDeps,
): { result: LookupResult; scopePrefixLen: number } | undefined {
  const name = query.qname.slice(STEER.length)
  if (!view.setup.services.has(name)) return undefined
  const zone = zones.findZone(name, RRTYPE.A)
  if (!zone) return undefined
  if (deps.debugAcl && !(address && deps.debugAcl.allows(address))) {
    return { result: { rcode: RCODE.REFUSED, authoritative: false, answer: [], authority: [], additional: [], requiredAdditional: 0 }, scopePrefixLen: 0 }
  }
  if (query.qtype !== RRTYPE.TXT && query.qtype !== RRTYPE.ANY) {
    return { result: { rcode: RCODE.NOERROR, authoritative: true, answer: [], authority: [zone.negativeSoa], additional: [], requiredAdditional: 0 }, scopePrefixLen: 0 }
  }
  const key = keyForQuery(query.edns?.clientSubnet, client)
  // The A decision: what most clients ask first; the AAAA one differs only in the pool's addresses.
  const e = key ? explain(view, name, key, 4, nowMs) : undefined
  if (!key || !e) return undefined
  const t = e.trace
  const strings = [
    `node=${deps.identity}`,
    `key=${t.key} source=${t.keySource}`,
    `rule=${t.rule} matched=${t.matched ?? 'none'}${t.mapStale ? ' (stale)' : ''}`,
    `answer=${e.answer.join(',') || 'none'} targets=${t.chosen.join(',') || 'none'}`,
    // Map candidates are ranked: name the best and the runner-up. Geo and default ones are not.
    ...(t.rule === 'map' || t.rule === 'override'
      ? t.candidates.slice(0, 3).map((c, i) => `${i === 0 ? 'best' : i === 1 ? 'runner-up' : 'third'}=${describe(c)}`)
      : [`candidates=${t.candidates.slice(0, 6).map(describe).join(', ')}`]),
    `map=v${t.mapVersion} age=${t.mapAgeSec === undefined ? 'unknown' : `${Math.round(t.mapAgeSec)}s`}`,
    `ttl=${t.ttlSec} ${t.ttlReason}`,
    `scope=${t.scopePrefixLen} ${t.scopeReason}`,
  ]
  if (t.override) strings.splice(3, 0, `override=${t.override.id} ${t.override.applied ? 'applied' : 'not applied'}`)
  const ecs = query.edns?.clientSubnet
  return {
    result: { rcode: RCODE.NOERROR, authoritative: true, answer: [txt(query.qname, strings)], authority: [], additional: [], requiredAdditional: 0 },
    // The trace depends on the whole source subnet.
    scopePrefixLen: ecs?.sourcePrefixLen ?? 0,
  }
}

function describe(c: CandidateTrace): string {
  const parts = [c.id]
  if (c.scoreMs !== undefined) parts.push(`score=${round(c.scoreMs)}ms`)
  if (c.biasMs !== undefined) parts.push(`bias=${round(c.biasMs)}ms`)
  if (c.samples !== undefined) parts.push(`samples=${c.samples}`)
  if (c.distanceKm !== undefined) parts.push(`km=${Math.round(c.distanceKm)}`)
  if (!c.serving) parts.push(`not-serving(${c.admin}/${c.health})`)
  return parts.join(' ')
}

const round = (n: number): string => String(Math.round(n * 10) / 10)

function record(name: string, type: number, rdata: ResourceRecord['rdata']): ResourceRecord {
  return { name, type, class: RRCLASS.IN, ttlSec: 0, rdata }
}

/** One TXT record of character-strings (RFC 1035 section 3.3.14), each cut to 255 bytes. */
function txt(name: string, strings: readonly string[]): ResourceRecord {
  const parts = strings.map((s) => encoder.encode(s).subarray(0, 255))
  const data = new Uint8Array(parts.reduce((n, p) => n + 1 + p.length, 0))
  let o = 0
  for (const p of parts) {
    data[o++] = p.length
    data.set(p, o)
    o += p.length
  }
  return record(name, RRTYPE.TXT, [data])
}
