/**
 * Reloads a geo database when its file changes. Polls size, mtime and inode;
 * a change is loaded once it has stayed the same for `settleMs` (a copy in
 * progress is not read half-way). A good new file is handed to onLoad; a bad
 * one to onError, and the caller keeps serving the database it has (this
 * module holds no snapshot and never swaps anything itself). Control plane
 * only: the query path never waits on it. Timers are unref'd.
 */
import { stat } from 'node:fs/promises'
import { GEO_ERROR, geoError } from './geo-error.js'
import { openGeoDatabase } from './geo-database.js'
import type { GeoDatabase, OpenGeoDatabaseOptions } from './geo-database.js'

export interface GeoWatchOptions {
  /** Time between checks of the file, ms. */
  readonly pollIntervalMs: number
  /** How long a changed file must stay unchanged before it is opened, ms. */
  readonly settleMs: number
  /** A new database opened and validated: swap it in. */
  readonly onLoad: (db: GeoDatabase) => void
  /** The file is missing, unreadable or invalid (a coded STEER_ERR_GEO_* error): keep the last good database. Once per change. */
  readonly onError: (err: Error) => void
  /** Open the file at once on start, without waiting to settle (default true). */
  readonly loadAtStart?: boolean
  /** Passed to openGeoDatabase (e.g. the expected layout). */
  readonly openOptions?: OpenGeoDatabaseOptions
  /** Clock for the settle time, ms (default Date.now); tests inject one and call checkNow(). */
  readonly nowMs?: () => number
  /** Schedules checks (default: unref'd setTimeout); tests may pass one that never fires. */
  readonly schedule?: (run: () => void, delayMs: number) => { cancel(): void }
}

export interface GeoWatcher {
  /**
   * Runs one check now (what each poll does), or joins the one already
   * running; resolves when any load it started has finished. Never rejects.
   */
  checkNow(): Promise<void>
  /** Stops polling; a load already running finishes but is not reported. */
  stop(): void
}

/** Starts watching `path`. Never throws; problems go to onError. */
export function watchGeoDatabase(path: string, options: GeoWatchOptions): GeoWatcher {
  const nowMs = options.nowMs ?? Date.now
  const schedule = options.schedule ?? scheduleUnref
  let stopped = false
  let timer: { cancel(): void } | undefined
  let running: Promise<void> | undefined
  /** Signature of the file last opened (loaded or rejected): not opened again until it changes. */
  let settled: string | undefined
  /** A change seen but not yet settled: its signature and when it was first seen. */
  let pending: { signature: string; sinceMs: number } | undefined
  let immediate = options.loadAtStart ?? true

  const check = async (): Promise<void> => {
    const signature = await fileSignature(path)
    if (signature === settled) {
      pending = undefined
      return
    }
    if (!immediate && (pending === undefined || pending.signature !== signature)) {
      pending = { signature, sinceMs: nowMs() }
      return
    }
    if (!immediate && nowMs() - (pending?.sinceMs ?? 0) < options.settleMs) return
    immediate = false
    pending = undefined
    if (signature.startsWith(UNREADABLE_PREFIX)) {
      settled = signature
      const why = signature.slice(UNREADABLE_PREFIX.length)
      report(() => options.onError(geoError(GEO_ERROR.UNREADABLE, `cannot read geo database ${path}: ${why}`)))
      return
    }
    try {
      const db = await openGeoDatabase(path, options.openOptions)
      // Changed while we read it: let the new version settle and load that instead.
      if ((await fileSignature(path)) !== signature) return
      settled = signature
      report(() => options.onLoad(db))
    } catch (err) {
      settled = signature
      report(() => options.onError(err as Error))
    }
  }

  const report = (deliver: () => void): void => {
    if (!stopped) deliver()
  }

  const checkNow = (): Promise<void> => {
    running ??= check()
      .catch((err: unknown) => report(() => options.onError(err as Error)))
      .finally(() => {
        running = undefined
      })
    return running
  }

  const poll = (): void => {
    timer = schedule(() => {
      void checkNow().then(() => {
        if (!stopped) poll()
      })
    }, options.pollIntervalMs)
  }

  void checkNow().then(() => {
    if (!stopped) poll()
  })
  return {
    checkNow,
    stop() {
      stopped = true
      timer?.cancel()
    },
  }
}

const UNREADABLE_PREFIX = 'unreadable:'

/**
 * Size, mtime (ns) and inode: any rewrite, in place or by rename, changes it.
 * A failed stat gives "unreadable:" and the error code (ENOENT, EACCES), so
 * the failure itself is reported once. Never throws.
 */
async function fileSignature(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true })
    return `${s.size}:${s.mtimeNs}:${s.ino}`
  } catch (err) {
    return `${UNREADABLE_PREFIX}${(err as NodeJS.ErrnoException).code ?? 'stat failed'}`
  }
}

function scheduleUnref(run: () => void, delayMs: number): { cancel(): void } {
  const handle = setTimeout(run, delayMs)
  handle.unref()
  return { cancel: () => clearTimeout(handle) }
}
