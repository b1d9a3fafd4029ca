/**
 * Answers for steered names: turns a steering decision into A/AAAA records
 * with the decision's TTL and ECS scope, and gives every other type at a
 * steered name NODATA (the name exists; RFC 2308 section 2.2). Synchronous;
 * reads one steering snapshot per query.
 */
import { RCODE, RRCLASS, RRTYPE } from '../wire/index.js'
import type { ClientSubnet, ResourceRecord } from '../wire/index.js'
import { clientKey, parseAddress, select } from '../steering/index.js'
import type { ClientKey, Service, SteeringView } from '../steering/index.js'
import type { LookupResult, ZoneFinder } from '../zone/index.js'

export interface SteeredResult {
  readonly result: LookupResult
  /** ECS scope for the echo: the decision's scope, 0 for negative answers. */
  readonly scopePrefixLen: number
  /** True when the zone's static records must answer instead (all-down policy "static"). */
  readonly useStatic: boolean
  /** The rule that decided (for metrics and the query log); undefined when no decision ran. */
  readonly rule?: string
  /** Target ids answered, for the query log. */
  readonly targets?: readonly number[]
  /** The decision's TTL, for the recent-decisions ring. */
  readonly ttlSec?: number
}

/**
 * The client key of a query (DESIGN.md step 1): the ECS source prefix when it
 * is > 0, else the resolver's address. Undefined only if the socket address is
 * unparseable, which the kernel never gives us.
 */
export function keyForQuery(ecs: ClientSubnet | undefined, resolver: string): ClientKey | undefined {
  if (ecs && ecs.sourcePrefixLen > 0) return clientKey(ecs.address, ecs.sourcePrefixLen, 'ecs')
  const address = parseAddress(resolver)
  return address ? clientKey(address, address.length * 8, 'resolver') : undefined
}

/** Answers `qtype` at steered `service`. Never throws. */
export function answerSteered(
  service: Service,
  qname: string,
  qtype: number,
  key: ClientKey,
  view: SteeringView,
  zones: ZoneFinder,
  nowMs: number,
): SteeredResult {
  const zone = zones.findZone(qname, qtype)
  if (!zone) {
    return { result: { rcode: RCODE.REFUSED, authoritative: false, answer: [], authority: [], additional: [], requiredAdditional: 0 }, scopePrefixLen: 0, useStatic: false }
  }
  const nodata: SteeredResult = {
    result: { rcode: RCODE.NOERROR, authoritative: true, answer: [], authority: [zone.negativeSoa], additional: [], requiredAdditional: 0 },
    scopePrefixLen: 0,
    useStatic: false,
  }
  // ANY gets the A RRset: one RRset, as RFC 8482 section 4.1 allows.
  const family = qtype === RRTYPE.A || qtype === RRTYPE.ANY ? 4 : qtype === RRTYPE.AAAA ? 6 : undefined
  if (family === undefined) return nodata
  const decision = select(service, key, family, view, nowMs)
  if (decision.useStatic) return { ...nodata, useStatic: true, rule: decision.rule }
  const type = family === 4 ? RRTYPE.A : RRTYPE.AAAA
  const answer: ResourceRecord[] = []
  for (const index of decision.targets) {
    const target = view.setup.targets[index]
    if (!target) continue
    for (const address of family === 4 ? target.ipv4 : target.ipv6) {
      answer.push({ name: qname, type, class: RRCLASS.IN, ttlSec: decision.ttlSec, rdata: [address] })
    }
  }
  if (answer.length === 0) return { ...nodata, rule: decision.rule }
  return {
    result: { rcode: RCODE.NOERROR, authoritative: true, answer, authority: [], additional: [], requiredAdditional: 0 },
    scopePrefixLen: decision.scopePrefixLen,
    useStatic: false,
    rule: decision.rule,
    targets: decision.targets,
    ttlSec: decision.ttlSec,
  }
}
