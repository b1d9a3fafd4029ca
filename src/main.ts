/**
 * Composition root: config → logger → zone store → query handler → listeners,
 * plus the signals that drive reloads and shutdown. The only file that knows
 * every module; nothing imports it except the CLI and tests.
 */
import type { SteerdnsConfig } from './config/index.js'
import { greatCircleKm, openGeoDatabase, watchGeoDatabase } from './geo/index.js'
import type { GeoDatabase, GeoWatcher } from './geo/index.js'
import { createAcl, createRrl, parseCookieSecret, randomCookieSecret } from './guard/index.js'
import { randomBytes } from 'node:crypto'
import { buildChaosRecords, createQueryHandler, RecentDecisions } from './query/index.js'
import type { GuardDeps, QueryLogEntry } from './query/index.js'
import { formatListenAddress, parseListenAddress, startListeners } from './server/index.js'
import type { ListenAddress, Listeners } from './server/index.js'
import { createLogger, createQueryCounters } from './telemetry/index.js'
import type { Logger, QueryCounters } from './telemetry/index.js'
import { buildSteeringSetup, createSteeringState, emptyLatencyMap, loadMapFile, MapError, MapErrorCode } from './steering/index.js'
import type { LatencyMap, MapReader, SteeringSetup, SteeringState } from './steering/index.js'
import { listenApi, openSharedPlane, restoreControlState, startControlPlane } from './services/index.js'
import type { ControlPlane, StartControlPlaneOptions } from './services/index.js'
import { createZoneStore } from './zone/index.js'
import { createFollower } from './services/index.js'
import { countersToJson } from './cluster/counters-json.js'
import { createIpcFeed } from './cluster/ipc-feed.js'
import type { IpcChannel } from './cluster/ipc-feed.js'
import { isPrimaryMessage } from './cluster/ipc-messages.js'
import { resolveListenPorts } from './cluster/resolve-ports.js'
import { createStateSource, observeSteering } from './cluster/state-source.js'
import { startWorkerPool } from './cluster/worker-pool.js'
import type { WorkerPool } from './cluster/worker-pool.js'
import type { ZoneReloadOutcome, ZoneStore } from './zone/index.js'

export interface RunningServer {
  /** Bound addresses with real ports (port 0 resolved). */
  readonly listening: readonly ListenAddress[]
  readonly zones: ZoneStore
  readonly counters: QueryCounters
  readonly logger: Logger
  /** Outcomes of the initial zone load (errors included). */
  readonly initialZones: readonly ZoneReloadOutcome[]
  readonly steering: SteeringState
  /** The control plane: API (when api.listen is set), services, restored state. */
  readonly control: ControlPlane
  /** Re-reads every zone file and the map file (what SIGHUP does); a bad map keeps the previous one. */
  reload(): Promise<ZoneReloadOutcome[]>
  close(): Promise<void>
}

export interface StartOptions {
  readonly config: SteerdnsConfig
  /** Map file to import instead of config.map.file (`serve --map`). */
  readonly mapFile?: string
  /** Clock for map staleness, expiries and measurements; tests inject one. */
  readonly nowMs?: () => number
  /** Log destination; stdout by default. */
  readonly logDestination?: NodeJS.WritableStream
}

