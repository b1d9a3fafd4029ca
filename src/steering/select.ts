/**
 * The steering decision (DESIGN.md, "A steering decision"): one pure function
 * used by DNS answers, the explain CLI and (later) the API. Same inputs, same
 * decision: the clock is an argument, the load-sharing choice is a rendezvous
 * hash of the client prefix. Knows nothing of DNS messages: it returns target
 * indices, a scope and a TTL, and optionally the trace that explains them.
 *
 * Overload (issue 5): when a target chosen by the map, geo or default rule
 * reports load above the watermark, a stable share of client prefixes is
 * shed to other serving candidates by spare capacity (shedOverloaded()).
 * Pins are never shed: an operator's pin wins over load, as it wins over
 * the map. Degraded targets (passive health) get no new clients, like
 * drained ones.
 */
import type { ClientKey } from './client-key.js'
import { formatPrefix } from './client-key.js'
import { createPinMatch } from './overrides.js'
import type { OverrideSet, PinMatch, PinOverride } from './overrides.js'
import type { AdminState, HealthStatus, TargetStates } from './target-states.js'
import type { Service, SteeringSetup, Target } from './targets.js'

/** The deepest map entry covering a key, and the deepest entry inside its source prefix. */
export interface MapMatch {
  entry: number
  matchedLen: number
  deepestBelowLen: number
}

/** What select() needs of the latency map (steering/latency-map.ts implements it). */
export interface MapReader {
  readonly version: number
  readonly generatedAtMs: number | undefined
  lookup(key: ClientKey, out: MapMatch): void
  candidateCount(entry: number): number
  candidateTarget(entry: number, i: number): number
  candidateScoreMs(entry: number, i: number): number
  candidateSamples(entry: number, i: number): number
  entryPrefix(entry: number): string
  /** Undefined when the entry carries no time of its own (the map's generatedAtMs applies). */
  entryUpdatedAtMs(entry: number): number | undefined
}

/** What select() needs of the geo database (geo/ implements it). */
export interface GeoLocator {
  lookup(address: Uint8Array):
    | {
        readonly latitude: number
        readonly longitude: number
        readonly networkPrefixLen: number
        readonly countryCode: string | undefined
        readonly continentCode: string | undefined
        readonly city: string | undefined
      }
    | undefined
}

/** Everything one decision reads: immutable snapshots, swapped by reference (steering-state.ts). */
export interface SteeringView {
  readonly setup: SteeringSetup
  readonly map: MapReader
  readonly geo: GeoLocator | undefined
  /**
   * An extra serving predicate, ANDed with `targetStates.serving()`: health
   * from outside the TargetStates snapshot (tests; () => true otherwise).
   */
  readonly isServing: (target: number) => boolean
  /** Great-circle distance in km (geo/ provides it). */
  readonly distanceKm: (lat1: number, lon1: number, lat2: number, lon2: number) => number
  /** Operator pins and biases (decision step 2); none when absent. */
  readonly overrides?: OverrideSet
  /** Admin state, load-sharing weights, health and load per target; every target up at its capacity, unloaded, when absent. */
  readonly targetStates?: TargetStates
}

/**
 * override: an operator's pin decided. map: the latency map decided. geo:
 * nearest by distance. default: the pool by weight. all-down: no serving
 * target, the service's policy answered. no-address: no pool target has an
 * address of the asked family (NODATA).
 */
export type DecisionRule = 'override' | 'map' | 'geo' | 'default' | 'all-down' | 'no-address'

export interface CandidateTrace {
  readonly id: string
  /** Admin up, health not down, not degraded, and the view's isServing. */
  readonly serving: boolean
  readonly admin: AdminState
  readonly health: HealthStatus
  /** Load-sharing weight in force (the admin weight, else capacity). */
  readonly weight: number
  readonly degraded?: boolean
  /** Reported load, % of capacity (only when reported). */
  readonly loadPct?: number
  /** Load above the overload watermark (only when true). */
  readonly overloaded?: boolean
  /** The map's score, before bias. */
  readonly scoreMs?: number
  /** Sum of active bias overrides on this target (only when not 0); ranking used max(0, scoreMs + biasMs). */
  readonly biasMs?: number
  /** Ids of those bias overrides. */
  readonly biasOverrides?: readonly string[]
  readonly samples?: number
  readonly distanceKm?: number
}

/** The pin that matched the key (the one that decided, or else the most specific one considered). */
export interface OverrideTrace {
  readonly id: string
  readonly reason: string
  readonly prefix: string
  readonly expiresAtMs: number | undefined
  /** True when the pin chose the answer. */
  readonly applied: boolean
  readonly note: string
  /** The pinned targets usable by this service and family, in the pin's order. */
  readonly targets: readonly CandidateTrace[]
}

