/**
 * Measurements and the map when the state lives in the shared store. Any
 * control node takes a batch: it is validated exactly as in local mode and
 * the accepted reports are appended to the measurements stream (XADD)
 * before the answer, so an acknowledged batch is in Redis (as durable as
 * Redis's appendfsync makes it). The compile leader folds them
 * (compile-leader.ts). Map reads show the map this node serves; an import
 * (PUT /v1/map) is published in one step with its audit entry, its version
 * above the published one.
 */
import { ApiProblem } from '../control/index.js'
import type { MapService, MeasurementsService, ProbeService } from '../control/index.js'
import type { SharedStore } from '../store/index.js'
import { StoreError, StoreErrorCode } from '../store/index.js'
import { formatMapJson, MapError, mapToJson, parseMapJson } from '../steering/index.js'
import type { LatencyMap, SteeringSetup, SteeringState } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import type { CompileLeader } from './compile-leader.js'
import type { Follower } from './follower.js'
import { summarizeMap } from './map-summary.js'
import type { MeasurementCounters } from './measurement-service.js'
import type { AuditRecord } from './operator-events.js'
import { validateBatchForApi } from './measurement-batch.js'
import { createProbeService } from './probe-service.js'
import { encodeReports } from './report-codec.js'
import { settleWithin, toApiProblem, withStore } from './store-problem.js'

export interface SharedMeasurementServiceDeps {
  readonly store: SharedStore
  readonly setup: SteeringSetup
  readonly steering: SteeringState
  readonly follower: Follower
  /** Undefined on a node without the control role. */
  readonly leader: CompileLeader | undefined
  readonly measure: { readonly maxAgeSec: number }
  readonly map: { readonly ipv4Prefix: number; readonly ipv6Prefix: number; readonly staleAfterSec: number }
  readonly timeoutMs: number
  readonly nowMs: () => number
  readonly log: Logger
  /** After an import this node published (the audit list changed). */
  readonly onImported?: () => Promise<void>
}

export interface SharedMeasurementService {
  readonly measurements: MeasurementsService
  readonly map: MapService
  readonly probe: ProbeService
  /** accepted/rejected: batches this node took; compiles: this node's, as leader. */
  counters(): MeasurementCounters
}

/** Import attempts when compiles keep publishing newer versions in between. */
const IMPORT_ATTEMPTS = 5

export function createSharedMeasurementService(deps: SharedMeasurementServiceDeps): SharedMeasurementService {
  const { store, setup, steering, follower, nowMs, log } = deps
  const targetId = (index: number): string => setup.targets[index]?.id ?? `#${index}`
  const taken = { accepted: 0, rejected: 0 }

  const measurements: MeasurementsService = {
    async ingest(body, caller) {
      const at = nowMs()
      const batch = validateBatchForApi(body, caller, { setup, nowMs: at, measure: deps.measure, map: deps.map })
      if (batch.reports.length > 0) {
        const record = encodeReports(batch.reports, targetId)
        await withStore(() => store.appendMeasurements(JSON.stringify(record)))
      }
      taken.accepted += batch.reports.length
      taken.rejected += batch.rejected.length
      return { accepted: batch.reports.length, rejected: batch.rejected }
    },
  }

  let summaryCache: { map: LatencyMap; atSec: number; summary: ReturnType<typeof summarizeMap> } | undefined
  const mapService: MapService = {
    summary() {
      const map = follower.currentMap()
      const atSec = Math.floor(nowMs() / 1000)
      if (summaryCache && summaryCache.map === map && summaryCache.atSec === atSec) return { ...summaryCache.summary, source: follower.currentSource() }
      const summary = summarizeMap(map, follower.currentSource(), nowMs(), deps.map.staleAfterSec)
      summaryCache = { map, atSec, summary }
      return summary
    },
    exportJson: () => mapToJson(follower.currentMap(), targetId),
    async importJson(body, caller) {
      try {
        for (let attempt = 0; attempt < IMPORT_ATTEMPTS; attempt++) {
          const current = await store.readMapVersion()
          let next: LatencyMap
          try {
            // Versions only move forward, whatever the imported document says.
            const version = Math.max(current + 1, follower.currentMap().version + 1, typeof (body as { version?: unknown }).version === 'number' ? (body as { version: number }).version : 0)
            next = parseMapJson({ ...(body as object), version }, (id) => setup.targetIndex.get(id)) as LatencyMap
          } catch (err) {
            if (err instanceof MapError) {
              const problems = err.problems.map((p) => ({ field: p.path ? `body.${p.path}` : 'body', message: p.message }))
              const first = problems[0] ?? { field: 'body', message: err.message }
              throw new ApiProblem(400, first.field, first.message, problems)
            }
            throw err
          }
          const at = nowMs()
          const audit: AuditRecord = { atMs: at, by: caller.name, address: caller.address, action: 'map.import', subject: `version ${next.version}`, reason: undefined, change: { version: next.version, entries: next.size } }
          const outcome = await store.publishMap({ fenced: false, mapVersion: next.version, mapJson: formatMapJson(next, targetId), source: 'imported', audit: JSON.stringify(audit) })
          if (outcome.status !== 'published') continue
          deps.leader?.noticeMapVersion(next.version)
          await settleWithin(follower.sync(), deps.timeoutMs)
          await settleWithin(deps.onImported?.() ?? Promise.resolve(), deps.timeoutMs)
          log.info({ version: next.version, entries: next.size, by: caller.name }, 'map imported')
          return mapService.summary()
        }
        throw new StoreError(StoreErrorCode.CONTENDED, `newer maps were published during the import ${IMPORT_ATTEMPTS} times in a row`)
      } catch (err) {
        throw toApiProblem(err)
      }
    },
  }

  // Only the compiling node holds estimates; elsewhere the recipe explores.
  const probe = createProbeService({ setup, steering, map: deps.map, nowMs, estimates: (prefix, now) => deps.leader?.estimates(prefix, now) })

  return {
    measurements,
    map: mapService,
    probe,
    counters: () => ({ ...taken, compiles: deps.leader?.counters.compiles ?? 0, lastCompileSec: deps.leader?.counters.lastCompileSec }),
  }
}