/** Starts a server. Rejects if a listen address cannot be bound; zone errors are logged, not fatal. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  if (opts.config.store.kind === 'redis') return startSharedServer(opts)
  const { config } = opts
  const logger = serverLogger(opts)
  const steeringLog = logger.child({ module: 'steering' })
  const nowMs = opts.nowMs ?? Date.now
  // The map comes from the state directory (what served last), else --map or map.file.
  const { setup, geo } = await loadSteering(config, undefined, steeringLog)
  const restore = await restoreControlState({ config, setup, explicitMapFile: opts.mapFile, nowMs, log: logger.child({ module: 'state' }) })
  const ownSteering = createSteeringState({ setup, map: restore.map, geo, distanceKm: greatCircleKm })
  // dns.workers > 1: every published change is announced to the worker processes.
  const workerCount = config.dns.workers
  const pool: { current?: WorkerPool } = {}
  const observed = workerCount > 1 ? observeSteering(ownSteering, () => pool.current?.announce(observed?.version() ?? 0)) : undefined
  const steering = observed?.steering ?? ownSteering
  // Overrides and admin states are published here, before any listener opens.
  const restored = restore.attach(steering)
  if (opts.mapFile) await restored.measurement.importFile(restore.map)
  // Health before the first query: persisted states, then one round of checks (bounded).
  await restored.health.begin()
  restored.operator.publishTargetStates()
  const closeState = async (): Promise<void> => {
    await restored.health.close()
    await restored.measurement.close()
    await restored.operator.close()
    await restored.stateDir.close()
  }
  // Release the state directory (its lock) and the checker: a failed start leaves nothing running.
  const data = await startDataPlane({ config, steering, setup, geo, logger, steeringLog, opts, withListeners: workerCount <= 1, onFailure: closeState })
  let listening = data.listening
  let metricSources = data.metricSources
  if (observed) {
    try {
      const listen = await resolveListenPorts(config.listen.map(parseListenAddress))
      const workerConfig = workerConfigFor(config, listen.map(formatListenAddress), workerCount)
      pool.current = await startWorkerPool({
        count: workerCount,
        workerConfig: () => workerConfig,
        source: createStateSource({ restored: () => restored, setup, version: observed.version, mapSerial: observed.mapSerial }),
        recentDecisions: data.recentDecisions,
        log: logger.child({ module: 'workers' }),
      })
      listening = listen
      const workers = pool.current
      metricSources = {
        ...data.metricSources,
        queries: workers.counters,
        tcpConnections: () => workers.tcpConnections(),
        ...(config.guard.rrl.enabled ? { rrl: () => workers.rrl() ?? { sent: 0, dropped: 0, slipped: 0, accounts: 0 } } : {}),
        workers: () => workers.workers(),
      }
    } catch (err) {
      await data.close()
      await closeState()
      throw err
    }
  }
  let control: ControlPlane
  try {
    control = await startControlPlane({
      config,
      restored,
      steering,
      metricSources,
      ready: data.zonesReady,
      nowMs,
      log: logger,
      version: SOFTWARE_VERSION,
      recentDecisions: data.recentDecisions,
    })
  } catch (err) {
    await pool.current?.close()
    await data.close()
    await closeState()
    throw err
  }
  return {
    listening,
    zones: data.store,
    counters: pool.current?.counters ?? data.counters,
    logger,
    initialZones: data.outcomes,
    steering,
    control,
    async reload() {
      // SIGHUP re-reads the map file (--map, else map.file) as an import: the operator asked for it.
      const mapFile = opts.mapFile ?? config.map.file
      if (mapFile) await reloadMap(mapFile, setup, restored.measurement, steeringLog)
      pool.current?.reload()
      return data.store.reload()
    },
    async close() {
      await pool.current?.close()
      await data.close()
      await control.close()
    },
  }
}

/**
 * What a DNS worker process serves: this configuration on the resolved
 * addresses, one shared cookie secret (a random one per process would make
 * every worker refuse the others' cookies), and the RRL rates divided among
 * the workers. SO_REUSEPORT spreads a client's queries over the workers by
 * source port, which resolvers randomise (RFC 5452), so each worker seeing
 * 1/N of a client's rate is what keeps the configured rate per client.
 */
function workerConfigFor(config: SteerdnsConfig, listen: readonly string[], workers: number): SteerdnsConfig {
  const share = (perSecond: number): number => Math.max(1, Math.ceil(perSecond / workers))
  const rrl = config.guard.rrl
  const cookies = config.guard.cookies
  return {
    ...config,
    listen,
    // A worker never opens the API, the state directory or health checks: the primary does.
    api: { ...config.api, listen: '' },
    guard: {
      ...config.guard,
      cookies: { ...cookies, secret: cookies.enabled && cookies.secret === '' ? randomBytes(16).toString('hex') : cookies.secret },
      rrl: {
        ...rrl,
        responsesPerSecond: share(rrl.responsesPerSecond),
        nxdomainsPerSecond: share(rrl.nxdomainsPerSecond),
        errorsPerSecond: share(rrl.errorsPerSecond),
        referralsPerSecond: rrl.referralsPerSecond === undefined ? undefined : share(rrl.referralsPerSecond),
      },
    },
  }
}

/** A running DNS worker process (cluster/worker-main.ts). */
export interface DnsWorker {
  close(): Promise<void>
}

/** Worker reports to the primary this often: its counters and decisions in /metrics and /v1/decisions lag by at most this. */
const WORKER_REPORT_INTERVAL_MS = 1000
/** The follower's safety poll of the primary (announcements are the normal path). */
const WORKER_POLL_INTERVAL_MS = 5000

/**
 * A DNS worker (dns.workers > 1): follows the primary's published state over
 * IPC, then answers on the configured addresses with SO_REUSEPORT UDP
 * sockets. Rejects if the first state does not arrive or an address cannot
 * be bound; the primary then stops.
 */