/**
 * One chosen target over its overload watermark and what shedding did for
 * this client. `from`, `fraction` and `loadPct` describe the target; the
 * rest, this client's prefix.
 */
export interface ShedTrace {
  /** The overloaded target. */
  readonly from: string
  /** Share of its clients sent elsewhere: 1 − watermark / load (0 when nothing has spare capacity). */
  readonly fraction: number
  /** Its reported load, % of capacity. */
  readonly loadPct: number
  readonly watermarkPct: number
  /** This client's prefix falls in the shed share: `to` answers instead of `from`. */
  readonly applied: boolean
  readonly to?: string
  /** Candidates that may take shed clients (serving, not in the answer, load below the watermark), in rank order. */
  readonly spare: readonly { readonly id: string; readonly spareCapacity: number }[]
  readonly note: string
}

export interface DecisionTrace {
  readonly key: string
  readonly keySource: ClientKey['source']
  readonly family: 4 | 6
  readonly rule: DecisionRule
  readonly override: OverrideTrace | undefined
  /** The map entry that matched (stale ones included, marked by `mapStale`). */
  readonly matched: string | undefined
  readonly mapStale: boolean
  readonly mapVersion: number
  readonly mapAgeSec: number | undefined
  readonly overridesVersion: number | undefined
  readonly targetStatesVersion: number | undefined
  readonly geo: { country?: string; continent?: string; city?: string; network: number } | undefined
  /** Map candidates in ranked order (after bias), geo candidates by distance, or the pool. */
  readonly candidates: readonly CandidateTrace[]
  readonly chosen: readonly string[]
  /** The first chosen target that was overloaded (map, geo and default decisions only). */
  readonly shed?: ShedTrace
  /** Further overloaded chosen targets when the service answers more than one. */
  readonly shedMore?: readonly ShedTrace[]
  readonly ttlSec: number
  readonly ttlReason: string
  readonly scopePrefixLen: number
  readonly scopeReason: string
}

export interface Decision {
  /** Chosen targets, best first; empty only for no-address and static all-down. */
  readonly targets: readonly number[]
  readonly rule: DecisionRule
  /** All targets down and the policy says: answer the zone's static records. */
  readonly useStatic: boolean
  /** ECS scope to return when the key came from ECS (RFC 7871 section 7.2.1). */
  readonly scopePrefixLen: number
  readonly ttlSec: number
  readonly trace: DecisionTrace | undefined
}

/**
 * Scratch for one decision's map candidates, in ranked order: parallel typed
 * arrays reused by every call (select() is synchronous and never re-entered),
 * so ranking allocates no object per candidate. Measured against select()
 * before overrides, in one process (1k-entry IPv4 map, 3 candidates, 8
 * targets, median of 10 runs): an object per candidate with filter/map/spread
 * took 1.9x its time; these arrays plus the in-place prefix hash take 0.6x.
 */
const scratch = {
  target: new Int32Array(16),
  /** Position among the map entry's candidates. */
  index: new Int32Array(16),
  scoreMs: new Float64Array(16),
  biasMs: new Float64Array(16),
  /** The score ranking uses: scoreMs plus active biases, never below 0. */
  rankMs: new Float64Array(16),
  serving: new Uint8Array(16),
  /** Rendezvous weight of a near-equal candidate; -1 once placed. */
  hrw: new Float64Array(16),
}

function growScratch(n: number): void {
  if (n <= scratch.target.length) return
  const size = Math.max(n, scratch.target.length * 2)
  scratch.target = new Int32Array(size)
  scratch.index = new Int32Array(size)
  scratch.scoreMs = new Float64Array(size)
  scratch.biasMs = new Float64Array(size)
  scratch.rankMs = new Float64Array(size)
  scratch.serving = new Uint8Array(size)
  scratch.hrw = new Float64Array(size)
}

const reusableMatch: MapMatch = { entry: -1, matchedLen: -1, deepestBelowLen: -1 }
const reusablePinMatch: PinMatch = createPinMatch()
/** Set by pickNear() next to its return value (no result object per decision). */
let lastHashed = false
let lastContenderMs = 0
/**
 * Set by shedOverloaded(), reset by every select(): the first chosen target
 * found overloaded (-1: none), whether the client hash decided a shed
 * (the scope must then be the hash prefix) and whether this client moved.
 */
let shedFrom = -1
let shedHashed = false
let shedApplied = false

/**
 * Decides which targets answer `service` for `key` and address family
 * `family`. Pure apart from reading `view`; `nowMs` decides map staleness,
 * override and admin-state expiry, and the "just changed" TTL window.
 * With `withTrace` it also returns the trace (allocates; DNS answers skip it).
 * Never throws.
 */
