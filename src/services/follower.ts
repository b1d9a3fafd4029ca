/**
 * Follows the published state: fetches it from a StateFeed at start, on
 * every announcement and reconnection, and on a slow safety poll, and swaps
 * it into this node's SteeringState (map, overrides, target states: three
 * reference swaps in one synchronous step, so no query sees half of a
 * change). When the feed is unreachable the node keeps serving what it has
 * and never clears it; each applied state is also saved in the state
 * directory, so a restart without the feed serves it from the first query.
 * Knows nothing of Redis: any StateFeed will do.
 */
import type { LatencyMap, SteeringSetup, SteeringState } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { compilePublished } from './apply-published.js'
import type { FollowerCache } from './follower-cache.js'
import type { MapSource } from './measurement-service.js'
import type { OperatorSnapshot } from './operator-events.js'
import type { PublishedState, StateFeed } from './published-state.js'

export interface FollowerOptions {
  readonly feed: StateFeed
  readonly steering: SteeringState
  readonly setup: SteeringSetup
  /** The map serving before anything is applied (map.file or empty), and its source. */
  readonly initialMap: LatencyMap
  readonly initialSource: MapSource
  readonly overloadWatermark: number
  readonly cache?: FollowerCache
  /** Safety poll: catches an announcement lost without a disconnect. */
  readonly pollIntervalMs: number
  readonly nowMs: () => number
  readonly log: Logger
  /** After every applied state (from the feed or the cache). */
  readonly onApplied?: (state: AppliedState) => void
}

/** The state this node serves, as it was published. */
export interface AppliedState {
  readonly version: number
  /** The published map's version (0: none published; the initial map serves). */
  readonly mapVersion: number
  readonly operator: OperatorSnapshot
  readonly operatorRev: number
  readonly health: PublishedState['health']
  /** Where it came from: the feed, or the state directory at start. */
  readonly from: 'feed' | 'cache'
  readonly appliedAtMs: number
}

export interface FollowerStatus {
  /** The last fetch succeeded. */
  readonly reachable: boolean
  readonly lastError: string | undefined
  readonly lastFetchAtMs: number | undefined
}

export interface Follower {
  applied(): AppliedState | undefined
  /** The map serving now, and where it came from. */
  currentMap(): LatencyMap
  currentSource(): MapSource
  status(): FollowerStatus
  /** Fetches and applies now (coalesced with a fetch under way); rejects when the feed is unreachable. */
  sync(): Promise<void>
  /** First fetch, bounded by `firstFetch` (else the saved state); then follows announcements and polls. */
  start(firstFetch: () => Promise<boolean>): Promise<void>
  close(): Promise<void>
}

export function createFollower(opts: FollowerOptions): Follower {
  const { feed, steering, setup, log, nowMs } = opts
  let current: AppliedState | undefined
  let map = opts.initialMap
  let source: MapSource = opts.initialSource
  let reachable = false
  let lastError: string | undefined
  let lastFetchAtMs: number | undefined
  let refusedVersion: number | undefined
  let inFlight: Promise<void> | undefined
  let queued: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

  /** Applies a state; false (and the previous state keeps serving) when this configuration cannot compile it. */
  function apply(state: PublishedState, from: AppliedState['from']): boolean {
    let compiled
    try {
      compiled = compilePublished(state, setup, { overloadWatermark: opts.overloadWatermark, log })
    } catch (err) {
      if (refusedVersion !== state.version) log.error({ err, version: state.version }, 'published state refused (does this node have the same targets?); the previous state keeps serving')
      refusedVersion = state.version
      return false
    }
    // One synchronous step: the query path (same thread) sees all three or none.
    if (compiled.map) {
      map = compiled.map
      source = state.mapSource
      steering.setMap(compiled.map)
    }
    steering.setOverrides(compiled.overrides)
    steering.setTargetStates(compiled.targetStates)
    const mapVersion = compiled.map || state.mapVersion === current?.mapVersion ? state.mapVersion : (current?.mapVersion ?? 0)
    current = { version: state.version, mapVersion, operator: state.operator, operatorRev: state.operatorRev, health: state.health, from, appliedAtMs: nowMs() }
    log.debug({ version: state.version, mapVersion, from }, 'published state applied')
    if (from === 'feed' && opts.cache) {
      opts.cache.save({ ...state, mapVersion }, compiled.map).catch((err: unknown) => log.error({ err }, 'could not save the published state in the state directory; a restart without the store serves an older one'))
    }
    opts.onApplied?.(current)
    return true
  }

  async function fetchAndApply(): Promise<void> {
    const have = current ? { version: current.version, mapVersion: current.mapVersion } : undefined
    let state: PublishedState | undefined
    try {
      state = await feed.fetchAll(have)
    } catch (err) {
      const message = (err as Error).message
      if (reachable || lastError === undefined) log.warn({ err: message, servingVersion: current?.version ?? null }, 'shared state unreachable: serving the last state applied')
      reachable = false
      lastError = message
      throw err
    }
    if (!reachable && lastError !== undefined) log.info('shared state reachable again')
    reachable = true
    lastError = undefined
    lastFetchAtMs = nowMs()
    // Nothing new; or nothing ever published (a new or emptied store): keep serving.
    if (state === undefined || state.version === 0) return
    if (state.version === refusedVersion) return
    apply(state, 'feed')
  }

  function sync(): Promise<void> {
    if (closed) return Promise.resolve()
    if (queued) return queued
    if (!inFlight) {
      inFlight = fetchAndApply().finally(() => (inFlight = undefined))
      return inFlight
    }
    // One more fetch after the one under way: it may have read before the latest change.
    queued = inFlight
      .catch(() => undefined)
      .then(() => {
        queued = undefined
        return sync()
      })
    return queued
  }

  const quietSync = (): void => {
    sync().catch(() => undefined)
  }

  return {
    applied: () => current,
    currentMap: () => map,
    currentSource: () => source,
    status: () => ({ reachable, lastError, lastFetchAtMs }),
    sync,
    async start(firstFetch) {
      feed.onAnnounce((version) => {
        if (version === undefined || current === undefined || version > current.version) quietSync()
      })
      let fetched = false
      if (await firstFetch()) {
        try {
          await sync()
          fetched = true
        } catch {
          // Logged by fetchAndApply; the saved state stands in below.
        }
      }
      if (!fetched || current === undefined) {
        try {
          const saved = await opts.cache?.load()
          if (saved && current === undefined) {
            if (apply(saved, 'cache')) log.info({ version: saved.version, mapVersion: saved.mapVersion }, 'serving the published state saved in the state directory until the store answers')
          } else if (!saved && current === undefined) {
            log.warn({ mapVersion: map.version, source }, 'no published state yet (store unreachable or empty, nothing saved): serving the configured map with no overrides until one is published')
          }
        } catch (err) {
          log.error({ err }, 'the saved published state is unreadable; serving the configured map until the store answers')
        }
      }
      timer = setInterval(quietSync, opts.pollIntervalMs)
      timer.unref()
    },
    async close() {
      closed = true
      if (timer) clearInterval(timer)
      await inFlight?.catch(() => undefined)
      await queued?.catch(() => undefined)
    },
  }
}
