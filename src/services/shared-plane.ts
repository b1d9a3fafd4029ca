/**
 * A node's part in the many-node mode (store.kind redis), composed: the
 * shared store, the follower that swaps published state into this node's
 * steering snapshot (every role: DNS answers from it, and explain and the
 * read routes show it), and, for roles control and all, the compile leader
 * and the services that write to the store. On a role dns node the write
 * routes answer 421 and name the roles that take them.
 *
 * An empty store (a new Redis, or one restarted without its data) is seeded
 * by the first control node that reaches it with the state it serves, so a
 * Redis restart loses no map or override that some control node still has;
 * the audit log, measurements not yet folded and the aggregator checkpoint
 * are lost with the data (say appendonly yes to keep them).
 */
import type { NodeRole, SteerdnsConfig } from '../config/index.js'
import { ApiProblem } from '../control/index.js'
import type { HealthService } from '../control/index.js'
import { openStateDir } from '../state/index.js'
import type { StateDir } from '../state/index.js'
import { createRedisStore } from '../store/index.js'
import type { SharedStore } from '../store/index.js'
import { formatMapJson } from '../steering/index.js'
import type { LatencyMap, SteeringSetup, SteeringState } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { createCompileLeader } from './compile-leader.js'
import type { CompileLeader } from './compile-leader.js'
import type { ApiParts } from './control-plane.js'
import { createFollowerCache } from './follower-cache.js'
import { createFollower } from './follower.js'
import type { Follower } from './follower.js'
import type { MapSource, MeasurementCounters } from './measurement-service.js'
import { AUDIT_KEEP } from './operator-events.js'
import { emptyOperatorSnapshot } from './published-state.js'
import { createSharedMeasurementService } from './shared-measurement-service.js'
import { createSharedOperatorService } from './shared-operator-service.js'
import { createStoreFeed } from './store-feed.js'

export interface SharedPlaneOptions {
  readonly config: SteerdnsConfig
  readonly role: NodeRole
  readonly setup: SteeringSetup
  readonly steering: SteeringState
  /** The configured map (map.file or --map), serving until a published one arrives. */
  readonly initialMap: LatencyMap
  readonly initialSource: MapSource
  readonly nowMs: () => number
  readonly log: Logger
  /** STEERDNS_TEST_COMPILE_DELAY_MS (tests only; 0 otherwise). */
  readonly compileDelayMs: number
}

export interface SharedPlane {
  readonly stateDir: StateDir
  readonly store: SharedStore
  readonly follower: Follower
  readonly leader: CompileLeader | undefined
  readonly parts: ApiParts
  measurementCounters(): MeasurementCounters
  /** Readiness: `zonesOk` from the DNS side (true on a control node). */
  ready(zonesOk: boolean, zoneReasons: readonly string[]): ReturnType<HealthService['ready']>
  /** Starts competing for the compile lock (control roles). */
  start(): void
  close(): Promise<void>
}

/**
 * Opens the state directory (its lock: one process per directory), connects
 * to the store (waiting at most store.timeoutMs) and applies the published
 * state, else the one saved in the state directory, else keeps the
 * configured map. Never fails because Redis is unreachable; throws
 * StateError for a locked or unusable state directory.
 */