export function select(
  service: Service,
  key: ClientKey,
  family: 4 | 6,
  view: SteeringView,
  nowMs: number,
  withTrace = false,
): Decision {
  const { setup, map, overrides, targetStates: states } = view
  const targets = setup.targets
  const pool = family === 4 ? service.poolV4 : service.poolV6
  // Lengths follow the client key's family, not the answer's: an IPv6 client may ask for A records.
  const keyBits = key.family === 4 ? 32 : 128
  const hashLen = Math.min(key.prefixLen, key.family === 4 ? setup.ipv4Prefix : setup.ipv6Prefix)
  const prefixHash = hashPrefix(key, hashLen)
  const trace = withTrace ? new TraceBuilder(key, family, view, nowMs) : undefined
  const ctx: Context = { service, targets, states, nowMs }
  shedFrom = -1
  shedHashed = false
  shedApplied = false

  const match = withTrace ? { entry: -1, matchedLen: -1, deepestBelowLen: -1 } : reusableMatch
  map.lookup(key, match)
  const pinMatch = withTrace ? createPinMatch() : reusablePinMatch
  if (overrides) overrides.lookupPin(key, pinMatch)
  else {
    pinMatch.pin = -1
    pinMatch.deepestBelowLen = -1
  }
  // Entries (map or pins) strictly inside the source prefix that may answer differently (RFC 7871 section 7.2.1).
  const below = Math.max(match.deepestBelowLen, pinMatch.deepestBelowLen)
  const belowWhat = pinMatch.deepestBelowLen > match.deepestBelowLen ? 'pins' : 'map entries'

  // Step 7: a target that left the answer within the window makes the answer short-lived too.
  let unsettled: string | undefined
  // A pin that matched but has no serving target: its targets, and the prefix length that bounds the scope.
  let pinned: number[] | undefined
  let pinFloorLen = -1

  if (pool.length === 0) return finish('no-address', [], 0, 'no target in the pool has an address of this family', false)

  // Step 2: the most specific active pin with a usable target for this service and family.
  for (let p = pinMatch.pin; overrides && p >= 0; p = overrides.nextPin(p)) {
    if (!overrides.isPinActive(p, nowMs)) continue
    const usable = overrides.pinTargets(p).filter((t) => service.inPool[t] === 1 && hasFamily(targets[t] as Target, family))
    const len = overrides.pinPrefixLen(p)
    const record = overrides.pinRecord(p)
    if (usable.length === 0) {
      trace?.pin(record, false, "no pinned target is in this service's pool with an address of this family", [], true)
      continue
    }
    const chosen: number[] = []
    for (const t of usable) {
      if (chosen.length === service.answers) break
      if (isUp(view, states, t, nowMs)) chosen.push(t)
      else unsettled ??= recentChange(ctx, t)
    }
    const pinTrace = trace ? usable.map((t) => candidateTrace(ctx, t, isUp(view, states, t, nowMs), {})) : []
    if (chosen.length > 0) {
      trace?.pin(record, true, `most specific pin: /${len}`, pinTrace)
      const scope = below >= 0 ? below : len
      return finish('override', chosen, scope, below >= 0 ? `${belowWhat} below the source prefix reach /${below}` : `pin /${len}`, true)
    }
    // No pinned target serves: the normal decision answers, briefly (step 7), and within the pin's prefix.
    trace?.pin(record, false, 'no pinned target is serving: the normal decision answers', pinTrace)
    pinned = usable
    pinFloorLen = len
    unsettled ??= `pin ${record.id} has no serving target`
    break
  }

  // Step 3: the latency map, restricted to this service's pool and its serving targets, scores biased by overrides.
  let count = 0
  if (match.entry >= 0) {
    const stale = isStale(view, match.entry, nowMs)
    trace?.mapEntry(match.entry, stale)
    const n = map.candidateCount(match.entry)
    growScratch(n)
    const { target: cTarget, index: cIndex, scoreMs: cScore, biasMs: cBias, rankMs: cRank, serving: cServing } = scratch
    const biases = overrides?.hasBias === true ? overrides : undefined
    for (let i = 0; i < n; i++) {
      const target = map.candidateTarget(match.entry, i)
      // A target without an address of this family cannot answer: it is not a candidate.
      if (service.inPool[target] !== 1 || !hasFamily(targets[target] as Target, family)) continue
      const scoreMs = map.candidateScoreMs(match.entry, i)
      const biasMs = biases ? biases.biasMs(target, nowMs) : 0
      const rankMs = biasMs === 0 ? scoreMs : Math.max(0, scoreMs + biasMs)
      // Insertion by biased score; equal scores keep the map's order (more samples, then lower index).
      let at = count++
      for (; at > 0 && (cRank[at - 1] as number) > rankMs; at--) {
        cTarget[at] = cTarget[at - 1] as number
        cIndex[at] = cIndex[at - 1] as number
        cScore[at] = cScore[at - 1] as number
        cBias[at] = cBias[at - 1] as number
        cRank[at] = cRank[at - 1] as number
        cServing[at] = cServing[at - 1] as number
      }
      cTarget[at] = target
      cIndex[at] = i
      cScore[at] = scoreMs
      cBias[at] = biasMs
      cRank[at] = rankMs
      cServing[at] = isUp(view, states, target, nowMs) ? 1 : 0
    }
    if (trace) {
      for (let c = 0; c < count; c++) {
        const t = cTarget[c] as number
        const biasMs = cBias[c] as number
        const bias = biasMs !== 0 ? { biasMs, biasOverrides: overrides?.activeBiases(t, nowMs).map((b) => b.id) ?? [] } : {}
        trace.candidate(candidateTrace(ctx, t, cServing[c] === 1, { scoreMs: cScore[c] as number, samples: map.candidateSamples(match.entry, cIndex[c] as number), ...bias }))
      }
    }
    const chosen = stale ? undefined : pickNear(count, service.answers, setup.tolerancePct, targets, prefixHash, states, nowMs)
    if (chosen) {
      if (states?.anyOverloaded === true) shedOverloaded(ctx, chosen, scratch.target, count, scratch.serving, prefixHash, trace)
      // Only a target that would have been a contender changed this answer by leaving.
      for (let c = 0; c < count && unsettled === undefined; c++) {
        if (cServing[c] === 0 && (cRank[c] as number) <= lastContenderMs) unsettled = recentChange(ctx, cTarget[c] as number)
      }
      let scope = below >= 0 ? below : match.matchedLen
      let scopeReason = below >= 0 ? `${belowWhat} below the source prefix reach /${below}` : `map entry /${match.matchedLen}`
      if (lastHashed && hashLen > scope) {
        scope = hashLen
        scopeReason = `load shared by client /${hashLen}`
      }
      // Shed or kept is decided per client prefix: the answer holds for that prefix only.
      if (shedHashed && hashLen > scope) {
        scope = hashLen
        scopeReason = `overload shed by client /${hashLen}`
      }
      return finish('map', chosen, scope, scopeReason, true)
    }
    for (let c = 0; c < count && unsettled === undefined; c++) if (cServing[c] === 0) unsettled = recentChange(ctx, cTarget[c] as number)
  }

  const weightOf = states ? (t: number) => states.weight(t, nowMs) : undefined
  const serving: number[] = []
  for (const t of pool) {
    if (isUp(view, states, t, nowMs)) serving.push(t)
    else unsettled ??= recentChange(ctx, t)
  }
  // Step 4: geo fallback, nearest serving targets by great-circle distance.
  const location = view.geo?.lookup(key.address)
  const nearest = (among: readonly number[]) =>
    location
      ? among
          .map((t) => ({ t, km: view.distanceKm(location.latitude, location.longitude, (targets[t] as Target).latitude, (targets[t] as Target).longitude) }))
          .sort((a, b) => a.km - b.km || a.t - b.t)
      : []
  if (location && serving.length > 0) {
    trace?.geoLocation(location)
    const byDistance = nearest(serving)
    if (trace) for (const c of byDistance) trace.candidate(candidateTrace(ctx, c.t, true, { distanceKm: Math.round(c.km) }))
    const geoLen = Math.min(location.networkPrefixLen, keyBits)
    const scope = Math.max(geoLen, below)
    const reason = below > geoLen ? `${belowWhat} below the source prefix reach /${below}` : `geo network /${geoLen}`
    const chosen = byDistance.slice(0, service.answers).map((c) => c.t)
    if (states?.anyOverloaded === true) {
      const ranked = byDistance.map((c) => c.t)
      shedOverloaded(ctx, chosen, ranked, ranked.length, undefined, prefixHash, trace)
      if (shedHashed && hashLen > scope) return finish('geo', chosen, hashLen, `overload shed by client /${hashLen}`, true)
    }
    return finish('geo', chosen, scope, reason, true)
  }

  // Step 5: nothing known: the pool by weight.
  if (trace && match.entry < 0) for (const t of pool) trace.candidate(candidateTrace(ctx, t, isUp(view, states, t, nowMs), {}))
  if (serving.length > 0) {
    const ordered = rendezvousOrder(serving, targets, prefixHash, weightOf)
    const scope = Math.max(below, serving.length > 1 ? hashLen : 0)
    const chosen = ordered.slice(0, service.answers)
    if (states?.anyOverloaded === true) {
      shedOverloaded(ctx, chosen, ordered, ordered.length, undefined, prefixHash, trace)
      if (shedHashed && hashLen > scope) return finish('default', chosen, hashLen, `overload shed by client /${hashLen}`, false)
    }
    return finish('default', chosen, scope, serving.length > 1 ? `load shared by client /${hashLen}` : 'one target', false)
  }

  // Step 6: every target of the pool is down: the service's policy, never silence.
  if (service.allDown === 'static') return finish('all-down', [], 0, 'all down: static records', false, true)
  if (service.allDown === 'all') return finish('all-down', pool.slice(0, 16), 0, 'all down: every target', false)
  // "Best anyway": a draining or degraded target still works, so it beats a down one; a
  // draining one (healthy, taken out by the operator) beats a degraded one (clients report
  // failures); then the pin's order, the map's, distance, and the pool by weight.
  const alive = states ? pool.filter((t) => view.isServing(t) && states.alive(t, nowMs)) : []
  const working = states ? alive.filter((t) => !states.degraded(t)) : []
  const among = working.length > 0 ? working : alive.length > 0 ? alive : pool
  const inAmong = (t: number) => among.includes(t)
  let mapBest: number | undefined
  for (let c = 0; c < count && mapBest === undefined; c++) if (inAmong(scratch.target[c] as number)) mapBest = scratch.target[c]
  const best = pinned?.find(inAmong) ?? mapBest ?? nearest(among)[0]?.t ?? (rendezvousOrder(among, targets, prefixHash, weightOf)[0] as number)
  const allDownReason = working.length > 0 ? 'all down: best draining target' : alive.length > 0 ? 'all down: best degraded target' : 'all down: best anyway'
  return finish('all-down', [best], match.entry >= 0 ? match.matchedLen : 0, allDownReason, false)

  function finish(rule: DecisionRule, chosen: number[], scope: number, scopeReason: string, confident: boolean, useStatic = false): Decision {
    // Step 7: a confident decision may be cached long; anything else is re-asked soon.
    // Load moves within seconds: an answer shaped by an overloaded target is re-asked
    // soon whether this client was shed or kept, so a rising load sheds more clients
    // and a falling one takes them back within the minimum TTL, not the maximum.
    // (The overload reason is text for the trace only: no string per query during an overload.)
    const overloaded = shedFrom >= 0
    const why = !overloaded && confident ? (unsettledChosen(ctx, chosen) ?? unsettled) : undefined
    const ttlSec = confident && !overloaded && why === undefined ? service.ttlMaxSec : service.ttlMinSec
    // A pin whose targets are all down still bounds the answer to its prefix:
    // the rest of a wider map entry must not cache the fallback for the pinned network.
    if (pinFloorLen > scope && rule !== 'override' && rule !== 'no-address' && !useStatic && !(rule === 'all-down' && service.allDown === 'all')) {
      scope = pinFloorLen
      scopeReason = `pin /${pinFloorLen} (no pinned target serving)`
    }
    const scopePrefixLen = Math.min(Math.max(scope, 0), keyBits)
    return {
      targets: chosen,
      rule,
      useStatic,
      scopePrefixLen,
      ttlSec,
      trace: trace?.finish(
        rule,
        chosen.map((i) => (targets[i] as Target).id),
        ttlSec,
        overloaded ? `min: ${overloadReason(ctx, shedFrom)}` : why !== undefined ? `min: ${why}` : `${confident ? 'max' : 'min'}: ${rule} decision`,
        scopePrefixLen,
        scopeReason,
      ),
    }
  }
}

