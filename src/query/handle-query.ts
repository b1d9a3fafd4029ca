/**
 * The query pipeline: decode → (CHAOS | zone lookup) → encode. Synchronous and
 * stateless apart from the snapshot it reads at the start of each query, so a
 * reload swapping the snapshot never affects a query half-way through. It never
 * throws: an unexpected exception is counted and answered SERVFAIL.
 */
import { clientSubnetOption, decodeQuery, encodeResponse, nsidOption, RCODE, RRCLASS, RRTYPE, toFqdn } from '../wire/index.js'
import type { EdnsOption, Query, QueryEdns, ResourceRecord, Response, ResponseEdns } from '../wire/index.js'
import { lookup } from '../zone/index.js'
import type { LookupResult, ZoneSet } from '../zone/index.js'
import { bump } from '../telemetry/index.js'
import type { QueryCounters } from '../telemetry/index.js'
import type { SteeringView } from '../steering/index.js'
import type { ChaosRecords } from './chaos.js'
import { answerSteered, keyForQuery } from './steered-answer.js'

export type Transport = 'udp' | 'tcp'

/** Everything the handler reads; `zones()` returns the current snapshot. */
export interface QueryHandlerDeps {
  readonly zones: () => ZoneSet
  /** The steering snapshot; absent when nothing is steered. */
  readonly steering?: () => SteeringView
  /** Clock for map staleness (injected so tests control it). */
  readonly nowMs?: () => number
  readonly chaos: ChaosRecords
  /** NSID payload (RFC 5001), undefined to never send one. */
  readonly nsid: Uint8Array | undefined
  /** Largest UDP response we send whatever the client advertises (RFC 6891 section 6.2.5; 1232 per DNS flag day 2020). */
  readonly maxUdpResponseBytes: number
  readonly counters: QueryCounters
  /** Called once per message when query logging is on; absent (the default) costs nothing per query. */
  readonly queryLog?: (entry: QueryLogEntry) => void
  /** Called with an exception the handler caught (a bug: the client got SERVFAIL). */
  readonly onInternalError?: (err: unknown) => void
}

/** One query log line: what was asked, by whom, and what was answered. */
export interface QueryLogEntry {
  readonly client: string
  readonly transport: Transport
  /** Presentation name with trailing dot; absent when the question could not be read. */
  readonly qname?: string
  readonly qtype?: number
  readonly qclass?: number
  /** "ADDRESS/SOURCE" of the EDNS Client Subnet, when present. */
  readonly ecs?: string
  /** Response rcode, or undefined when the message was dropped. */
  readonly rcode?: number
  readonly responseBytes?: number
  /** Why there was no usable question: a decode reason (drop or error). */
  readonly reason?: string
}

/** Answers one message from `client` (its address); undefined means send nothing. Never throws. */
export type QueryHandler = (message: Uint8Array, transport: Transport, client: string) => Uint8Array | undefined

/** The UDP size we advertise in our OPT record. */
const ADVERTISED_UDP_BYTES = 1232
/** Classic DNS limit without EDNS (RFC 1035 section 4.2.1). */
const PLAIN_UDP_BYTES = 512
const TCP_MAX_BYTES = 65535

const EMPTY: LookupResult = {
  rcode: RCODE.NOERROR,
  authoritative: true,
  answer: [],
  authority: [],
  additional: [],
  requiredAdditional: 0,
}

/** Builds the handler. Pure composition; reads config once here, not per query. */
export function createQueryHandler(deps: QueryHandlerDeps): QueryHandler {
  return (message, transport, client) => {
    try {
      return handle(deps, message, transport, client)
    } catch (err) {
      deps.counters.internalErrors++
      deps.onInternalError?.(err)
      const reply = servfail(message)
      // Keep received = answered + dropped true even after a bug.
      if (reply) bump(deps.counters.responsesByRcode, RCODE.SERVFAIL)
      else bump(deps.counters.droppedByReason, 'internal-error')
      return reply
    }
  }
}

function handle(deps: QueryHandlerDeps, message: Uint8Array, transport: Transport, client: string): Uint8Array | undefined {
  deps.counters.received[transport]++
  const decoded = decodeQuery(message)
  if (decoded.kind === 'drop') {
    bump(deps.counters.droppedByReason, decoded.reason)
    deps.queryLog?.({ client, transport, reason: decoded.reason })
    return undefined
  }
  if (decoded.kind === 'error') {
    const bytes = send(deps, {
      id: decoded.id,
      opcode: decoded.opcode,
      rcode: decoded.rcode,
      authoritative: false,
      recursionDesired: decoded.recursionDesired,
      checkingDisabled: decoded.checkingDisabled,
      questionBytes: decoded.questionBytes,
      answer: [],
      authority: [],
      additional: [],
      requiredAdditional: 0,
      edns: decoded.edns ? responseEdns(deps, decoded.edns, []) : undefined,
      maxBytes: maxResponseBytes(deps, decoded.edns, transport),
    })
    deps.queryLog?.({ client, transport, rcode: decoded.rcode, responseBytes: bytes.length, reason: decoded.reason })
    return bytes
  }

  const query = decoded.query
  const { result, scopePrefixLen } = answer(deps, query, client)
  const options: EdnsOption[] = []
  // ECS is echoed whenever the query carried it (RFC 7871 section 7.2.1). Static
  // data, negative answers and source /0 get scope 0; steered answers their decision's.
  const ecs = query.edns?.clientSubnet
  if (ecs) options.push(clientSubnetOption(ecs, ecs.sourcePrefixLen === 0 ? 0 : scopePrefixLen))
  const bytes = send(deps, {
    id: query.id,
    opcode: query.opcode,
    rcode: result.rcode,
    authoritative: result.authoritative,
    recursionDesired: query.recursionDesired,
    checkingDisabled: query.checkingDisabled,
    questionBytes: query.questionBytes,
    answer: result.answer,
    authority: result.authority,
    additional: result.additional,
    requiredAdditional: result.requiredAdditional,
    edns: query.edns ? responseEdns(deps, query.edns, options) : undefined,
    maxBytes: maxResponseBytes(deps, query.edns, transport),
  })
  if (deps.queryLog) deps.queryLog(logEntry(query, client, transport, result.rcode, bytes.length))
  return bytes
}