export async function startDnsWorker(w: { config: SteerdnsConfig; workerId: number; channel: IpcChannel }): Promise<DnsWorker> {
  const { config } = w
  const logger = createLogger({ level: config.log.level, identity: config.identity }).child({ worker: w.workerId })
  const steeringLog = logger.child({ module: 'steering' })
  const loaded = await loadSteering(config, undefined, steeringLog)
  const { setup, geo } = loaded
  const initialMap = loaded.map as LatencyMap
  const steering = createSteeringState({ setup, map: initialMap, geo, distanceKm: greatCircleKm })
  const feed = createIpcFeed(w.channel)
  const follower = createFollower({
    feed,
    steering,
    setup,
    initialMap,
    initialSource: 'empty',
    overloadWatermark: config.health.overloadWatermark,
    pollIntervalMs: WORKER_POLL_INTERVAL_MS,
    nowMs: Date.now,
    log: logger.child({ module: 'follower' }),
  })
  await follower.start(async () => true)
  if (!follower.applied()) {
    await follower.close()
    throw new Error('the primary process sent no state')
  }
  const data = await startDataPlane({ config, steering, setup, geo, logger, steeringLog, opts: { config }, withListeners: true, reusePort: true, onFailure: () => follower.close() })
  let cursor = data.recentDecisions.recorded
  const report = (): void => {
    const decisions = data.recentDecisions.since(cursor)
    cursor = data.recentDecisions.recorded
    w.channel.send({
      steerdns: 'report',
      counters: countersToJson(data.counters, { tcpConnections: data.metricSources.tcpConnections?.() ?? 0, ...(data.metricSources.rrl ? { rrl: data.metricSources.rrl() } : {}) }),
      decisions,
      mapVersion: follower.currentMap().version,
      stateVersion: follower.applied()?.version ?? 0,
    })
  }
  const timer = setInterval(report, WORKER_REPORT_INTERVAL_MS)
  timer.unref()
  const onMessage = (message: unknown): void => {
    if (isPrimaryMessage(message) && message.steerdns === 'reload') {
      data.store.reload().catch((err: unknown) => logger.error({ err }, 'zone reload failed'))
    }
  }
  w.channel.on('message', onMessage)
  w.channel.send({ steerdns: 'ready', listening: data.listening.map(formatListenAddress) })
  return {
    async close() {
      clearInterval(timer)
      w.channel.off('message', onMessage)
      report()
      await data.close()
      await follower.close()
      await feed.close()
    },
  }
}

/**
 * store.kind redis: the state this node serves is the published one in the
 * shared store (services/shared-plane.ts). Role dns has no compile leader
 * and refuses writes; role control opens no DNS listener.
 */
async function startSharedServer(opts: StartOptions): Promise<RunningServer> {
  const { config } = opts
  const role = config.role
  const logger = serverLogger(opts)
  const steeringLog = logger.child({ module: 'steering' })
  const nowMs = opts.nowMs ?? Date.now
  // The configured map serves until the published state (or the one saved in the state directory) arrives.
  const mapFile = opts.mapFile ?? config.map.file
  const loaded = await loadSteering(config, mapFile, steeringLog)
  const { setup, geo } = loaded
  // loadSteering builds a LatencyMap (a file or the empty map); MapReader is its read-only face.
  const map = loaded.map as LatencyMap
  const steering = createSteeringState({ setup, map, geo, distanceKm: greatCircleKm })
  const shared = await openSharedPlane({
    config,
    role,
    setup,
    steering,
    initialMap: map,
    initialSource: mapFile && map.size > 0 ? 'file' : 'empty',
    nowMs,
    log: logger,
    compileDelayMs: testCompileDelayMs(),
  })
  logger.info({ role, store: shared.store.description, stateVersion: shared.follower.applied()?.version ?? null, mapVersion: shared.follower.currentMap().version }, 'shared state opened')
  const data = await startDataPlane({ config, steering, setup, geo, logger, steeringLog, opts, withListeners: role !== 'control', onFailure: () => shared.close() })
  let api: Awaited<ReturnType<typeof listenApi>>
  try {
    api = await listenApi({
      config,
      parts: shared.parts,
      steering,
      metricSources: data.metricSources,
      mapInfo: () => shared.follower.currentMap(),
      measurementCounters: () => shared.measurementCounters(),
      ready: () => {
        const zones = data.zonesReady()
        return shared.ready(zones.zonesOk, zones.reasons)
      },
      recentDecisions: data.recentDecisions,
      nowMs,
      log: logger,
      version: SOFTWARE_VERSION,
      beforeListen: () => shared.start(),
    })
  } catch (err) {
    await data.close()
    await shared.close()
    throw err
  }
  const control: ControlPlane = {
    apiAddress: api.apiAddress,
    services: api.services,
    restored: undefined,
    async close() {
      await api.close()
      await shared.close()
    },
  }
  return {
    listening: data.listening,
    zones: data.store,
    counters: data.counters,
    logger,
    initialZones: data.outcomes,
    steering,
    control,
    // The map comes from the shared store (PUT /v1/map imports one): SIGHUP reloads zones only.
    reload: () => data.store.reload(),
    async close() {
      await data.close()
      await control.close()
    },
  }
}