/** What the helpers of one decision share. */
interface Context {
  readonly service: Service
  readonly targets: readonly Target[]
  readonly states: TargetStates | undefined
  readonly nowMs: number
}

/** Admin up and health not down (TargetStates), and the view's own predicate. */
function isUp(view: SteeringView, states: TargetStates | undefined, t: number, nowMs: number): boolean {
  return view.isServing(t) && (states === undefined || states.serving(t, nowMs))
}

/** Why `t` makes an answer short-lived because it changed state within the window; undefined when settled. */
function recentChange(ctx: Context, t: number): string | undefined {
  if (!ctx.states) return undefined
  const changedAtMs = ctx.states.changedAtMs(t, ctx.nowMs)
  // The window is the service's maximum TTL: answers given before the change
  // live that long in resolver caches, so until they have expired the change
  // is still reaching clients; short TTLs until then let a revert (or the
  // next change) reach everyone within the minimum TTL.
  if (!(ctx.nowMs - changedAtMs < ctx.service.ttlMaxSec * 1000)) return undefined
  return `${(ctx.targets[t] as Target).id} changed state ${Math.max(0, Math.round((ctx.nowMs - changedAtMs) / 1000))}s ago`
}

/** Why the chosen targets make an answer short-lived: draining, degraded or just changed; undefined when settled. */
function unsettledChosen(ctx: Context, chosen: readonly number[]): string | undefined {
  const states = ctx.states
  if (!states) return undefined
  for (const t of chosen) {
    if (states.admin(t, ctx.nowMs) === 'drain') return `${(ctx.targets[t] as Target).id} is draining`
    if (states.degraded(t)) return `${(ctx.targets[t] as Target).id} is degraded`
    const changed = recentChange(ctx, t)
    if (changed !== undefined) return changed
  }
  return undefined
}

