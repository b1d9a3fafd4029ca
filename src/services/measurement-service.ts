/**
 * Measurements in, map out. A batch is validated report by report; the
 * accepted ones are appended to the `measurements` journal (fsynced: an
 * acknowledged batch survives kill -9) and folded into the aggregator. Every
 * compileIntervalSec, if anything arrived, the aggregator compiles a new map,
 * which is written to the state directory before the data plane sees it, so a
 * restart never serves an older version than was served. The aggregator state
 * is checkpointed into the journal now and then, which bounds replay at start.
 *
 * An imported map (PUT /v1/map) serves until measurements arrive after it.
 */
import { ApiProblem } from '../control/index.js'
import type { Caller, MapService, MapSummary, MeasurementsService, ProbeService } from '../control/index.js'
import type { AcceptedReport, Aggregator, AggregatorSnapshot } from '../measure/index.js'
import type { Journal } from '../state/index.js'
import { writeFileAtomic } from '../state/index.js'
import { formatMapJson, MapError, mapToJson, parseMapJson } from '../steering/index.js'
import type { LatencyMap, SteeringSetup, SteeringState } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { summarizeMap } from './map-summary.js'
import { validateBatchForApi } from './measurement-batch.js'
import { createProbeService } from './probe-service.js'
import { encodeReports } from './report-codec.js'
import type { ReportBatchRecord } from './report-codec.js'

export type MapSource = MapSummary['source']

export interface MeasurementServiceDeps {
  /** Replayed already; its records folded into `aggregator`. */
  readonly journal: Journal<ReportBatchRecord, AggregatorSnapshot>
  readonly aggregator: Aggregator
  readonly setup: SteeringSetup
  readonly steering: SteeringState
  /** Reports replayed from the journal after its last checkpoint (they may postdate the saved map). */
  readonly replayedReports: number
  /** The map serving at start, and where it came from. */
  readonly initialMap: LatencyMap
  readonly initialSource: MapSource
  /** Where the serving map is persisted (state directory). */
  readonly mapFile: string
  readonly measure: { readonly compileIntervalSec: number; readonly maxAgeSec: number }
  readonly map: { readonly ipv4Prefix: number; readonly ipv6Prefix: number; readonly staleAfterSec: number }
  readonly nowMs: () => number
  readonly log: Logger
  /** Accepted reports, after they are durable (passive health). */
  readonly onAccepted?: (reports: readonly AcceptedReport[], nowMs: number) => void
  /** Audit entry for an import. */
  readonly onImport: (caller: Caller, version: number, entries: number) => Promise<void>
  /** Reports between aggregator checkpoints (default 200000), and the longest gap (default 300 s). */
  readonly checkpointEveryReports?: number
  readonly checkpointEverySec?: number
}

export interface MeasurementCounters {
  accepted: number
  rejected: number
  compiles: number
  lastCompileSec: number | undefined
}

export interface MeasurementService {
  readonly measurements: MeasurementsService
  readonly map: MapService
  readonly probe: ProbeService
  readonly counters: Readonly<MeasurementCounters>
  /** The serving map (export, metrics). */
  currentMap(): LatencyMap
  /** Compiles now if reports arrived since the last compile; resolves once published. */
  compileNow(): Promise<void>
  /** Replaces the map from a file (SIGHUP with `--map`); throws MapError and keeps the old one on a bad file. */
  importFile(map: LatencyMap): Promise<void>
  /** Starts the compile timer. */
  start(): void
  /** Stops the timer, checkpoints and closes the journal. */
  close(): Promise<void>
}

