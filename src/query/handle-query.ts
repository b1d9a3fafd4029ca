/**
 * The query pipeline: decode → (CHAOS | zone lookup) → encode. Synchronous and
 * stateless apart from the snapshot it reads at the start of each query, so a
 * reload swapping the snapshot never affects a query half-way through. It never
 * throws: an unexpected exception is counted and answered SERVFAIL.
 */
import { clientSubnetOption, decodeQuery, EDNS_OPTION, encodeResponse, nsidOption, RCODE, RRCLASS, RRTYPE, toFqdn } from '../wire/index.js'
import type { EdnsOption, Query, QueryEdns, ResourceRecord, Response, ResponseEdns } from '../wire/index.js'
import { lookup } from '../zone/index.js'
import type { LookupResult, ZoneSet } from '../zone/index.js'
import { bump, observeHandling } from '../telemetry/index.js'
import type { QueryCounters } from '../telemetry/index.js'
import { checkServerCookie, makeServerCookie, RRL_ACTION, RRL_CATEGORY } from '../guard/index.js'
import type { AddressAcl, Rrl } from '../guard/index.js'
import { parseAddress } from '../steering/index.js'
import type { SteeringView } from '../steering/index.js'
import type { ChaosRecords } from './chaos.js'
import { answerDebugName } from './debug-names.js'
import type { DebugNamesDeps } from './debug-names.js'
import type { RecentDecisions } from './recent-decisions.js'
import { answerSteered, keyForQuery } from './steered-answer.js'
import { AnswerCache, patchAnswer } from './answer-cache.js'
import { createReuseClock } from './steered-reuse.js'
import type { AnswerFacts, CachedAnswer } from './answer-cache.js'

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
  /** Share of answered queries logged (0..1, default 1); drops and errors are always logged. */
  readonly queryLogSampleRate?: number
  /** Called with an exception the handler caught (a bug: the client got SERVFAIL). */
  readonly onInternalError?: (err: unknown) => void
  /** DDoS defences; absent means none (tests of other stages). */
  readonly guard?: GuardDeps
  /** whoami.<zone> and _steer.<name>; absent: no debug names. */
  readonly debugNames?: DebugNamesDeps
  /** Where steered decisions are recorded for GET /v1/decisions; absent: not recorded. */
  readonly recentDecisions?: RecentDecisions
  /** Encoded answers reused for repeated queries (answer-cache.ts); a fresh one when absent, none with false. */
  readonly answerCache?: AnswerCache | false
}

