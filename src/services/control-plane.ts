/**
 * The control plane's state and services, composed: opens the state
 * directory, restores what was there (operator changes, aggregator state,
 * the last published map) before the first DNS query, builds the services
 * the API calls, and starts the API and the compile timer.
 *
 * Restore order matters: overrides and target states are published into the
 * steering snapshot before the listeners open, so a restart never answers
 * even one query as if a drained target were up.
 */
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { SteerdnsConfig } from '../config/index.js'
import { buildControlApp } from '../control/index.js'
import type { RecentDecisions } from '../query/index.js'
import type { ControlServices, HealthService } from '../control/index.js'
import { createAggregator, restoreAggregator } from '../measure/index.js'
import type { Aggregator, AggregatorSnapshot } from '../measure/index.js'
import { openStateDir } from '../state/index.js'
import type { StateDir } from '../state/index.js'
import { emptyLatencyMap, loadMapFile, MapError, MapErrorCode } from '../steering/index.js'
import type { LatencyMap, SteeringSetup, SteeringState } from '../steering/index.js'
import type { Logger, MetricSources } from '../telemetry/index.js'
import { createMetrics } from '../telemetry/index.js'
import { createExplainService } from './explain-service.js'
import { createMeasurementService } from './measurement-service.js'
import type { MapSource, MeasurementService } from './measurement-service.js'
import { OperatorState } from './operator-events.js'
import type { OperatorEvent, OperatorSnapshot } from './operator-events.js'
import { createOperatorService } from './operator-service.js'
import type { OperatorService } from './operator-service.js'
import { createHealthRuntime } from './health-runtime.js'
import type { HealthRuntime, PersistedHealth } from './health-runtime.js'
import { decodeReports } from './report-codec.js'
import type { ReportBatchRecord } from './report-codec.js'

/** The published map's file in the state directory. */
export const STATE_MAP_FILE = 'map.json'

export interface RestoredState {
  readonly stateDir: StateDir
  readonly map: LatencyMap
  readonly mapSource: MapSource
  readonly operator: OperatorService
  readonly measurement: MeasurementService
  readonly health: HealthRuntime
  /** Overrides, admin states and loads as they stand (expired overrides left out): what worker processes are sent. */
  operatorSnapshot(): OperatorSnapshot
}

export interface RestoreOptions {
  readonly config: SteerdnsConfig
  readonly setup: SteeringSetup
  /** `serve --map`: imported at start, replacing the state directory's map. */
  readonly explicitMapFile: string | undefined
  readonly nowMs: () => number
  readonly log: Logger
}

/**
 * Opens the state directory and rebuilds state from it. Returns the map to
 * serve first and a function that, given the steering state built on that
 * map, creates the services and publishes operator state into it. Throws
 * StateError / MapError / MeasureError naming the file when state is damaged.
 */
