/**
 * Targets and services compiled for the query path: target ids resolved to
 * indices and pools to index lists when the configuration loads (as gdnsd
 * does), addresses parsed to bytes, so a decision does no string lookups.
 * Built once per configuration; immutable afterwards.
 */
import { parseAddress } from './client-key.js'

/** What a target looks like in the configuration (config/ validated it). */
export interface TargetSpec {
  readonly id: string
  readonly site: string
  readonly ipv4: readonly string[]
  readonly ipv6: readonly string[]
  readonly location: { readonly lat: number; readonly lon: number }
  readonly capacity: number
  readonly tags: readonly string[]
}

/** What a service looks like in the configuration. */
export interface ServiceSpec {
  readonly name: string
  readonly pool: readonly string[]
  readonly answers: number
  readonly ttl: { readonly min: number; readonly max: number }
  readonly allDown: 'best' | 'all' | 'static'
}

export interface Target {
  readonly index: number
  readonly id: string
  readonly site: string
  /** 4-byte addresses. */
  readonly ipv4: readonly Uint8Array[]
  /** 16-byte addresses. */
  readonly ipv6: readonly Uint8Array[]
  readonly latitude: number
  readonly longitude: number
  /** Capacity weight: relative share of load among near-equal targets. */
  readonly capacity: number
  readonly tags: readonly string[]
  /** Precomputed hash of the id, mixed with the client prefix for rendezvous hashing. */
  readonly hashSeed: number
}

export interface Service {
  /** Internal form (lowercase, no trailing dot). */
  readonly name: string
  /** Target indices, configuration order, duplicates removed. */
  readonly pool: readonly number[]
  /** The pool's targets that have an IPv4 / IPv6 address: precomputed so a decision filters nothing. */
  readonly poolV4: readonly number[]
  readonly poolV6: readonly number[]
  /** inPool[target] is 1 when the target belongs to the pool (map candidates are checked against it). */
  readonly inPool: Uint8Array
  readonly answers: number
  readonly ttlMinSec: number
  readonly ttlMaxSec: number
  readonly allDown: 'best' | 'all' | 'static'
}

export interface SteeringSetup {
  readonly targets: readonly Target[]
  readonly targetIndex: ReadonlyMap<string, number>
  readonly services: ReadonlyMap<string, Service>
  /** Client prefixes used for load-sharing hashes (and by measurements). */
  readonly ipv4Prefix: number
  readonly ipv6Prefix: number
  readonly tolerancePct: number
  readonly staleAfterSec: number
}

export interface SteeringSetupSpec {
  readonly targets: readonly TargetSpec[]
  readonly services: readonly ServiceSpec[]
  readonly map: { readonly ipv4Prefix: number; readonly ipv6Prefix: number; readonly tolerancePct: number; readonly staleAfterSec: number }
}

/** FNV-1a over a string's UTF-16 code units: stable across processes and nodes. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * Compiles validated configuration. Throws STEER_ERR_STEERING_SETUP for
 * references config/ should already have rejected (unknown pool member).
 */
export function buildSteeringSetup(spec: SteeringSetupSpec): SteeringSetup {
  const targets: Target[] = spec.targets.map((t, index) => ({
    index,
    id: t.id,
    site: t.site,
    ipv4: t.ipv4.map((a) => parseAddress(a) ?? fail(`target ${t.id}: bad address ${a}`)),
    ipv6: t.ipv6.map((a) => parseAddress(a) ?? fail(`target ${t.id}: bad address ${a}`)),
    latitude: t.location.lat,
    longitude: t.location.lon,
    capacity: t.capacity,
    tags: t.tags,
    hashSeed: fnv1a32(t.id),
  }))
  const targetIndex = new Map(targets.map((t) => [t.id, t.index]))
  const services = new Map<string, Service>()
  for (const s of spec.services) {
    const pool: number[] = []
    for (const member of s.pool) {
      const matches = member.startsWith('tag:')
        ? targets.filter((t) => t.tags.includes(member.slice(4))).map((t) => t.index)
        : [targetIndex.get(member) ?? fail(`service ${s.name}: unknown target ${member}`)]
      for (const m of matches) if (!pool.includes(m)) pool.push(m)
    }
    const inPool = new Uint8Array(targets.length)
    for (const i of pool) inPool[i] = 1
    services.set(s.name, {
      name: s.name,
      pool,
      poolV4: pool.filter((i) => (targets[i] as Target).ipv4.length > 0),
      poolV6: pool.filter((i) => (targets[i] as Target).ipv6.length > 0),
      inPool,
      answers: s.answers,
      ttlMinSec: s.ttl.min,
      ttlMaxSec: s.ttl.max,
      allDown: s.allDown,
    })
  }
  return { targets, targetIndex, services, ...spec.map }
}

function fail(message: string): never {
  throw Object.assign(new Error(message), { code: 'STEER_ERR_STEERING_SETUP' })
}