function candidateTrace(ctx: Context, t: number, serving: boolean, extra: Partial<CandidateTrace>): CandidateTrace {
  const { states, nowMs } = ctx
  const target = ctx.targets[t] as Target
  const degraded = states?.degraded(t) === true
  const load = states?.load(t)
  return {
    id: target.id,
    serving,
    admin: states?.admin(t, nowMs) ?? 'up',
    health: states?.health(t) ?? 'unknown',
    weight: states ? states.weight(t, nowMs) : target.capacity,
    ...(degraded ? { degraded } : {}),
    ...(load !== undefined ? { loadPct: percent(load) } : {}),
    ...(states?.overloaded(t) === true ? { overloaded: true } : {}),
    ...extra,
  }
}

/** A fraction of capacity as a percentage with one decimal. */
function percent(fraction: number): number {
  return Math.round(fraction * 1000) / 10
}

function overloadReason(ctx: Context, t: number): string {
  const states = ctx.states as TargetStates
  const load = states.load(t) ?? 0
  return `${(ctx.targets[t] as Target).id} is overloaded (load ${percent(load)}% > ${percent(states.overloadWatermark)}%)${shedApplied ? ': this client was shed' : ''}`
}

/**
 * Salts that derive per-target seeds for shedding from the load-sharing
 * seed: the shed draw must not correlate with the rendezvous draw that
 * chose the overloaded target (its winners have high draws), nor the
 * receiver draw with either, or shares would drift from f and from spare
 * capacity. Any fixed constants do; these are the golden-ratio and
 * MurmurHash2 constants.
 */