function logEntry(query: Query, client: string, transport: Transport, rcode: number, responseBytes: number): QueryLogEntry {
  const ecs = query.edns?.clientSubnet
  return {
    client,
    transport,
    qname: toFqdn(query.qname),
    qtype: query.qtype,
    qclass: query.qclass,
    ...(ecs ? { ecs: `${formatAddress(ecs.address)}/${ecs.sourcePrefixLen}` } : {}),
    rcode,
    responseBytes,
  }
}

/** Dotted IPv4 or full-form IPv6 (log readability over brevity). */
function formatAddress(address: Uint8Array): string {
  if (address.length === 4) return address.join('.')
  const groups: string[] = []
  for (let i = 0; i < address.length; i += 2) groups.push((((address[i] as number) << 8) | (address[i + 1] as number)).toString(16))
  return groups.join(':')
}

function answer(deps: QueryHandlerDeps, query: Query, client: string): { result: LookupResult; scopePrefixLen: number } {
  if (query.qtype === RRTYPE.AXFR || query.qtype === RRTYPE.IXFR) return { result: refused(), scopePrefixLen: 0 }
  if (query.qclass === RRCLASS.CH) return { result: chaos(deps.chaos, query), scopePrefixLen: 0 }
  if (query.qclass !== RRCLASS.IN) return { result: refused(), scopePrefixLen: 0 }
  const zones = deps.zones()
  const view = deps.steering?.()
  const service = view?.setup.services.get(query.qname)
  if (view && service) {
    const key = keyForQuery(query.edns?.clientSubnet, client)
    if (key) {
      const steered = answerSteered(service, query.qname, query.qtype, key, view, zones, deps.nowMs?.() ?? Date.now())
      if (!steered.useStatic) return { result: steered.result, scopePrefixLen: steered.scopePrefixLen }
    }
  }
  return { result: lookup(zones, query.qname, query.qtype, view?.setup.services), scopePrefixLen: 0 }
}

function chaos(records: ChaosRecords, query: Query): LookupResult {
  const rr = records.get(query.qname)
  if (!rr) return refused()
  const matches = query.qtype === RRTYPE.TXT || query.qtype === RRTYPE.ANY
  return { ...EMPTY, answer: matches ? [rr as ResourceRecord] : [] }
}

function refused(): LookupResult {
  return { ...EMPTY, rcode: RCODE.REFUSED, authoritative: false }
}

function responseEdns(deps: QueryHandlerDeps, edns: QueryEdns, options: EdnsOption[]): ResponseEdns {
  if (edns.nsidRequested && deps.nsid) options.push(nsidOption(deps.nsid))
  // DO is copied back (RFC 3225 section 3); we hold no signatures, so it changes nothing else.
  return { udpPayloadBytes: ADVERTISED_UDP_BYTES, dnssecOk: edns.dnssecOk, options }
}

/** RFC 6891 section 6.2.5: below 512 is treated as 512; above our cap is capped. */
function maxResponseBytes(deps: QueryHandlerDeps, edns: QueryEdns | undefined, transport: Transport): number {
  if (transport === 'tcp') return TCP_MAX_BYTES
  if (!edns) return PLAIN_UDP_BYTES
  return Math.max(PLAIN_UDP_BYTES, Math.min(edns.udpPayloadBytes, deps.maxUdpResponseBytes))
}

function send(deps: QueryHandlerDeps, response: Response): Uint8Array {
  const bytes = encodeResponse(response)
  bump(deps.counters.responsesByRcode, response.rcode)
  // TC is bit 1 of the third header byte (RFC 1035 section 4.1.1).
  if (bytes.length > 2 && ((bytes[2] as number) & 0x02) !== 0) deps.counters.truncated++
  return bytes
}

/** Last resort after a bug: SERVFAIL echoing only the ID, if there is one. */
function servfail(message: Uint8Array): Uint8Array | undefined {
  if (message.length < 12) return undefined
  const out = new Uint8Array(12)
  out[0] = message[0] as number
  out[1] = message[1] as number
  out[2] = 0x80
  out[3] = RCODE.SERVFAIL
  return out
}