/** The process's logger: the configured level, the identity on every line, stdout unless a test gave a destination. */
function serverLogger(opts: StartOptions): Logger {
  return createLogger({
    level: opts.config.log.level,
    identity: opts.config.identity,
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  })
}

/** STEERDNS_TEST_COMPILE_DELAY_MS: a pause between compiling and publishing, for tests that kill a node mid-compile. Unset (0) in production. */
function testCompileDelayMs(): number {
  const value = Number(process.env['STEERDNS_TEST_COMPILE_DELAY_MS'] ?? 0)
  return Number.isFinite(value) && value > 0 ? Math.min(value, 60_000) : 0
}

interface DataPlane {
  readonly listening: readonly ListenAddress[]
  readonly store: ZoneStore
  readonly counters: QueryCounters
  readonly outcomes: readonly ZoneReloadOutcome[]
  readonly recentDecisions: RecentDecisions
  readonly metricSources: StartControlPlaneOptions['metricSources']
  zonesReady(): { zonesOk: boolean; reasons: string[] }
  close(): Promise<void>
}

/**
 * Zones, the query handler and (withListeners) the UDP/TCP listeners, the
 * zone poller and the geo watcher. On a listen failure, runs `onFailure` and
 * rethrows.
 */
async function startDataPlane(d: {
  config: SteerdnsConfig
  steering: SteeringState
  setup: SteeringSetup
  geo: GeoDatabase | undefined
  logger: Logger
  steeringLog: Logger
  opts: StartOptions
  withListeners: boolean
  /** SO_REUSEPORT on the UDP sockets (worker processes share the addresses). */
  reusePort?: boolean
  onFailure: () => Promise<void>
}): Promise<DataPlane> {
  const { config, steering, setup, logger, opts } = d
  const nowMs = opts.nowMs ?? Date.now
  const { store, outcomes } = await createZoneStore(config.zones, logger.child({ module: 'zone' }))
  const counters = createQueryCounters()
  const guard = buildGuard(config.guard)
  const recentDecisions = new RecentDecisions()
  const internalLog = logger.child({ module: 'query' })
  const queryLog = logger.child({ module: 'querylog' })
  const handler = createQueryHandler({
    zones: () => store.current(),
    ...(setup.services.size > 0 ? { steering: () => steering.current() } : {}),
    ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
    chaos: buildChaosRecords({ identity: config.identity, version: config.dns.version }),
    nsid: config.dns.nsid ? Buffer.from(config.identity, 'utf8') : undefined,
    maxUdpResponseBytes: config.dns.maxUdpResponseBytes,
    counters,
    onInternalError: (err) => internalLog.error({ err }, 'query handler failed; answered SERVFAIL'),
    ...(config.log.queries ? { queryLog: (entry: QueryLogEntry) => queryLog.info(entry, 'query'), queryLogSampleRate: config.log.querySampleRate } : {}),
    guard,
    debugNames: { identity: config.identity, debugAcl: createAcl(config.guard.acl.debug) },
    recentDecisions,
  })
  let listeners: Listeners | undefined
  if (d.withListeners) {
    try {
      listeners = await startListeners(config.listen.map(parseListenAddress), handler, config.guard.tcp, logger.child({ module: 'server' }), { reusePort: d.reusePort === true })
    } catch (err) {
      await d.onFailure()
      throw err
    }
  }
  const stopWatching = config.dns.zonePollIntervalMs > 0 ? store.watch(config.dns.zonePollIntervalMs) : () => {}
  const geoWatcher = config.geo.city ? watchGeo(config.geo.city, steering, d.steeringLog) : undefined
  const rrl = guard.rrl
  return {
    listening: listeners?.bound ?? [],
    store,
    counters,
    outcomes,
    recentDecisions,
    metricSources: {
      queries: counters,
      ...(rrl ? { rrl: () => ({ ...rrl.counters, accounts: rrl.size }) } : {}),
      tcpConnections: () => listeners?.tcpConnectionCount() ?? 0,
      targets: () => {
        const states = steering.current().targetStates
        const now = nowMs()
        return states ? setup.targets.map((_, i) => states.describe(i, now)) : []
      },
    },
    zonesReady() {
      const failed = store.current().zones.length < config.zones.length
      return { zonesOk: !failed, reasons: failed ? ['a configured zone failed to load (see the log)'] : [] }
    },
    async close() {
      stopWatching()
      geoWatcher?.stop()
      await listeners?.close()
    },
  }
}

