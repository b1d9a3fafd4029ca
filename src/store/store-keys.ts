/**
 * Every Redis key and channel steerdns uses, from store.keyPrefix. Operators'
 * scripts may read these (the map is the same JSON as GET /v1/map/export);
 * names are promises: add keys, never rename them.
 */

export interface StoreKeys {
  /** Integer, bumped by every published change (map, operator state, health). */
  readonly version: string
  /** Pub/sub channel: `{"version":N,"kind":"map"|"operator"|"health"|"seed"}` after every change. */
  readonly events: string
  /** The published map, `--map` JSON. */
  readonly map: string
  /** Its version (the integer inside the JSON, kept apart so readers need not parse the map). */
  readonly mapVersion: string
  /** Where the map came from: compiled | imported | file | state | empty. */
  readonly mapSource: string
  /** Overrides, target admin states and loads (the operator snapshot without its audit), JSON. */
  readonly operator: string
  /** Integer, bumped by every operator write (optimistic concurrency). */
  readonly operatorRev: string
  /** Target health records by id, JSON (what DNS nodes apply). */
  readonly health: string
  /** Active checks' last decided states by id, JSON (what a new checking node seeds from). */
  readonly healthChecks: string
  /** List of audit entries (JSON), newest last, capped. */
  readonly audit: string
  /** Stream of accepted measurement batches. */
  readonly measurements: string
  /** `{"lastId":"...","snapshot":{...}}`: the aggregator state including every batch up to lastId. */
  readonly checkpoint: string
  /** The compile lock: the holder's node token, with an expiry. */
  readonly compileLock: string
}

export function storeKeys(prefix: string): StoreKeys {
  return {
    version: `${prefix}version`,
    events: `${prefix}events`,
    map: `${prefix}map`,
    mapVersion: `${prefix}map:version`,
    mapSource: `${prefix}map:source`,
    operator: `${prefix}operator`,
    operatorRev: `${prefix}operator:rev`,
    health: `${prefix}health`,
    healthChecks: `${prefix}health:checks`,
    audit: `${prefix}audit`,
    measurements: `${prefix}measurements`,
    checkpoint: `${prefix}aggregator`,
    compileLock: `${prefix}compile-lock`,
  }
}