export async function openSharedPlane(opts: SharedPlaneOptions): Promise<SharedPlane> {
  const { config, role, setup, steering, nowMs, log } = opts
  const storeLog = log.child({ module: 'store' })
  const stateDir = await openStateDir(config.state.dir)
  let lastErrorLogMs = 0
  const store = createRedisStore({
    url: config.store.url,
    keyPrefix: config.store.keyPrefix,
    timeoutMs: config.store.timeoutMs,
    auditKeep: AUDIT_KEEP,
    onError: (err) => {
      // ioredis reports every failed reconnection: one line per 10 s is enough.
      if (nowMs() - lastErrorLogMs < 10_000) return
      lastErrorLogMs = nowMs()
      storeLog.warn({ err: err.message, store: config.store.url.replace(/\/\/[^@/]*@/, '//***@') }, 'shared store connection failed; retrying')
    },
  })
  const isControl = role !== 'dns'
  const ref: { leader?: CompileLeader; refreshAudit?: () => Promise<void> } = {}
  let auditSeen: string | undefined
  const follower = createFollower({
    feed: createStoreFeed(store),
    steering,
    setup,
    initialMap: opts.initialMap,
    initialSource: opts.initialSource,
    overloadWatermark: config.health.overloadWatermark,
    cache: createFollowerCache(stateDir, setup),
    pollIntervalMs: config.store.pollIntervalMs,
    nowMs,
    log: log.child({ module: 'follower' }),
    onApplied: (state) => {
      ref.leader?.noticeMapVersion(state.mapVersion)
      // The audit list changes with operator writes and imports only.
      const mark = `${state.operatorRev}/${state.mapVersion}`
      if (state.from === 'feed' && mark !== auditSeen) {
        auditSeen = mark
        ref.refreshAudit?.().catch(() => undefined)
      }
    },
  })
  const leader = isControl
    ? createCompileLeader({ store, config, setup, nowMs, log: log.child({ module: 'leader' }), compileDelayMs: opts.compileDelayMs })
    : undefined
  ref.leader = leader
  const operator = createSharedOperatorService({ store, setup, steering, follower, overloadWatermark: config.health.overloadWatermark, timeoutMs: config.store.timeoutMs, nowMs, log: log.child({ module: 'operator' }) })
  ref.refreshAudit = operator.refreshAudit
  const measurement = createSharedMeasurementService({
    store,
    setup,
    steering,
    follower,
    leader,
    measure: config.measure,
    map: config.map,
    timeoutMs: config.store.timeoutMs,
    nowMs,
    log: log.child({ module: 'measure' }),
    onImported: operator.refreshAudit,
  })

  await follower.start(() => store.waitConnected(config.store.timeoutMs))
  if (store.isConnected()) await operator.refreshAudit().catch(() => undefined)

  /** Writes what this node serves into an empty store (see the file header). */
  async function seedIfEmpty(): Promise<void> {
    const applied = follower.applied()
    const map = follower.currentMap()
    if (!applied && map.size === 0) return
    const seeded = await store.seed({
      version: Math.max(1, applied?.version ?? 1),
      mapVersion: map.version,
      mapJson: map.size > 0 || (applied?.mapVersion ?? 0) > 0 ? formatMapJson(map, (i) => setup.targets[i]?.id ?? `#${i}`) : undefined,
      mapSource: follower.currentSource(),
      operatorJson: JSON.stringify(applied?.operator ?? emptyOperatorSnapshot()),
      operatorRev: applied?.operatorRev ?? 0,
      healthJson: JSON.stringify(applied?.health ?? {}),
    })
    if (seeded) storeLog.warn({ version: applied?.version ?? 1, mapVersion: map.version }, 'the shared store held no state: wrote the state this node serves into it')
  }
  const trySeed = (): void => {
    seedIfEmpty().catch((err: unknown) => storeLog.warn({ err: (err as Error).message }, 'could not seed the empty shared store'))
  }
  if (isControl) {
    store.onReconnect(trySeed)
    if (store.isConnected()) await seedIfEmpty().catch(() => undefined)
  }

  const parts: ApiParts = isControl
    ? { measurements: measurement.measurements, map: measurement.map, targets: operator.targets, overrides: operator.overrides, audit: operator.audit, probe: measurement.probe }
    : readOnly({ measurements: measurement.measurements, map: measurement.map, targets: operator.targets, overrides: operator.overrides, audit: operator.audit, probe: measurement.probe })

  return {
    stateDir,
    store,
    follower,
    leader,
    parts,
    measurementCounters: () => measurement.counters(),
    ready(zonesOk, zoneReasons) {
      const reasons = [...zoneReasons]
      const applied = follower.applied()
      const status = follower.status()
      const reachable = status.reachable && store.isConnected()
      const map = follower.currentMap()
      if (!reachable) {
        reasons.push(
          applied
            ? `shared store unreachable (${status.lastError ?? 'not connected'}): serving state version ${applied.version} (map version ${map.version}) from ${applied.from === 'cache' ? 'the state directory' : 'memory'}`
            : `shared store unreachable (${status.lastError ?? 'not connected'}) and no published state was ever applied: serving the configured map (version ${map.version}) without overrides`,
        )
      }
      // DNS keeps answering from the last state; a control node cannot take writes without the store.
      const ready = zonesOk && (reachable || (role === 'dns' || role === 'all' ? applied !== undefined : false))
      return { ready, reasons, mapVersion: map.version, mapAgeSec: map.generatedAtMs === undefined ? undefined : Math.max(0, Math.round((nowMs() - map.generatedAtMs) / 1000)) }
    },
    start() {
      leader?.start()
    },
    async close() {
      await leader?.close()
      await follower.close()
      await store.close()
      await stateDir.close()
    },
  }
}

/** Role dns: the write routes answer 421 and say where writes go. */
function readOnly(parts: ApiParts): ApiParts {
  const refuse = (): never => {
    throw new ApiProblem(421, undefined, 'this node runs role dns: measurements, overrides, target changes and map imports go to a node with role control or all')
  }
  return {
    ...parts,
    measurements: { ingest: async () => refuse() },
    map: { ...parts.map, importJson: async () => refuse() },
    targets: { ...parts.targets, patch: async () => refuse() },
    overrides: { ...parts.overrides, create: async () => refuse(), remove: async () => refuse() },
  }
}
