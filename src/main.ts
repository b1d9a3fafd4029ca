/**
 * Composition root: config → logger → zone store → query handler → listeners,
 * plus the signals that drive reloads and shutdown. The only file that knows
 * every module; nothing imports it except the CLI and tests.
 */
import type { SteerdnsConfig } from './config/index.js'
import { buildChaosRecords, createQueryHandler } from './query/index.js'
import type { QueryLogEntry } from './query/index.js'
import { parseListenAddress, startListeners } from './server/index.js'
import type { ListenAddress } from './server/index.js'
import { createLogger, createQueryCounters } from './telemetry/index.js'
import type { Logger, QueryCounters } from './telemetry/index.js'
import { createZoneStore } from './zone/index.js'
import type { ZoneReloadOutcome, ZoneStore } from './zone/index.js'

export interface RunningServer {
  /** Bound addresses with real ports (port 0 resolved). */
  readonly listening: readonly ListenAddress[]
  readonly zones: ZoneStore
  readonly counters: QueryCounters
  readonly logger: Logger
  /** Outcomes of the initial zone load (errors included). */
  readonly initialZones: readonly ZoneReloadOutcome[]
  /** Re-reads every zone file (what SIGHUP does). */
  reload(): Promise<ZoneReloadOutcome[]>
  close(): Promise<void>
}

export interface StartOptions {
  readonly config: SteerdnsConfig
  /** Log destination; stdout by default. */
  readonly logDestination?: NodeJS.WritableStream
}

/** Starts a server. Rejects if a listen address cannot be bound; zone errors are logged, not fatal. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { config } = opts
  const logger = createLogger({
    level: config.log.level,
    identity: config.identity,
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  })
  const { store, outcomes } = await createZoneStore(config.zones, logger.child({ module: 'zone' }))
  const counters = createQueryCounters()
  const internalLog = logger.child({ module: 'query' })
  const queryLog = logger.child({ module: 'querylog' })
  const handler = createQueryHandler({
    zones: () => store.current(),
    chaos: buildChaosRecords({ identity: config.identity, version: config.dns.version }),
    nsid: config.dns.nsid ? Buffer.from(config.identity, 'utf8') : undefined,
    maxUdpResponseBytes: config.dns.maxUdpResponseBytes,
    counters,
    onInternalError: (err) => internalLog.error({ err }, 'query handler failed; answered SERVFAIL'),
    ...(config.log.queries ? { queryLog: (entry: QueryLogEntry) => queryLog.info(entry, 'query') } : {}),
  })
  const listeners = await startListeners(
    config.listen.map(parseListenAddress),
    handler,
    config.guard.tcp,
    logger.child({ module: 'server' }),
  )
  const stopWatching = config.dns.zonePollIntervalMs > 0 ? store.watch(config.dns.zonePollIntervalMs) : () => {}
  return {
    listening: listeners.bound,
    zones: store,
    counters,
    logger,
    initialZones: outcomes,
    reload: () => store.reload(),
    async close() {
      stopWatching()
      await listeners.close()
    },
  }
}