export async function restoreControlState(opts: RestoreOptions): Promise<{ map: LatencyMap; mapSource: MapSource; attach: (steering: SteeringState) => RestoredState; stateDir: StateDir }> {
  const { config, setup, log, nowMs } = opts
  const stateDir = await openStateDir(config.state.dir)
  try {
    if (stateDir.removedTempFiles.length > 0) log.warn({ files: stateDir.removedTempFiles }, 'removed temporary files of writes a crash interrupted')
    const resolveTarget = (id: string): number | undefined => setup.targetIndex.get(id)

    const operatorJournal = stateDir.journal<OperatorEvent, OperatorSnapshot>('operator')
    const operatorReplay = await operatorJournal.replay()
    const operatorState = OperatorState.restore(operatorReplay.snapshot)
    for (const { value } of operatorReplay.records) operatorState.apply(value)
    // Targets or overrides the configuration no longer has are dropped from what is published, not from the record.
    for (const [id] of operatorState.admin) if (!setup.targetIndex.has(id)) operatorState.admin.delete(id)
    for (const [id, o] of operatorState.overrides) if (!overrideFits(o.record, setup)) {
      log.warn({ id }, 'override names a target the configuration no longer has: not applied')
      operatorState.overrides.delete(id)
    }

    const aggregatorOptions = { targetIds: setup.targets.map((t) => t.id), ...config.measure }
    const measurementJournal = stateDir.journal<ReportBatchRecord, AggregatorSnapshot>('measurements')
    const measurementReplay = await measurementJournal.replay()
    const aggregator: Aggregator = measurementReplay.snapshot ? restoreAggregator(measurementReplay.snapshot, aggregatorOptions) : createAggregator(aggregatorOptions)
    let replayed = 0
    let skipped = 0
    for (const { value } of measurementReplay.records) {
      const decoded = decodeReports(value, config.map, resolveTarget)
      aggregator.add(decoded.reports)
      replayed += decoded.reports.length
      skipped += decoded.skipped
    }
    log.info(
      { operatorEvents: operatorReplay.records.length, reports: replayed, skipped, discardedBytes: operatorReplay.discardedBytes + measurementReplay.discardedBytes, dir: stateDir.dir },
      'state restored',
    )

    const mapFile = join(stateDir.dir, STATE_MAP_FILE)
    let map: LatencyMap
    let mapSource: MapSource
    if (opts.explicitMapFile) {
      map = await loadMapFile(opts.explicitMapFile, resolveTarget)
      mapSource = 'file'
    } else {
      const saved = await loadIfExists(mapFile, resolveTarget)
      const fromConfig = saved ? undefined : config.map.file ? await loadIfExists(config.map.file, resolveTarget) : undefined
      map = saved ?? fromConfig ?? emptyLatencyMap()
      mapSource = saved ? 'state' : fromConfig ? 'file' : 'empty'
    }
    log.info({ version: map.version, entries: map.size, source: mapSource }, 'map to serve first')

    const attach = (steering: SteeringState): RestoredState => {
      // The runtime and the operator service refer to each other: health changes republish target states.
      const ref: { operator?: OperatorService } = {}
      const health = createHealthRuntime({
        config,
        setup,
        document: stateDir.document<PersistedHealth>('health'),
        nowMs,
        log: log.child({ module: 'health' }),
        onChange: () => ref.operator?.publishTargetStates(),
      })
      const operator = createOperatorService({ journal: operatorJournal, state: operatorState, setup, steering, nowMs, log: log.child({ module: 'operator' }), health: () => health.records(), overloadWatermark: config.health.overloadWatermark })
      ref.operator = operator
      operator.publish()
      const measurement = createMeasurementService({
        journal: measurementJournal,
        aggregator,
        replayedReports: replayed,
        setup,
        steering,
        initialMap: map,
        initialSource: mapSource,
        mapFile,
        measure: config.measure,
        map: config.map,
        nowMs,
        log: log.child({ module: 'measure' }),
        onImport: (caller, version, entries) => operator.recordMapImport(caller, version, entries),
        onAccepted: (reports, now) => health.onReports(reports, now),
      })
      return { stateDir, map, mapSource, operator, measurement, health, operatorSnapshot: () => operatorState.snapshot(nowMs()) }
    }
    return { map, mapSource, attach, stateDir }
  } catch (err) {
    await stateDir.close()
    throw err
  }
}

export interface ControlPlane {
  /** The API's bound address, when it listens. */
  readonly apiAddress: { readonly host: string; readonly port: number } | undefined
  readonly services: ControlServices
  /** Local mode: what was restored from the state directory. Undefined with store.kind redis. */
  readonly restored: RestoredState | undefined
  close(): Promise<void>
}

export interface StartControlPlaneOptions {
  readonly config: SteerdnsConfig
  readonly restored: RestoredState
  readonly steering: SteeringState
  readonly metricSources: Omit<MetricSources, 'map' | 'measurements'>
  readonly ready: () => { zonesOk: boolean; reasons: string[] }
  readonly recentDecisions: RecentDecisions
  readonly nowMs: () => number
  readonly log: Logger
  readonly version: string
}