export function createMeasurementService(deps: MeasurementServiceDeps): MeasurementService {
  const { journal, aggregator, setup, steering, nowMs, log } = deps
  const targetId = (index: number): string => setup.targets[index]?.id ?? `#${index}`
  const checkpointEveryReports = deps.checkpointEveryReports ?? 200_000
  const checkpointEveryMs = (deps.checkpointEverySec ?? 300) * 1000
  const counters: MeasurementCounters = { accepted: 0, rejected: 0, compiles: 0, lastCompileSec: undefined }
  let map = deps.initialMap
  let source: MapSource = deps.initialSource
  /**
   * Reports folded since the last compile: a compile without them would change nothing.
   * At start, reports replayed from the journal may postdate the saved map: compile once.
   */
  let dirty = deps.replayedReports > 0
  /** Appends awaiting their fsync: a checkpoint now would claim records not yet folded. */
  let appending = 0
  let sinceCheckpoint = 0
  let lastCheckpointMs = nowMs()
  let timer: NodeJS.Timeout | undefined
  /** Publishes (compile or import) run one at a time, in order. */
  let publishing: Promise<unknown> = Promise.resolve()
  let summaryCache: { map: LatencyMap; atSec: number; summary: MapSummary } | undefined

  async function persistAndPublish(next: LatencyMap, nextSource: MapSource): Promise<void> {
    // Written before it serves: after a crash the state directory holds at least the served version.
    await writeFileAtomic(deps.mapFile, formatMapJson(next, targetId))
    map = next
    source = nextSource
    steering.setMap(next)
  }

  function serialize<T>(step: () => Promise<T>): Promise<T> {
    const run = publishing.then(step)
    publishing = run.catch(() => undefined)
    return run
  }

  function compileNow(): Promise<void> {
    return serialize(async () => {
      if (!dirty) return
      dirty = false
      // In ~10 ms slices: a 100k-prefix compile holds the thread 0.3-0.6 s in one piece, which
      // would stall every DNS query behind it (bench/compile-map.mjs).
      const result = await aggregator.compileAsync(nowMs(), { previousVersion: map.version })
      counters.compiles++
      counters.lastCompileSec = result.stats.durationMs / 1000
      try {
        await persistAndPublish(result.map, 'compiled')
      } catch (err) {
        // Not published (a full disk): compile again at the next interval, not only after new reports.
        dirty = true
        throw err
      }
      log.info({ version: result.map.version, ...result.stats }, 'map compiled and published')
      await maybeCheckpoint()
    })
  }

  /**
   * After an import: the reports folded so far predate the imported map, so
   * a restart must not replay them as news and compile over it (an imported
   * map serves until measurements arrive after it). A checkpoint now puts
   * them behind the replay point. Skipped (and logged) when appends are in
   * flight: those few would be replayed.
   */
  async function checkpointAfterImport(): Promise<void> {
    if (appending > 0) {
      log.warn({ appending }, 'map imported while measurements were being written: a restart before the next checkpoint may compile over the import')
      return
    }
    try {
      await maybeCheckpoint(true)
    } catch (err) {
      log.error({ err }, 'checkpoint after the map import failed: a restart before the next checkpoint may compile over the import')
    }
  }

  async function maybeCheckpoint(force = false): Promise<void> {
    if (appending > 0) return
    if (!force && sinceCheckpoint < checkpointEveryReports && nowMs() - lastCheckpointMs < checkpointEveryMs) return
    if (sinceCheckpoint === 0 && !force) return
    sinceCheckpoint = 0
    lastCheckpointMs = nowMs()
    // Taken synchronously here, after every acknowledged append was folded (appending is 0).
    await journal.checkpoint(aggregator.snapshot())
  }

  const measurements: MeasurementsService = {
    async ingest(body, caller) {
      const at = nowMs()
      const batch = validateBatchForApi(body, caller, { setup, nowMs: at, measure: deps.measure, map: deps.map })
      counters.rejected += batch.rejected.length
      if (batch.reports.length > 0) {
        appending++
        try {
          await journal.append([encodeReports(batch.reports, targetId)])
          aggregator.add(batch.reports)
          deps.onAccepted?.(batch.reports, nowMs())
        } finally {
          appending--
        }
        counters.accepted += batch.reports.length
        sinceCheckpoint += batch.reports.length
        dirty = true
      }
      return { accepted: batch.reports.length, rejected: batch.rejected }
    },
  }

  const mapService: MapService = {
    summary() {
      const atSec = Math.floor(nowMs() / 1000)
      if (summaryCache && summaryCache.map === map && summaryCache.atSec === atSec) return { ...summaryCache.summary, source }
      const summary = summarizeMap(map, source, nowMs(), deps.map.staleAfterSec)
      summaryCache = { map, atSec, summary }
      return summary
    },
    exportJson: () => mapToJson(map, targetId),
    importJson(body, caller) {
      return serialize(async () => {
        let next: LatencyMap
        try {
          // Versions only move forward, whatever the imported document says.
          const version = Math.max(map.version + 1, typeof (body as { version?: unknown }).version === 'number' ? ((body as { version: number }).version) : 0)
          next = parseMapJson({ ...(body as object), version }, (id) => setup.targetIndex.get(id)) as LatencyMap
        } catch (err) {
          if (err instanceof MapError) {
            const problems = err.problems.map((p) => ({ field: p.path ? `body.${p.path}` : 'body', message: p.message }))
            const first = problems[0] ?? { field: 'body', message: err.message }
            throw new ApiProblem(400, first.field, first.message, problems)
          }
          throw err
        }
        await persistAndPublish(next, 'imported')
        dirty = false
        await checkpointAfterImport()
        await deps.onImport(caller, next.version, next.size)
        log.info({ version: next.version, entries: next.size, by: caller.name }, 'map imported')
        return mapService.summary()
      })
    },
  }

  const probe = createProbeService({ setup, steering, map: deps.map, nowMs, estimates: (prefix, now) => aggregator.prefixEstimates(prefix, now) })

  return {
    measurements,
    map: mapService,
    probe,
    counters,
    currentMap: () => map,
    compileNow,
    importFile: (next) =>
      serialize(async () => {
        await persistAndPublish(next, 'file')
        dirty = false
        await checkpointAfterImport()
      }),
    start() {
      timer = setInterval(() => {
        compileNow().catch((err: unknown) => log.error({ err }, 'map compile failed; the previous map keeps serving'))
      }, deps.measure.compileIntervalSec * 1000)
      timer.unref()
    },
    async close() {
      if (timer) clearInterval(timer)
      await publishing
      try {
        await maybeCheckpoint(true)
      } catch (err) {
        log.error({ err }, 'aggregator checkpoint at shutdown failed; the journal still holds every report')
      }
      await journal.close()
    },
  }
}