/** Reported in OpenAPI and logs. */
const SOFTWARE_VERSION = '0.1.0'

/** The guard stage from its config section. Throws coded errors for bad secrets or CIDRs (config/ checks them first). */
export function buildGuard(g: SteerdnsConfig['guard']): GuardDeps {
  const secret = (text: string): Uint8Array | undefined => (text === '' ? undefined : parseCookieSecret(text))
  return {
    // No configured secret: a random one per process (fine for one node; an
    // anycast set needs the same secret everywhere, RFC 9018 section 4).
    cookieSecrets: g.cookies.enabled ? { current: secret(g.cookies.secret) ?? randomCookieSecret(), previous: secret(g.cookies.previousSecret) } : undefined,
    requireCookie: g.cookies.require,
    rrl: g.rrl.enabled ? createRrl({ ...g.rrl, referralsPerSecond: g.rrl.referralsPerSecond ?? g.rrl.responsesPerSecond }) : undefined,
    noCookieMaxUdpBytes: g.noCookieMaxUdpBytes,
    chaosAcl: createAcl(g.acl.chaos),
  }
}

/** What a steering snapshot is built from. */
export interface LoadedSteering {
  readonly setup: SteeringSetup
  readonly map: MapReader
  readonly geo: GeoDatabase | undefined
}

/**
 * Compiles targets and services and loads the map and geo database the config
 * names. A missing map file is an empty map (first start); an invalid one, or
 * an unusable geo database, throws (MapError / STEER_ERR_GEO_*), naming the file.
 */
export async function loadSteering(config: SteerdnsConfig, mapFile: string | undefined, log: Logger): Promise<LoadedSteering> {
  const setup = buildSteeringSetup(config)
  let map: MapReader = emptyLatencyMap()
  if (mapFile) {
    try {
      map = await loadMapFile(mapFile, (id) => setup.targetIndex.get(id))
      log.info({ file: mapFile, version: map.version }, 'map loaded')
    } catch (err) {
      if (!(err instanceof MapError && err.code === MapErrorCode.UNREADABLE && (err.cause as NodeJS.ErrnoException)?.code === 'ENOENT')) throw err
      log.warn({ file: mapFile }, 'map file does not exist yet: starting with an empty map')
    }
  }
  const geo = config.geo.city ? await openGeoDatabase(config.geo.city, { layout: 'city' }) : undefined
  return { setup, map, geo }
}

async function reloadMap(file: string, setup: SteeringSetup, measurement: { importFile(map: LatencyMap): Promise<void> }, log: Logger): Promise<void> {
  try {
    const map = await loadMapFile(file, (id) => setup.targetIndex.get(id))
    await measurement.importFile(map)
    log.info({ file, version: map.version }, 'map reloaded')
  } catch (err) {
    const problems = err instanceof MapError ? err.problems.length : 1
    log.error({ file, problems, err: (err as Error).message }, 'map rejected; the previous map keeps serving')
  }
}

/** Geo files are replaced by downloads and copies: wait until one stops changing before reading it. */
const GEO_POLL_INTERVAL_MS = 5000
const GEO_SETTLE_MS = 2000

function watchGeo(file: string, steering: SteeringState, log: Logger): GeoWatcher {
  return watchGeoDatabase(file, {
    pollIntervalMs: GEO_POLL_INTERVAL_MS,
    settleMs: GEO_SETTLE_MS,
    loadAtStart: false,
    openOptions: { layout: 'city' },
    onLoad: (db) => {
      steering.setGeo(db)
      log.info({ file, buildEpochSec: db.metadata.buildEpochSec }, 'geo database reloaded')
    },
    onError: (err) => log.error({ file, err: err.message }, 'geo database rejected; the previous one keeps serving'),
  })
}