const SHED_DRAW_SALT = 0x9e3779b9
const SHED_SPREAD_SALT = 0x5bd1e995

/**
 * Overload shedding for the chosen targets of a map, geo or default decision
 * (`chosen` is rewritten in place). For each chosen target whose reported
 * load exceeds the watermark, the client prefixes whose stable draw u (from
 * the prefix hash, uniform in (0, 1)) is below f = 1 − watermark / load go
 * elsewhere: with load proportional to clients, keeping 1 − f of them brings
 * the load back to load × (1 − f) = watermark. The same prefix always draws
 * the same u, and a rising load only adds prefixes to the shed share.
 *
 * A shed client goes to one of the decision's other candidates (`ranked`,
 * the rule's own order: map ranking over the whole entry, not only the
 * tolerance band; distance; the pool) that serves, is not already in the
 * answer, and has spare capacity (weight × (watermark − load) > 0, so
 * overloaded targets take nothing), chosen by rendezvous weighted by spare
 * capacity: each takes shed clients in proportion to its spare capacity,
 * never all onto one neighbour while several have room. Nothing has spare
 * capacity: nothing is shed (moving clients would overload another target).
 *
 * Runs only when the snapshot has an overloaded target; allocates nothing
 * without a trace. Sets shedFrom, shedHashed and shedApplied.
 */
