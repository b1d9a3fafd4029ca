/**
 * The steering decision (DESIGN.md, "A steering decision"): one pure function
 * used by DNS answers, the explain CLI and (later) the API. Same inputs, same
 * decision: the clock is an argument, the load-sharing choice is a rendezvous
 * hash of the client prefix. Knows nothing of DNS messages: it returns target
 * indices, a scope and a TTL, and optionally the trace that explains them.
 */
import type { ClientKey } from './client-key.js'
import { formatPrefix, maskAddress } from './client-key.js'
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

/** Everything one decision reads: an immutable snapshot plus health. */
export interface SteeringView {
  readonly setup: SteeringSetup
  readonly map: MapReader
  readonly geo: GeoLocator | undefined
  /** True when the target may receive new clients (health and admin state). */
  readonly isServing: (target: number) => boolean
  /** Great-circle distance in km (geo/ provides it). */
  readonly distanceKm: (lat1: number, lon1: number, lat2: number, lon2: number) => number
}

/**
 * map: the latency map decided. geo: nearest by distance. default: the pool by
 * capacity. all-down: no serving target, the service's policy answered.
 * no-address: no pool target has an address of the asked family (NODATA).
 */
export type DecisionRule = 'map' | 'geo' | 'default' | 'all-down' | 'no-address'

export interface CandidateTrace {
  readonly id: string
  readonly serving: boolean
  readonly scoreMs?: number
  readonly samples?: number
  readonly distanceKm?: number
}

