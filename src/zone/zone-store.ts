/**
 * Owns the served zones over time: loads every configured zone file, publishes a
 * new ZoneSet snapshot, and reloads on demand (SIGHUP) or when a file changes.
 * A zone whose new text has errors keeps serving its previous version; the
 * problems are reported with file and line. Control plane only: async I/O here,
 * never on the query path.
 */
import { stat } from 'node:fs/promises'
import type { Logger } from '../telemetry/index.js'
import { loadZoneFile } from './load-zone-file.js'
import { formatProblem } from './check-zone.js'
import type { ZoneProblem } from './zone-problem.js'
import { buildZone } from './zone-tree.js'
import type { Zone } from './zone-tree.js'
import { ZoneSet } from './zone-set.js'

export interface ZoneSpec {
  /** Internal form (lowercase, no trailing dot). */
  readonly origin: string
  readonly file: string
}

export interface ZoneReloadOutcome {
  readonly origin: string
  /** loaded: new version serving; unchanged: files untouched; kept: errors, previous version serving; failed: errors, nothing to serve. */
  readonly status: 'loaded' | 'unchanged' | 'kept' | 'failed'
  readonly problems: readonly ZoneProblem[]
  readonly serial: number | undefined
}

export interface ZoneStore {
  /** The snapshot to answer from. Cheap: returns a reference. */
  current(): ZoneSet
  /** Re-reads zone files (all, or only changed ones) and publishes a new snapshot if anything changed. */
  reload(opts?: { onlyChanged?: boolean }): Promise<ZoneReloadOutcome[]>
  /** Polls file modification times and reloads changed zones; returns a stop function. */
  watch(intervalMs: number): () => void
}

interface ZoneState {
  readonly spec: ZoneSpec
  zone: Zone | undefined
  /** file → "mtimeMs:size" of every file read for the serving version. */
  fingerprints: Map<string, string>
}

/**
 * Loads every zone and returns the store. A zone with errors is not served and
 * is reported through the logger and the returned outcomes (like Knot and BIND,
 * the other zones still load). Never throws for zone content.
 */
export async function createZoneStore(
  specs: readonly ZoneSpec[],
  logger: Logger,
): Promise<{ store: ZoneStore; outcomes: ZoneReloadOutcome[] }> {
  const states: ZoneState[] = specs.map((spec) => ({ spec, zone: undefined, fingerprints: new Map() }))
  let snapshot = new ZoneSet([], 0)
  let reloading: Promise<ZoneReloadOutcome[]> | undefined

  async function reloadAll(onlyChanged: boolean): Promise<ZoneReloadOutcome[]> {
    const outcomes = await Promise.all(states.map((s) => reloadOne(s, onlyChanged, logger)))
    if (outcomes.some((o) => o.status === 'loaded')) {
      const zones = states.flatMap((s) => (s.zone ? [s.zone] : []))
      snapshot = new ZoneSet(zones, snapshot.version + 1)
      logger.info({ version: snapshot.version, zones: zones.length }, 'zones published')
    }
    return outcomes
  }

  const store: ZoneStore = {
    current: () => snapshot,
    reload(opts) {
      // One reload at a time: a SIGHUP during a poll waits for it rather than racing it.
      const run = (reloading ?? Promise.resolve([])).then(() => reloadAll(opts?.onlyChanged ?? false))
      reloading = run.finally(() => {
        if (reloading === run) reloading = undefined
      })
      return run
    },
    watch(intervalMs) {
      const timer = setInterval(() => {
        store.reload({ onlyChanged: true }).catch((err: unknown) => logger.error({ err }, 'zone poll failed'))
      }, intervalMs)
      timer.unref()
      return () => clearInterval(timer)
    },
  }
  const outcomes = await store.reload()
  return { store, outcomes }
}

async function reloadOne(state: ZoneState, onlyChanged: boolean, logger: Logger): Promise<ZoneReloadOutcome> {
  const { origin, file } = state.spec
  if (onlyChanged && state.fingerprints.size > 0 && !(await filesChanged(state.fingerprints))) {
    return { origin, status: 'unchanged', problems: [], serial: state.zone?.serial }
  }
  const result = await loadZoneFile(origin, file)
  const errors = result.problems.filter((p) => p.severity === 'error')
  for (const p of result.problems) {
    logger[p.severity === 'error' ? 'error' : 'warn']({ zone: origin, file: p.file, line: p.line, code: p.code }, formatProblem(p))
  }
  let zone: Zone | undefined
  if (errors.length === 0) {
    try {
      zone = buildZone(result.origin, result.records)
    } catch (err) {
      logger.error({ zone: origin, err }, 'zone build failed')
    }
  }
  if (!zone) {
    const status = state.zone ? 'kept' : 'failed'
    logger.error({ zone: origin, status, errors: errors.length }, state.zone ? 'zone has errors; previous version keeps serving' : 'zone has errors; not served')
    // Remember the broken files' fingerprints so the poll does not re-report them every tick.
    state.fingerprints = await fingerprint(result.files)
    return { origin, status, problems: result.problems, serial: state.zone?.serial }
  }
  state.zone = zone
  state.fingerprints = await fingerprint(result.files)
  logger.info({ zone: origin, serial: zone.serial, records: result.records.length }, 'zone loaded')
  return { origin, status: 'loaded', problems: result.problems, serial: zone.serial }
}

async function fingerprint(files: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const f of files) {
    try {
      const s = await stat(f)
      out.set(f, `${s.mtimeMs}:${s.size}`)
    } catch {
      out.set(f, 'missing')
    }
  }
  return out
}

async function filesChanged(previous: Map<string, string>): Promise<boolean> {
  const now = await fingerprint([...previous.keys()])
  for (const [f, fp] of now) if (previous.get(f) !== fp) return true
  return false
}