function shedOverloaded(
  ctx: Context,
  chosen: number[],
  ranked: ArrayLike<number>,
  count: number,
  servingFlags: ArrayLike<number> | undefined,
  prefixHash: number,
  trace: TraceBuilder | undefined,
): void {
  const states = ctx.states as TargetStates
  const { targets, nowMs } = ctx
  const watermark = states.overloadWatermark
  for (let slot = 0; slot < chosen.length; slot++) {
    const from = chosen[slot] as number
    if (!states.overloaded(from)) continue
    if (shedFrom < 0) shedFrom = from
    const load = states.load(from) as number
    let best = -1
    let bestWeight = -1
    let withSpare = 0
    for (let c = 0; c < count; c++) {
      const t = ranked[c] as number
      if ((servingFlags !== undefined && servingFlags[c] === 0) || chosen.includes(t)) continue
      const spare = states.spareCapacity(t, nowMs)
      if (spare <= 0) continue
      withSpare++
      const w = spare / -Math.log(unitDraw(prefixHash, (targets[t] as Target).hashSeed, SHED_SPREAD_SALT))
      // Ties to the better-ranked candidate (seen first).
      if (w > bestWeight) {
        best = t
        bestWeight = w
      }
    }
    const fraction = withSpare > 0 ? 1 - watermark / load : 0
    const applied = withSpare > 0 && unitDraw(prefixHash, (targets[from] as Target).hashSeed, SHED_DRAW_SALT) < fraction
    if (withSpare > 0) shedHashed = true
    if (applied) {
      chosen[slot] = best
      shedApplied = true
    }
    if (trace) {
      const spare: { id: string; spareCapacity: number }[] = []
      for (let c = 0; c < count; c++) {
        const t = ranked[c] as number
        if ((servingFlags !== undefined && servingFlags[c] === 0) || (t !== best && chosen.includes(t))) continue
        const sc = states.spareCapacity(t, nowMs)
        if (sc > 0) spare.push({ id: (targets[t] as Target).id, spareCapacity: Math.round(sc * 1000) / 1000 })
      }
      const note =
        withSpare === 0
          ? 'no other serving candidate has spare capacity: nothing shed'
          : `${applied ? 'this client is in the shed share' : 'this client stays'}; ${withSpare === 1 ? `only ${spare[0]?.id ?? '?'} has spare capacity: no spread possible` : `shed clients spread over ${withSpare} targets by spare capacity`}`
      trace.shed({
        from: (targets[from] as Target).id,
        fraction: Math.round(fraction * 10000) / 10000,
        loadPct: percent(load),
        watermarkPct: percent(watermark),
        applied,
        ...(applied ? { to: (targets[best] as Target).id } : {}),
        spare,
        note,
      })
    }
  }
}

/** Uniform in (0, 1) from the prefix hash and a target seed re-derived with `salt`. */
function unitDraw(prefixHash: number, hashSeed: number, salt: number): number {
  return (mix32(prefixHash ^ mix32(hashSeed ^ salt)) + 0.5) / 4294967296
}

function hasFamily(target: Target, family: 4 | 6): boolean {
  return (family === 4 ? target.ipv4.length : target.ipv6.length) > 0
}

function isStale(view: SteeringView, entry: number, nowMs: number): boolean {
  const at = view.map.entryUpdatedAtMs(entry) ?? view.map.generatedAtMs
  return at !== undefined && nowMs - at > view.setup.staleAfterSec * 1000
}

/**
 * The answer from the `count` ranked candidates in `scratch`: serving ones
 * within tolerancePct of the best share the first places, ordered by
 * rendezvous hash weighted by weight (capacity unless an admin weight says
 * otherwise), so one network keeps its target and a removed target moves
 * only its own clients; the rest follow by score. Undefined when none serves.
 * Sets lastHashed (the hash decided) and lastContenderMs (the worst score
 * that still made the answer: the tolerance band, or the last place filled
 * from below it).
 */
function pickNear(
  count: number,
  answers: number,
  tolerancePct: number,
  targets: readonly Target[],
  prefixHash: number,
  states: TargetStates | undefined,
  nowMs: number,
): number[] | undefined {
  const { target: cTarget, rankMs: cRank, serving: cServing, hrw } = scratch
  let first = 0
  while (first < count && cServing[first] === 0) first++
  if (first === count) return undefined
  const limit = (cRank[first] as number) * (1 + tolerancePct / 100)
  let near = 0
  let end = first
  for (; end < count && (cRank[end] as number) <= limit; end++) {
    if (cServing[end] === 0) {
      hrw[end] = -1
      continue
    }
    near++
    const t = cTarget[end] as number
    hrw[end] = rendezvousWeight(targets[t] as Target, prefixHash, states ? states.weight(t, nowMs) : (targets[t] as Target).capacity)
  }
  const chosen: number[] = []
  // Highest rendezvous weight first, ties to the lower target index (as rendezvousOrder sorts).
  while (chosen.length < answers && chosen.length < near) {
    let pick = -1
    for (let c = first; c < end; c++) {
      const w = hrw[c] as number
      if (w < 0) continue
      if (pick < 0 || w > (hrw[pick] as number) || (w === hrw[pick] && (cTarget[c] as number) < (cTarget[pick] as number))) pick = c
    }
    chosen.push(cTarget[pick] as number)
    hrw[pick] = -1
  }
  lastHashed = near > 1
  lastContenderMs = limit
  for (let c = end; c < count && chosen.length < answers; c++) {
    if (cServing[c] === 0) continue
    chosen.push(cTarget[c] as number)
    lastContenderMs = cRank[c] as number
  }
  return chosen
}