/** Builds the services, starts the compile timer, and listens on api.listen unless it is "". */
export async function startControlPlane(opts: StartControlPlaneOptions): Promise<ControlPlane> {
  const { restored } = opts
  const { measurement, operator } = restored
  const api = await listenApi({
    ...opts,
    parts: { measurements: measurement.measurements, map: measurement.map, targets: operator.targets, overrides: operator.overrides, audit: operator.audit, probe: measurement.probe },
    mapInfo: () => measurement.currentMap(),
    measurementCounters: () => measurement.counters,
    ready: () => {
      const state = opts.ready()
      const summary = measurement.map.summary()
      return { ready: state.zonesOk, reasons: state.reasons, mapVersion: summary.version, mapAgeSec: summary.ageSec }
    },
    beforeListen: () => {
      measurement.start()
      restored.health.start()
    },
  })
  return {
    apiAddress: api.apiAddress,
    services: api.services,
    restored,
    async close() {
      await api.close()
      await restored.health.close()
      await measurement.close()
      await operator.close()
      await restored.stateDir.close()
    },
  }
}

/** The services behind the API that differ between local and shared state. */
export type ApiParts = Pick<ControlServices, 'measurements' | 'map' | 'targets' | 'overrides' | 'audit' | 'probe'>

export interface ListenApiOptions {
  readonly config: SteerdnsConfig
  readonly parts: ApiParts
  readonly steering: SteeringState
  readonly metricSources: Omit<MetricSources, 'map' | 'measurements'>
  /** The map this node serves (metrics). */
  readonly mapInfo: () => LatencyMap
  readonly measurementCounters: () => { readonly accepted: number; readonly rejected: number; readonly compiles: number; readonly lastCompileSec: number | undefined }
  readonly ready: HealthService['ready']
  readonly recentDecisions: RecentDecisions
  readonly nowMs: () => number
  readonly log: Logger
  readonly version: string
  /** Runs once the services exist, before the API listens (timers). */
  readonly beforeListen?: () => void
}

/** Adds explain, health, metrics and decisions to `parts` and listens on api.listen unless it is "". */
export async function listenApi(opts: ListenApiOptions): Promise<{ apiAddress: ControlPlane['apiAddress']; services: ControlServices; close(): Promise<void> }> {
  const { config, nowMs } = opts
  const metrics = createMetrics({
    ...opts.metricSources,
    map: () => {
      const map = opts.mapInfo()
      return { version: map.version, entries: map.size, ageSec: map.generatedAtMs === undefined ? undefined : (nowMs() - map.generatedAtMs) / 1000 }
    },
    measurements: () => ({ ...opts.measurementCounters(), estimators: 0 }),
  })
  const services: ControlServices = {
    ...opts.parts,
    explain: createExplainService(opts.steering, nowMs),
    health: { ready: opts.ready },
    metrics,
    decisions: { recent: (limit) => opts.recentDecisions.list(limit, opts.steering.current().setup) },
  }
  opts.beforeListen?.()
  let app: FastifyInstance | undefined
  let apiAddress: ControlPlane['apiAddress']
  if (config.api.listen !== '') {
    app = await buildControlApp({ api: config.api, services, logger: opts.log.child({ module: 'api' }), version: opts.version })
    const { host, port } = splitHostPort(config.api.listen)
    await app.listen({ host, port })
    const bound = app.server.address()
    apiAddress = { host, port: typeof bound === 'object' && bound ? bound.port : port }
    opts.log.info({ api: `${host.includes(':') ? `[${host}]` : host}:${apiAddress.port}`, tokens: config.api.tokens.map((t) => t.name) }, 'control plane listening')
  }
  return {
    apiAddress,
    services,
    async close() {
      await app?.close()
    },
  }
}

function splitHostPort(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':')
  const host = text.slice(0, colon).replace(/^\[|\]$/g, '')
  return { host, port: Number(text.slice(colon + 1)) }
}

async function loadIfExists(file: string, resolveTarget: (id: string) => number | undefined): Promise<LatencyMap | undefined> {
  try {
    return await loadMapFile(file, resolveTarget)
  } catch (err) {
    if (err instanceof MapError && err.code === MapErrorCode.UNREADABLE && (err.cause as NodeJS.ErrnoException)?.code === 'ENOENT') return undefined
    throw err
  }
}

function overrideFits(record: OperatorSnapshot['overrides'][number]['record'], setup: SteeringSetup): boolean {
  return record.kind === 'pin' ? record.targets.every((id) => setup.targetIndex.has(id)) : setup.targetIndex.has(record.target)
}
