/**
 * What a node serving DNS follows: the published state (map, overrides,
 * target admin states and loads, health) as plain JSON, and the feed it
 * comes from. The feed is pluggable: store-feed.ts reads it from the shared
 * store (Redis); a process-IPC feed can hand the same objects to worker
 * processes. Nothing here knows where the state comes from.
 */
import type { MapSummary } from '../control/index.js'
import type { TargetHealthRecord } from '../steering/index.js'
import type { OperatorSnapshot } from './operator-events.js'

export const PUBLISHED_FORMAT = 'steerdns-published/1'

/** Everything DNS answers depend on beyond the configuration. JSON-serialisable, no class instances. */
export interface PublishedState {
  readonly format: typeof PUBLISHED_FORMAT
  /** Bumped by every published change; 0: nothing was ever published. */
  readonly version: number
  /** Version of the published map; 0: none was published (keep serving the map you have). */
  readonly mapVersion: number
  /** The map in the `--map` JSON form; absent when the receiver said it holds mapVersion, or none was published. */
  readonly map?: unknown
  readonly mapSource: MapSummary['source']
  /** Overrides, admin records, loads; `audit` is always empty here (it lives apart). */
  readonly operator: OperatorSnapshot
  /** The operator state's revision (optimistic concurrency of writers). */
  readonly operatorRev: number
  /** Health by target id. */
  readonly health: Readonly<Record<string, TargetHealthRecord>>
}

/** A source of published states. */
export interface StateFeed {
  /**
   * The current state. With `have`, resolves undefined when the version is
   * unchanged, and leaves `map` out when the map version is the one held.
   * Rejects (StoreError UNAVAILABLE for the shared store) when the source
   * cannot be reached; never waits longer than the source's own timeout.
   */
  fetchAll(have?: { readonly version: number; readonly mapVersion: number }): Promise<PublishedState | undefined>
  /**
   * `listener(version)` after a change was published; `listener(undefined)`
   * when announcements may have been missed (a reconnection, a reset store):
   * fetch everything.
   */
  onAnnounce(listener: (version: number | undefined) => void): void
  close(): Promise<void>
}

/** An operator snapshot with nothing in it. */
export function emptyOperatorSnapshot(): OperatorSnapshot {
  return { format: 'steerdns-operator/1', overrides: [], admin: {}, adminBy: {}, load: {}, audit: [], nextOverrideNumber: 1 }
}