/**
 * Weighted rendezvous (HRW) order: highest weight / -ln(u) first, u from a
 * hash of prefix and target. Weight is `weightOf(target)` (the admin weight
 * from TargetStates) or, without it, the configured capacity. Weight 0 ranks
 * last (ties by index).
 */
export function rendezvousOrder(
  candidates: readonly number[],
  targets: readonly Target[],
  prefixHash: number,
  weightOf?: (target: number) => number,
): number[] {
  return candidates
    .map((t) => ({ t, weight: rendezvousWeight(targets[t] as Target, prefixHash, weightOf ? weightOf(t) : (targets[t] as Target).capacity) }))
    .sort((a, b) => b.weight - a.weight || a.t - b.t)
    .map((x) => x.t)
}

/** weight / -ln(u), u uniform in (0, 1) from the prefix hash and the target's seed: ≥ 0. */
function rendezvousWeight(target: Target, prefixHash: number, weight: number): number {
  const u = (mix32(prefixHash ^ target.hashSeed) + 0.5) / 4294967296
  return weight / -Math.log(u)
}

/**
 * Hash of the client prefix reduced to `len` bits (the "same network, same
 * answer" key): FNV-1a over the masked address bytes, read in place rather
 * than from a masked copy (the copy was 15% of select()'s time in a profile).
 */
function hashPrefix(key: ClientKey, len: number): number {
  const address = key.address
  const full = len >> 3
  const partial = (0xff << (8 - (len & 7))) & 0xff
  let h = 0x811c9dc5 ^ len
  for (let i = 0; i < address.length; i++) {
    const b = i < full ? (address[i] as number) : i === full ? (address[i] as number) & partial : 0
    h ^= b
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** MurmurHash3's 32-bit finalizer: spreads every input bit over the output. */
function mix32(x: number): number {
  let h = x >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

class TraceBuilder {
  readonly #key: ClientKey
  readonly #family: 4 | 6
  readonly #view: SteeringView
  readonly #map: MapReader
  readonly #nowMs: number
  #matched: string | undefined
  #stale = false
  #geo: DecisionTrace['geo']
  #override: OverrideTrace | undefined
  readonly #candidates: CandidateTrace[] = []
  readonly #shed: ShedTrace[] = []

  constructor(key: ClientKey, family: 4 | 6, view: SteeringView, nowMs: number) {
    this.#key = key
    this.#family = family
    this.#view = view
    this.#map = view.map
    this.#nowMs = nowMs
  }

  /** Records the pin considered; `onlyIfNone` keeps an earlier, more specific one. */
  pin(record: PinOverride, applied: boolean, note: string, targets: readonly CandidateTrace[], onlyIfNone = false): void {
    if (onlyIfNone && this.#override) return
    this.#override = { id: record.id, reason: record.reason, prefix: record.prefix, expiresAtMs: record.expiresAtMs, applied, note, targets }
  }

  mapEntry(entry: number, stale: boolean): void {
    this.#matched = this.#map.entryPrefix(entry)
    this.#stale = stale
  }

  geoLocation(l: NonNullable<ReturnType<GeoLocator['lookup']>>): void {
    this.#geo = {
      network: l.networkPrefixLen,
      ...(l.countryCode ? { country: l.countryCode } : {}),
      ...(l.continentCode ? { continent: l.continentCode } : {}),
      ...(l.city ? { city: l.city } : {}),
    }
  }

  candidate(c: CandidateTrace): void {
    this.#candidates.push(c)
  }

  shed(s: ShedTrace): void {
    this.#shed.push(s)
  }

  finish(rule: DecisionRule, chosen: string[], ttlSec: number, ttlReason: string, scopePrefixLen: number, scopeReason: string): DecisionTrace {
    const generated = this.#map.generatedAtMs
    return {
      key: formatPrefix(this.#key),
      keySource: this.#key.source,
      family: this.#family,
      rule,
      override: this.#override,
      matched: this.#matched,
      mapStale: this.#stale,
      mapVersion: this.#map.version,
      mapAgeSec: generated === undefined ? undefined : Math.max(0, Math.round((this.#nowMs - generated) / 1000)),
      overridesVersion: this.#view.overrides?.version,
      targetStatesVersion: this.#view.targetStates?.version,
      geo: this.#geo,
      candidates: this.#candidates,
      chosen,
      ...(this.#shed[0] !== undefined ? { shed: this.#shed[0] } : {}),
      ...(this.#shed.length > 1 ? { shedMore: this.#shed.slice(1) } : {}),
      ttlSec,
      ttlReason,
      scopePrefixLen,
      scopeReason,
    }
  }
}