export interface DecisionTrace {
  readonly key: string
  readonly keySource: ClientKey['source']
  readonly family: 4 | 6
  readonly rule: DecisionRule
  /** The map entry that matched (stale ones included, marked by `mapStale`). */
  readonly matched: string | undefined
  readonly mapStale: boolean
  readonly mapVersion: number
  readonly mapAgeSec: number | undefined
  readonly geo: { country?: string; continent?: string; city?: string; network: number } | undefined
  readonly candidates: readonly CandidateTrace[]
  readonly chosen: readonly string[]
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

const reusableMatch: MapMatch = { entry: -1, matchedLen: -1, deepestBelowLen: -1 }

/**
 * Decides which targets answer `service` for `key` and address family
 * `family`. Pure apart from reading `view`; `nowMs` decides map staleness.
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
  const { setup, map } = view
  const targets = setup.targets
  const pool = family === 4 ? service.poolV4 : service.poolV6
  const hashLen = Math.min(key.prefixLen, family === 4 ? setup.ipv4Prefix : setup.ipv6Prefix)
  const prefixHash = hashPrefix(key, hashLen)
  const trace = withTrace ? new TraceBuilder(key, family, map, nowMs) : undefined

  const match = withTrace ? { entry: -1, matchedLen: -1, deepestBelowLen: -1 } : reusableMatch
  map.lookup(key, match)
  const below = match.deepestBelowLen

  if (pool.length === 0) return finish('no-address', [], 0, 'no target in the pool has an address of this family', false)

  // Step 3: the latency map, restricted to this service's pool and its serving targets.
  let mapBest: number | undefined
  if (match.entry >= 0) {
    const stale = isStale(view, match.entry, nowMs)
    trace?.mapEntry(match.entry, stale)
    const ranked: { target: number; scoreMs: number }[] = []
    for (let i = 0; i < map.candidateCount(match.entry); i++) {
      const target = map.candidateTarget(match.entry, i)
      // A target without an address of this family cannot answer: it is not a candidate.
      if (service.inPool[target] !== 1 || !hasFamily(targets[target] as Target, family)) continue
      const serving = view.isServing(target)
      trace?.candidate({
        id: (targets[target] as Target).id,
        serving,
        scoreMs: map.candidateScoreMs(match.entry, i),
        samples: map.candidateSamples(match.entry, i),
      })
      if (mapBest === undefined) mapBest = target
      if (serving && !stale) ranked.push({ target, scoreMs: map.candidateScoreMs(match.entry, i) })
    }
    if (ranked.length > 0) {
      const { chosen, hashed } = pickNear(ranked, service.answers, setup.tolerancePct, targets, prefixHash)
      let scope = below >= 0 ? below : match.matchedLen
      let scopeReason = below >= 0 ? `entries below the source prefix reach /${below}` : `map entry /${match.matchedLen}`
      if (hashed && hashLen > scope) {
        scope = hashLen
        scopeReason = `load shared by client /${hashLen}`
      }
      return finish('map', chosen, scope, scopeReason, true)
    }
  }

  const serving = pool.filter(view.isServing)
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
    if (trace) for (const c of byDistance) trace.candidate({ id: (targets[c.t] as Target).id, serving: true, distanceKm: Math.round(c.km) })
    const geoLen = Math.min(location.networkPrefixLen, family === 4 ? 32 : 128)
    const scope = Math.max(geoLen, below)
    const reason = below > geoLen ? `map entries below the source prefix reach /${below}` : `geo network /${geoLen}`
    return finish('geo', byDistance.slice(0, service.answers).map((c) => c.t), scope, reason, true)
  }

  // Step 5: nothing known: the pool by capacity weight.
  if (serving.length > 0) {
    const ordered = rendezvousOrder(serving, targets, prefixHash)
    const scope = Math.max(below, serving.length > 1 ? hashLen : 0)
    return finish('default', ordered.slice(0, service.answers), scope, serving.length > 1 ? `load shared by client /${hashLen}` : 'one target', false)
  }

  // Step 6: every target of the pool is down: the service's policy, never silence.
  if (service.allDown === 'static') return finish('all-down', [], 0, 'all down: static records', false, true)
  if (service.allDown === 'all') return finish('all-down', pool.slice(0, 16), 0, 'all down: every target', false)
  const best = mapBest ?? nearest(pool)[0]?.t ?? (rendezvousOrder(pool, targets, prefixHash)[0] as number)
  return finish('all-down', [best], match.entry >= 0 ? match.matchedLen : 0, 'all down: best anyway', false)

  function finish(rule: DecisionRule, chosen: number[], scope: number, scopeReason: string, confident: boolean, useStatic = false): Decision {
    // Step 7: a confident decision may be cached long; anything else is re-asked soon.
    const ttlSec = confident ? service.ttlMaxSec : service.ttlMinSec
    const ttlReason = confident ? `max: ${rule} decision` : `min: ${rule} decision`
    const scopePrefixLen = Math.min(Math.max(scope, 0), family === 4 ? 32 : 128)
    return {
      targets: chosen,
      rule,
      useStatic,
      scopePrefixLen,
      ttlSec,
      trace: trace?.finish(rule, chosen.map((i) => (targets[i] as Target).id), ttlSec, ttlReason, scopePrefixLen, scopeReason),
    }
  }
}

function hasFamily(target: Target, family: 4 | 6): boolean {
  return (family === 4 ? target.ipv4.length : target.ipv6.length) > 0
}

function isStale(view: SteeringView, entry: number, nowMs: number): boolean {
  const at = view.map.entryUpdatedAtMs(entry) ?? view.map.generatedAtMs
  return at !== undefined && nowMs - at > view.setup.staleAfterSec * 1000
}

/**
 * Candidates within tolerancePct of the best share the first places, ordered
 * by rendezvous hash weighted by capacity (so one network keeps its target and
 * a removed target moves only its own clients); the rest follow by score.
 */
function pickNear(
  ranked: readonly { target: number; scoreMs: number }[],
  answers: number,
  tolerancePct: number,
  targets: readonly Target[],
  prefixHash: number,
): { chosen: number[]; hashed: boolean } {
  const limit = (ranked[0] as { scoreMs: number }).scoreMs * (1 + tolerancePct / 100)
  const near = ranked.filter((c) => c.scoreMs <= limit).map((c) => c.target)
  const rest = ranked.filter((c) => c.scoreMs > limit).map((c) => c.target)
  if (near.length <= 1) return { chosen: [...near, ...rest].slice(0, answers), hashed: false }
  return { chosen: [...rendezvousOrder(near, targets, prefixHash), ...rest].slice(0, answers), hashed: true }
}

/** Weighted rendezvous (HRW) order: highest capacity / -ln(u) first, u from a hash of prefix and target. */
export function rendezvousOrder(candidates: readonly number[], targets: readonly Target[], prefixHash: number): number[] {
  return candidates
    .map((t) => {
      const target = targets[t] as Target
      const u = (mix32(prefixHash ^ target.hashSeed) + 0.5) / 4294967296
      return { t, weight: target.capacity / -Math.log(u) }
    })
    .sort((a, b) => b.weight - a.weight || a.t - b.t)
    .map((x) => x.t)
}

/** Hash of the client prefix reduced to `len` bits (the "same network, same answer" key). */
function hashPrefix(key: ClientKey, len: number): number {
  const masked = maskAddress(key.address, len)
  let h = 0x811c9dc5 ^ len
  for (let i = 0; i < masked.length; i++) {
    h ^= masked[i] as number
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
  readonly #map: MapReader
  readonly #nowMs: number
  #matched: string | undefined
  #stale = false
  #geo: DecisionTrace['geo']
  readonly #candidates: CandidateTrace[] = []

  constructor(key: ClientKey, family: 4 | 6, map: MapReader, nowMs: number) {
    this.#key = key
    this.#family = family
    this.#map = map
    this.#nowMs = nowMs
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

  finish(rule: DecisionRule, chosen: string[], ttlSec: number, ttlReason: string, scopePrefixLen: number, scopeReason: string): DecisionTrace {
    const generated = this.#map.generatedAtMs
    return {
      key: formatPrefix(this.#key),
      keySource: this.#key.source,
      family: this.#family,
      rule,
      matched: this.#matched,
      mapStale: this.#stale,
      mapVersion: this.#map.version,
      mapAgeSec: generated === undefined ? undefined : Math.max(0, Math.round((this.#nowMs - generated) / 1000)),
      geo: this.#geo,
      candidates: this.#candidates,
      chosen,
      ttlSec,
      ttlReason,
      scopePrefixLen,
      scopeReason,
    }
  }
}