/** The guard stage's state, built from config once. */
export interface GuardDeps {
  /** RFC 9018 secrets when cookies are enabled. */
  readonly cookieSecrets: { readonly current: Uint8Array; readonly previous: Uint8Array | undefined } | undefined
  /** BADCOOKIE for an invalid server cookie instead of treating the query as client-cookie-only. */
  readonly requireCookie: boolean
  readonly rrl: Rrl | undefined
  /** UDP answers to clients without a valid server cookie are truncated above this. */
  readonly noCookieMaxUdpBytes: number
  readonly chaosAcl: AddressAcl
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
  /** For steered names: the rule that decided and the targets answered. */
  readonly rule?: string
  readonly targets?: readonly string[]
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
  const cache = deps.answerCache === false ? undefined : (deps.answerCache ?? new AnswerCache())
  return (message, transport, client) => {
    const startMs = performance.now()
    try {
      const probe = cache?.keyOf(message, transport)
      let reply: Uint8Array | undefined | typeof MISS = MISS
      if (cache && probe) reply = fromCache(deps, cache, probe.key, message, transport, client)
      if (reply === MISS) reply = handle(deps, message, transport, client, cache && probe ? { cache, key: probe.key, nameEnd: probe.nameEnd } : undefined)
      observeHandling(deps.counters, (performance.now() - startMs) / 1000)
      return reply
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

/** Until when a steered answer may be reused (memoized per steering snapshot; any handler may share it). */
const reuseUntil = createReuseClock()

/** fromCache found nothing usable: the pipeline answers. */
const MISS = Symbol('miss')

/** Where the pipeline may store its answer for reuse. */
interface CacheSlot {
  readonly cache: AnswerCache
  readonly key: string
  readonly nameEnd: number
}

/**
 * The fast path: a stored answer still valid for the current snapshots, with
 * the same counters, RRL accounting, decision record and query log as the
 * pipeline would produce. An RRL slip runs the pipeline with that verdict
 * (it builds the truncated answer) without charging the account twice.
 */
function fromCache(deps: QueryHandlerDeps, cache: AnswerCache, key: string, message: Uint8Array, transport: Transport, client: string): Uint8Array | undefined | typeof MISS {
  const entry = cache.get(key, client)
  const nowMs = deps.nowMs?.() ?? Date.now()
  if (entry === undefined || entry.zones !== deps.zones() || nowMs >= entry.expiresAtMs || (entry.view !== undefined && entry.view !== deps.steering?.())) {
    deps.counters.answerCache.misses++
    return MISS
  }
  const counters = deps.counters
  const guard = deps.guard
  const action = guard?.rrl && transport === 'udp' ? rateLimit(guard, transport, false, parseAddress(client), entry.rrlCategory, entry.rrlName, nowMs) : RRL_ACTION.SEND
  if (action === RRL_ACTION.SLIP) {
    deps.counters.answerCache.misses++
    return handle(deps, message, transport, client, undefined, action)
  }
  counters.answerCache.hits++
  counters.received[transport]++
  bump(counters.queriesByType, entry.qtype)
  if (entry.rule !== undefined) bump(counters.decisionsByRule, entry.rule)
  const decision = entry.decision
  if (decision) deps.recentDecisions?.record(nowMs, decision.qname, entry.qtype, decision.key, entry.rule ?? '', decision.targets, decision.scopePrefixLen, decision.ttlSec)
  if (action === RRL_ACTION.DROP) return dropped(deps, client, transport, 'rrl')
  if (entry.ecsScope !== undefined) {
    counters.ecsQueries++
    counters.scopeCounts[entry.ecsScope] = (counters.scopeCounts[entry.ecsScope] as number) + 1
  }
  bump(counters.responsesByRcode, entry.rcode)
  if (entry.truncated) counters.truncated++
  if (deps.queryLog && entry.log && (deps.queryLogSampleRate === undefined || deps.queryLogSampleRate >= 1 || Math.random() < deps.queryLogSampleRate)) {
    deps.queryLog({ ...entry.log, client, transport })
  }
  return patchAnswer(entry, message)
}

/** The pipeline. `slot`: where to store a reusable answer; `presetAction`: the RRL verdict the fast path already took. */
function handle(deps: QueryHandlerDeps, message: Uint8Array, transport: Transport, client: string, slot?: CacheSlot, presetAction?: number): Uint8Array | undefined {
  deps.counters.received[transport]++
  const decoded = decodeQuery(message)
  if (decoded.kind === 'drop') {
    bump(deps.counters.droppedByReason, decoded.reason)
    deps.queryLog?.({ client, transport, reason: decoded.reason })
    return undefined
  }
  const guard = deps.guard
  const address = guard ? parseAddress(client) : undefined
  const nowMs = deps.nowMs?.() ?? Date.now()
  if (decoded.kind === 'error') {
    // RFC 7873 section 5.4: a cookie-only query (QDCOUNT 0) is answered NOERROR with a server cookie.
    const cookieOnly = decoded.reason === 'qdcount-zero' && decoded.edns?.cookie && guard?.cookieSecrets && address
    const cookie = cookieOnly ? cookieOption(guard, decoded.edns?.cookie as Uint8Array, address, nowMs) : undefined
    const rcode = cookie ? RCODE.NOERROR : decoded.rcode
    const action = rateLimit(guard, transport, false, address, RRL_CATEGORY.ERROR, '', nowMs)
    if (action === RRL_ACTION.DROP) return dropped(deps, client, transport, 'rrl')
    const bytes = send(deps, {
      id: decoded.id,
      opcode: decoded.opcode,
      rcode,
      authoritative: false,
      recursionDesired: decoded.recursionDesired,
      checkingDisabled: decoded.checkingDisabled,
      questionBytes: decoded.questionBytes,
      answer: [],
      authority: [],
      additional: [],
      requiredAdditional: 0,
      edns: decoded.edns ? responseEdns(deps, decoded.edns, cookie ? [cookie] : []) : undefined,
      maxBytes: maxResponseBytes(deps, decoded.edns, transport),
      truncate: action === RRL_ACTION.SLIP,
    })
    deps.queryLog?.({ client, transport, rcode, responseBytes: bytes.length, reason: decoded.reason })
    return bytes
  }

  const query = decoded.query
  // RFC 7873 section 5.2: a valid server cookie proves the source address is real.
  let validated = false
  let cookie: EdnsOption | undefined
  const received = query.edns?.cookie
  if (received && guard?.cookieSecrets && address) {
    validated = received.length > 8 && checkServerCookie(received, address, guard.cookieSecrets, Math.floor(nowMs / 1000)) === 'valid'
    cookie = cookieOption(guard, received, address, nowMs)
  }
  // BIND's require-server-cookie (RFC 7873 section 5.2.3, choice 2): a cookie-aware UDP client
  // without a valid server cookie gets BADCOOKIE and a fresh cookie; clients that send no
  // cookie, and TCP, are answered as usual.
  const badCookie = transport === 'udp' && cookie !== undefined && !validated && guard?.requireCookie === true
  const answered: Answered = badCookie ? { result: badCookieResult(), scopePrefixLen: 0 } : answer(deps, query, client, address)
  const { result, scopePrefixLen } = answered
  const counters = deps.counters
  bump(counters.queriesByType, query.qtype)
  if (answered.rule !== undefined) bump(counters.decisionsByRule, answered.rule)
  // TCP and cookie-validated clients cannot be spoofed: never rate limited, never capped.
  const category = rrlCategory(result)
  const accountName = rrlName(result, query.qname)
  const action = presetAction ?? rateLimit(guard, transport, validated, address, category, accountName, nowMs)
  if (action === RRL_ACTION.DROP) return dropped(deps, client, transport, 'rrl')
  const options: EdnsOption[] = []
  // ECS is echoed whenever the query carried it (RFC 7871 section 7.2.1). Static
  // data, negative answers and source /0 get scope 0; steered answers their decision's.
  const ecs = query.edns?.clientSubnet
  if (ecs) {
    const scope = ecs.sourcePrefixLen === 0 ? 0 : scopePrefixLen
    options.push(clientSubnetOption(ecs, scope))
    counters.ecsQueries++
    counters.scopeCounts[scope] = (counters.scopeCounts[scope] as number) + 1
  }
  if (cookie) options.push(cookie)
  const maxBytes = maxResponseBytes(deps, query.edns, transport)
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
    // Without a valid cookie a UDP answer may come from a spoofed query: cap its size (amplification).
    maxBytes: transport === 'udp' && guard && !validated ? Math.min(maxBytes, Math.max(PLAIN_UDP_BYTES, guard.noCookieMaxUdpBytes)) : maxBytes,
    truncate: action === RRL_ACTION.SLIP,
  })
  // Sampled before the entry is built: at 1% the other 99% cost one random number.
  if (deps.queryLog && (deps.queryLogSampleRate === undefined || deps.queryLogSampleRate >= 1 || Math.random() < deps.queryLogSampleRate)) {
    deps.queryLog({ client, transport, ...logFields(deps, query, result.rcode, bytes.length, answered) })
  }
  // Only what every client sending these bytes would get: no cookie, no RRL slip, no per-client names.
  const reuse = answered.reuse
  if (slot && reuse && cookie === undefined && !badCookie && action === RRL_ACTION.SEND && AnswerCache.fits(bytes.length)) {
    const facts: AnswerFacts = {
      nameEnd: slot.nameEnd,
      zones: reuse.zones,
      view: reuse.view,
      expiresAtMs: reuse.untilMs,
      qtype: query.qtype,
      rcode: result.rcode,
      truncated: bytes.length > 2 && ((bytes[2] as number) & 0x02) !== 0,
      ecsScope: ecs ? (ecs.sourcePrefixLen === 0 ? 0 : scopePrefixLen) : undefined,
      rrlCategory: category,
      rrlName: accountName,
      rule: answered.rule,
      decision: reuse.decision,
      log: deps.queryLog ? logFields(deps, query, result.rcode, bytes.length, answered) : undefined,
    }
    // The bytes are copied into the cache's arena: the encoder's buffer (a slice of an 8 KiB pool block) is not kept.
    slot.cache.set(slot.key, client, facts, bytes, reuse.perClient)
  }
  return bytes
}

/** An answer with what decided it: the steering rule and targets, when a steered name answered. */
interface Answered {
  readonly result: LookupResult
  readonly scopePrefixLen: number
  readonly rule?: string | undefined
  readonly targets?: readonly number[] | undefined
  /** Present when the answer may be reused for the same query bytes (answer-cache.ts): what it depends on. */
  readonly reuse?: Reuse
}

interface Reuse {
  readonly zones: ZoneSet
  /** The steering snapshot a steered answer depends on. */
  readonly view: SteeringView | undefined
  /** Reusable until (ms): Infinity for static data. */
  readonly untilMs: number
  /** Steered by the resolver's own address: reusable for that address only. */
  readonly perClient: boolean
  readonly decision?: CachedAnswer['decision']
}

/** A query log line but for who asked and how (the answer cache keeps these for its hits). */
function logFields(deps: QueryHandlerDeps, query: Query, rcode: number, responseBytes: number, answered: Answered): Omit<QueryLogEntry, 'client' | 'transport'> {
  const ecs = query.edns?.clientSubnet
  const setup = answered.targets ? deps.steering?.().setup : undefined
  return {
    ...(answered.rule !== undefined ? { rule: answered.rule } : {}),
    ...(setup && answered.targets ? { targets: answered.targets.map((i) => setup.targets[i]?.id ?? String(i)) } : {}),
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

function answer(deps: QueryHandlerDeps, query: Query, client: string, address: Uint8Array | undefined): Answered {
  if (query.qtype === RRTYPE.AXFR || query.qtype === RRTYPE.IXFR) return { result: refused(), scopePrefixLen: 0, reuse: { zones: deps.zones(), view: undefined, untilMs: Infinity, perClient: false } }
  if (query.qclass === RRCLASS.CH) {
    const allowed = !deps.guard || (address !== undefined && deps.guard.chaosAcl.allows(address))
    return { result: allowed ? chaos(deps.chaos, query) : refused(), scopePrefixLen: 0 }
  }
  if (query.qclass !== RRCLASS.IN) return { result: refused(), scopePrefixLen: 0 }
  const zones = deps.zones()
  const view = deps.steering?.()
  if (deps.debugNames) {
    const debug = answerDebugName(query, client, address, zones, view, deps.nowMs?.() ?? Date.now(), deps.debugNames)
    if (debug) return debug
  }
  const service = view?.setup.services.get(query.qname)
  if (view && service) {
    const key = keyForQuery(query.edns?.clientSubnet, client)
    if (!key) return { result: lookup(zones, query.qname, query.qtype, view.setup.services), scopePrefixLen: 0 }
    const nowMs = deps.nowMs?.() ?? Date.now()
    const steered = answerSteered(service, query.qname, query.qtype, key, view, zones, nowMs)
    const decided = steered.rule !== undefined && steered.targets !== undefined
    if (decided) deps.recentDecisions?.record(nowMs, query.qname, query.qtype, key, steered.rule as string, steered.targets as readonly number[], steered.scopePrefixLen, steered.ttlSec ?? 0)
    const reuse: Reuse = {
      zones,
      view,
      untilMs: reuseUntil(view, nowMs),
      perClient: key.source === 'resolver',
      ...(decided ? { decision: { qname: query.qname, key, targets: steered.targets as readonly number[], scopePrefixLen: steered.scopePrefixLen, ttlSec: steered.ttlSec ?? 0 } } : {}),
    }
    if (!steered.useStatic) return { ...steered, reuse }
    return { result: lookup(zones, query.qname, query.qtype, view.setup.services), scopePrefixLen: 0, reuse }
  }
  return { result: lookup(zones, query.qname, query.qtype, view?.setup.services), scopePrefixLen: 0, reuse: { zones, view: undefined, untilMs: Infinity, perClient: false } }
}

function chaos(records: ChaosRecords, query: Query): LookupResult {
  const rr = records.get(query.qname)
  if (!rr) return refused()
  const matches = query.qtype === RRTYPE.TXT || query.qtype === RRTYPE.ANY
  return { ...EMPTY, answer: matches ? [rr as ResourceRecord] : [] }
}

function dropped(deps: QueryHandlerDeps, client: string, transport: Transport, reason: string): undefined {
  bump(deps.counters.droppedByReason, reason)
  deps.queryLog?.({ client, transport, reason })
  return undefined
}

/** COOKIE option for the response: the client cookie and a fresh RFC 9018 server cookie. */
function cookieOption(guard: GuardDeps, received: Uint8Array, address: Uint8Array, nowMs: number): EdnsOption {
  const secrets = guard.cookieSecrets as NonNullable<GuardDeps['cookieSecrets']>
  const clientCookie = received.subarray(0, 8)
  const server = makeServerCookie(clientCookie, address, secrets.current, Math.floor(nowMs / 1000))
  const data = new Uint8Array(8 + server.length)
  data.set(clientCookie, 0)
  data.set(server, 8)
  return { code: EDNS_OPTION.COOKIE, data }
}

/** RFC 7873 section 5.2.3 with cookies required: BADCOOKIE, no answer, a fresh cookie to retry with. */
function badCookieResult(): LookupResult {
  return { ...EMPTY, rcode: RCODE.BADCOOKIE, authoritative: false }
}

/** The RRL decision for a UDP response; SEND for TCP, validated clients and when RRL is off. */
function rateLimit(
  guard: GuardDeps | undefined,
  transport: Transport,
  validated: boolean,
  address: Uint8Array | undefined,
  category: number,
  name: string,
  nowMs: number,
): number {
  if (!guard?.rrl || transport !== 'udp' || validated || !address) return RRL_ACTION.SEND
  return guard.rrl.check(address, category as (typeof RRL_CATEGORY)[keyof typeof RRL_CATEGORY], name, nowMs)
}

/** BIND's RRL categories: answers (incl. NODATA), NXDOMAIN, referrals, errors. */
function rrlCategory(result: LookupResult): number {
  if (result.rcode === RCODE.NXDOMAIN) return RRL_CATEGORY.NXDOMAIN
  if (result.rcode !== RCODE.NOERROR) return RRL_CATEGORY.ERROR
  if (!result.authoritative) return RRL_CATEGORY.REFERRAL
  return RRL_CATEGORY.ANSWER
}

/**
 * The name an RRL account is kept for: the question for answers; the zone (the
 * SOA or NS owner) for NXDOMAIN and referrals, so a random-subdomain flood
 * shares one account however many names it invents.
 */
function rrlName(result: LookupResult, qname: string): string {
  if (result.rcode === RCODE.NXDOMAIN || (result.rcode === RCODE.NOERROR && !result.authoritative)) return result.authority[0]?.name ?? ''
  return result.rcode === RCODE.NOERROR ? qname : ''
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
