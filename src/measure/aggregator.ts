/**
 * The aggregator: estimators per (client prefix, target) and per (resolver
 * address, target), and the compiler that turns them into a LatencyMap
 * (DESIGN.md, "From measurements to the map"; the rules are in README.md).
 * Runs in the control plane, never on the query path: add() folds validated
 * reports, compile() publishes a new immutable map, snapshot() gives
 * everything needed to resume after a restart. Memory is bounded: a cap on
 * keys and on estimators, least recently updated keys evicted first. Pure
 * apart from its own state: the clock is an argument.
 */
import { performance } from 'node:perf_hooks'
import { formatAddress, LatencyMapBuilder, parseAddress, parseClientKey } from '../steering/index.js'
import type { LatencyMap } from '../steering/index.js'
import type { ClientPrefix } from './client-prefix.js'
import { DEFAULT_OUTLIER_FLOOR_MS, DEFAULT_OUTLIER_FLOOR_PCT, DEFAULT_OUTLIER_K, EstimatorTable, FOLD } from './estimator.js'
import type { EstimatorParams, EstimatorState } from './estimator.js'
import { MeasureError, MeasureErrorCode, measureError } from './measure-error.js'
import type { MeasureProblem } from './measure-error.js'
import type { AcceptedReport } from './report.js'

/** The `measure` config keys plus the target list; the rest have defaults. */
export interface AggregatorOptions {
  /** Target ids by index (the configuration's order); snapshots name targets by id. */
  readonly targetIds: readonly string[]
  /** measure.halfLifeSec (1800). */
  readonly halfLifeSec: number
  /** measure.minSamples (5): samples an estimator needs before it counts. */
  readonly minSamples: number
  /** measure.maxAgeSec (3600): an estimator whose newest sample is older does not count, and is dropped at compile. */
  readonly maxAgeSec: number
  /** measure.hysteresisPct (10): a challenger must beat a prefix's published best by more than this. */
  readonly hysteresisPct: number
  readonly outlierK?: number
  readonly outlierFloorMs?: number
  readonly outlierFloorPct?: number
  /** Outliers in a row (one side) that are believed as a level shift; default minSamples (at least 2). */
  readonly shiftSamples?: number
  /** Most keys (prefixes and resolvers) held; default 500000. */
  readonly maxKeys?: number
  /** Most estimators held (about 110 bytes each); default 2000000. */
  readonly maxEstimators?: number
  /** Publish resolver host entries (/32, /128); default true. */
  readonly resolverEntries?: boolean
}

export const DEFAULT_MAX_KEYS = 500_000
export const DEFAULT_MAX_ESTIMATORS = 2_000_000

/** What add() did. */
export interface AddStats {
  /** RTT samples folded into an estimator (a report with a resolver folds twice). */
  folded: number
  /** Samples rejected as outliers. */
  outliers: number
  /** Level shifts accepted. */
  shifts: number
  /** Failed probes counted. */
  failures: number
  /** Keys evicted to stay within maxKeys / maxEstimators. */
  evicted: number
}

export interface CompileStats {
  /** Entries in the new map. */
  readonly entries: number
  /** Client prefixes with a counting target, before merging. */
  readonly prefixes: number
  /** Client entries removed by merging siblings (prefixes - client entries in the map). */
  readonly merged: number
  /** Resolver host entries in the map. */
  readonly resolvers: number
  /** Estimators dropped because nothing newer than maxAgeSec was left in them. */
  readonly dropped: number
  /** Estimators held after the compile. */
  readonly estimators: number
  /** Wall time of the compile (informational). */
  readonly durationMs: number
}

export interface CompileOptions {
  /**
   * The version of the map being served, when it did not come from this
   * aggregator (an imported map): the new map's version is greater than both.
   */
  readonly previousVersion?: number
}

export interface CompileResult {
  readonly map: LatencyMap
  readonly stats: CompileStats
}

/** One estimator of a key, as read for explain and recipes. */
export interface TargetEstimate extends EstimatorState {
  /** Whether it would be published now (minSamples, maxAgeSec). */
  readonly counting: boolean
}

/** Everything known about one key. */
export interface KeyEstimates {
  /** "198.51.100.0/24" or, for a resolver, its address. */
  readonly key: string
  /** Target index published best at the last compile, undefined when none. */
  readonly best: number | undefined
  /** By target index. */
  readonly targets: readonly TargetEstimate[]
}

/** The persisted form: plain JSON, exact (doubles survive JSON text unchanged). */
export interface AggregatorSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT
  readonly mapVersion: number
  /** Target ids; rows and `best` refer to targets by position here. */
  readonly targets: readonly string[]
  /** Least recently updated first (the eviction order). */
  readonly keys: readonly SnapshotKey[]
}

export interface SnapshotKey {
  /** A client prefix key ("198.51.100.0/24")... */
  readonly prefix?: string
  /** ...or a resolver key ("192.0.2.53"). */
  readonly resolver?: string
  /** Position in `targets` of the published best. */
  readonly best?: number
  /**
   * One array per estimator: target position, weight, mean, dev, lastMs,
   * count, outliers, failures, failWeight, lastFailMs, streak count, streak
   * weight, streak mean, streak dev, streak lastMs; trailing zeros left out.
   */
  readonly rows: readonly (readonly number[])[]
}

export const SNAPSHOT_FORMAT = 'steerdns-measure/1'

const KIND_FREE = 0
const KIND_CLIENT = 1
const KIND_RESOLVER = 2

/**
 * Creates an empty aggregator. Throws MeasureError STEER_ERR_MEASURE_BAD_OPTIONS
 * for options out of range.
 */
export function createAggregator(opts: AggregatorOptions): Aggregator {
  return new Aggregator(opts)
}

export class Aggregator {
  readonly params: EstimatorParams
  readonly hysteresisPct: number
  readonly maxKeys: number
  readonly maxEstimators: number
  readonly resolverEntries: boolean
  /** Version of the last compiled map (0 before the first). */
  mapVersion = 0
  private readonly targetIds: readonly string[]
  private readonly table: EstimatorTable
  /** Key → slot, least recently updated first (re-inserted on every update). */
  private readonly keys = new Map<number | string, number>()
  private slotCount = 0
  private freeSlots: number[] = []
  private slotKind: Uint8Array
  private slotFamily: Uint8Array
  private slotLen: Uint8Array
  private slotWords: Uint32Array
  private slotHead: Int32Array
  private slotBest: Int32Array
  private slotKey: (number | string)[] = []
  private compiling = false
  /** The slot of the key last inserted or moved to the end of `keys` (-1: none). */
  private newestSlot = -1

  /** Use createAggregator() or restoreAggregator(). */
  constructor(opts: AggregatorOptions) {
    const problems: MeasureProblem[] = []
    const check = (name: string, value: number | undefined, ok: boolean, rule: string): void => {
      if (value !== undefined && !ok) problems.push({ path: name, message: `must be ${rule}, not ${value}` })
    }
    const positive = (v: number | undefined): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0
    const count = (v: number | undefined): boolean => Number.isSafeInteger(v) && (v as number) >= 1
    check('halfLifeSec', opts.halfLifeSec, positive(opts.halfLifeSec), 'a number > 0')
    check('minSamples', opts.minSamples, count(opts.minSamples), 'an integer >= 1')
    check('maxAgeSec', opts.maxAgeSec, positive(opts.maxAgeSec), 'a number > 0')
    check('hysteresisPct', opts.hysteresisPct, Number.isFinite(opts.hysteresisPct) && opts.hysteresisPct >= 0 && opts.hysteresisPct < 100, '0 <= pct < 100')
    check('outlierK', opts.outlierK, positive(opts.outlierK), 'a number > 0')
    check('outlierFloorMs', opts.outlierFloorMs, Number.isFinite(opts.outlierFloorMs) && (opts.outlierFloorMs as number) >= 0, 'a number >= 0')
    check('outlierFloorPct', opts.outlierFloorPct, Number.isFinite(opts.outlierFloorPct) && (opts.outlierFloorPct as number) >= 0, 'a number >= 0')
    check('shiftSamples', opts.shiftSamples, count(opts.shiftSamples), 'an integer >= 1')
    check('maxKeys', opts.maxKeys, count(opts.maxKeys), 'an integer >= 1')
    check('maxEstimators', opts.maxEstimators, count(opts.maxEstimators), 'an integer >= 1')
    if (opts.targetIds.length > 0xffff) problems.push({ path: 'targetIds', message: 'at most 65535 targets' })
    if (problems.length > 0) throw new MeasureError(MeasureErrorCode.BAD_OPTIONS, problems)
    this.params = {
      halfLifeSec: opts.halfLifeSec,
      minSamples: opts.minSamples,
      maxAgeSec: opts.maxAgeSec,
      outlierK: opts.outlierK ?? DEFAULT_OUTLIER_K,
      outlierFloorMs: opts.outlierFloorMs ?? DEFAULT_OUTLIER_FLOOR_MS,
      outlierFloorPct: opts.outlierFloorPct ?? DEFAULT_OUTLIER_FLOOR_PCT,
      shiftSamples: opts.shiftSamples ?? Math.max(2, opts.minSamples),
    }
    this.hysteresisPct = opts.hysteresisPct
    this.maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS
    this.maxEstimators = opts.maxEstimators ?? DEFAULT_MAX_ESTIMATORS
    this.resolverEntries = opts.resolverEntries ?? true
    this.targetIds = [...opts.targetIds]
    this.table = new EstimatorTable(1024)
    const slots = 256
    this.slotKind = new Uint8Array(slots)
    this.slotFamily = new Uint8Array(slots)
    this.slotLen = new Uint8Array(slots)
    this.slotWords = new Uint32Array(slots * 4)
    this.slotHead = new Int32Array(slots)
    this.slotBest = new Int32Array(slots)
  }

  /** Keys held (client prefixes and resolvers). */
  get keyCount(): number {
    return this.keys.size
  }

  /** Estimators held. */
  get estimatorCount(): number {
    return this.table.live
  }

  /**
   * Folds validated reports: each into its (client prefix, target) estimator
   * and, when it names a resolver, its (resolver, target) estimator. A failed
   * probe (ok false) counts a failure and folds no RTT. Never throws for
   * reports from validateMeasurementBatch(); a target index outside
   * targetIds is skipped.
   */
  add(reports: readonly AcceptedReport[]): AddStats {
    const stats: AddStats = { folded: 0, outliers: 0, shifts: 0, failures: 0, evicted: 0 }
    const words = new Uint32Array(4)
    for (const r of reports) {
      if (!(r.target >= 0 && r.target < this.targetIds.length)) continue
      toWords(r.client.address, words)
      this.record(this.slotFor(KIND_CLIENT, r.client.family, r.client.prefixLen, words, stats), r, stats)
      if (r.resolver) {
        toWords(r.resolver, words)
        const family = r.resolver.length === 4 ? 4 : 6
        this.record(this.slotFor(KIND_RESOLVER, family, family === 4 ? 32 : 128, words, stats), r, stats)
      }
    }
    return stats
  }

  /** The estimators of one client prefix (exactly that prefix), or undefined when none are held. */
  prefixEstimates(prefix: ClientPrefix, nowMs: number): KeyEstimates | undefined {
    const words = toWords(prefix.address, new Uint32Array(4))
    return this.estimatesOf(this.keys.get(keyOf(KIND_CLIENT, prefix.family, prefix.prefixLen, words)), nowMs)
  }

  /** The estimators of one resolver address (4 or 16 bytes, IPv4-mapped already as IPv4), or undefined. */
  resolverEstimates(address: Uint8Array, nowMs: number): KeyEstimates | undefined {
    const words = toWords(address, new Uint32Array(4))
    return this.estimatesOf(this.keys.get(keyOf(KIND_RESOLVER, address.length === 4 ? 4 : 6, address.length * 8, words)), nowMs)
  }

  /**
   * Compiles the map: for every key, its counting estimators ranked by score
   * (hysteresis applied to the first place), estimators idle longer than
   * maxAgeSec dropped, sibling client prefixes with identical rankings merged
   * upwards, resolver host entries added. The new map's version is one more
   * than the last (or than `previousVersion`). Holds the thread for the whole
   * compile (0.3-0.6 s for 100k prefixes x 20 targets on the bench machine: see
   * bench/compile-map.mjs); compileAsync() does the same work in slices.
   * Throws MeasureError STEER_ERR_MEASURE_COMPILE_BUSY while a compileAsync()
   * is under way; nothing else for state built by add() or restoreAggregator().
   */
  compile(nowMs: number, opts: CompileOptions = {}): CompileResult {
    const steps = this.compileSteps(nowMs, opts)
    const started = performance.now()
    for (;;) {
      const step = steps.next()
      if (step.done) return withDuration(step.value, performance.now() - started)
    }
  }

  /**
   * compile() in slices of about `sliceMs` (default 10), awaiting `pause`
   * (default: setImmediate) between them, so DNS queries on the same thread
   * wait for one slice, not the whole compile. add() may run between slices:
   * a key is read whole within one slice. The final LatencyMapBuilder.build()
   * is one slice of its own (tens of ms for 100k entries). Rejects with
   * STEER_ERR_MEASURE_COMPILE_BUSY when another compile is under way.
   * stats.durationMs counts the slices, not the pauses.
   */
  async compileAsync(nowMs: number, opts: CompileOptions & { sliceMs?: number; pause?: () => Promise<void> } = {}): Promise<CompileResult> {
    const sliceMs = opts.sliceMs ?? 10
    const pause = opts.pause ?? (() => new Promise<void>((resolve) => setImmediate(resolve)))
    const steps = this.compileSteps(nowMs, opts)
    let busyMs = 0
    try {
      for (;;) {
        const sliceStarted = performance.now()
        let step = steps.next()
        while (!step.done && performance.now() - sliceStarted < sliceMs) step = steps.next()
        busyMs += performance.now() - sliceStarted
        if (step.done) return withDuration(step.value, busyMs)
        await pause()
      }
    } finally {
      // Runs the generator's finally when a pause threw: the aggregator is free to compile again.
      steps.return(undefined as never)
    }
  }

  /** One compile at a time; the work itself is in compileWork(). */
  private *compileSteps(nowMs: number, opts: CompileOptions): Generator<void, CompileResult, void> {
    if (this.compiling) throw measureError(MeasureErrorCode.COMPILE_BUSY, '', 'a compile is already under way')
    this.compiling = true
    try {
      return yield* this.compileWork(nowMs, opts)
    } finally {
      this.compiling = false
    }
  }

  /** The compile, yielding between pieces of work of a millisecond or so. */
  private *compileWork(nowMs: number, opts: CompileOptions): Generator<void, CompileResult, void> {
    const p = this.params
    const t = this.table
    // Columns hoisted into locals (the loop below visits every estimator, two million in
    // bench/compile-map.mjs); read again after every pause, as add() may have grown them.
    let { next, target, mean, count, lastMs } = t
    const cutoffMs = nowMs - p.maxAgeSec * 1000
    const minSamples = p.minSamples
    const keepFactor = 1 - this.hysteresisPct / 100
    // Merging adds at most one entry per entry merged away: twice the keys is room enough.
    const out = new EntryList(Math.max(16, 2 * this.keys.size), Math.max(16, t.live))
    // One key's counting rows, ranked, and their scores in whole microseconds (at most one row per target).
    const rankRow = new Int32Array(Math.max(1, this.targetIds.length))
    const rankUs = new Float64Array(rankRow.length)
    let dropped = 0
    for (let s = 0; s < this.slotCount; s++) {
      if ((s & 1023) === 1023) {
        yield
        ;({ next, target, mean, count, lastMs } = t)
      }
      const kind = this.slotKind[s] as number
      if (kind === KIND_FREE) continue
      let prev = -1
      let row = this.slotHead[s] as number
      let n = 0
      while (row >= 0) {
        const following = next[row] as number
        if (t.activityMs(row) < cutoffMs) {
          if (prev < 0) this.slotHead[s] = following
          else next[prev] = following
          t.release(row)
          dropped++
        } else {
          prev = row
          if ((count[row] as number) >= minSamples && (lastMs[row] as number) >= cutoffMs) {
            // Insertion in rank order: score, then more samples, then lower target (LatencyMapBuilder's order).
            const us = Math.round((mean[row] as number) * 1000)
            let j = n - 1
            for (; j >= 0; j--) {
              const other = rankRow[j] as number
              const otherUs = rankUs[j] as number
              if (otherUs < us || (otherUs === us && ((count[other] as number) > (count[row] as number) || (count[other] === count[row] && (target[other] as number) < (target[row] as number))))) break
              rankRow[j + 1] = other
              rankUs[j + 1] = otherUs
            }
            rankRow[j + 1] = row
            rankUs[j + 1] = us
            n++
          }
        }
        row = following
      }
      if ((this.slotHead[s] as number) < 0) {
        this.freeSlot(s)
        continue
      }
      if (n === 0) {
        this.slotBest[s] = -1
        continue
      }
      const best = this.slotBest[s] as number
      if (best >= 0 && target[rankRow[0] as number] !== best) {
        let at = 1
        while (at < n && target[rankRow[at] as number] !== best) at++
        // Hysteresis: the incumbent keeps first place unless the challenger is better by more than hysteresisPct.
        if (at < n && !((mean[rankRow[0] as number] as number) < (mean[rankRow[at] as number] as number) * keepFactor)) {
          const incumbent = rankRow[at] as number
          const incumbentUs = rankUs[at] as number
          rankRow.copyWithin(1, 0, at)
          rankUs.copyWithin(1, 0, at)
          rankRow[0] = incumbent
          rankUs[0] = incumbentUs
        }
      }
      this.slotBest[s] = target[rankRow[0] as number] as number
      if (kind === KIND_RESOLVER && !this.resolverEntries) continue
      const e = out.addEntry(kind, this.slotFamily[s] as 4 | 6, this.slotLen[s] as number, this.slotWords, s * 4)
      let updated = 0
      for (let i = 0; i < n; i++) {
        const r = rankRow[i] as number
        out.addCandidate(target[r] as number, rankUs[i] as number, count[r] as number)
        if ((lastMs[r] as number) > updated) updated = lastMs[r] as number
      }
      out.finishEntry(e, updated)
    }
    const prefixes = out.countKind(KIND_CLIENT)
    yield
    yield* mergeSiblings(out, 4)
    yield* mergeSiblings(out, 6)
    const builder = new LatencyMapBuilder({ expectedEntries: out.size })
    yield* feedBuilder(out, builder)
    yield
    const version = Math.max(this.mapVersion, opts.previousVersion ?? 0) + 1
    const map = builder.build(version, nowMs)
    this.mapVersion = version
    const clients = out.countKind(KIND_CLIENT)
    return {
      map,
      stats: {
        entries: map.size,
        prefixes,
        merged: prefixes - clients,
        resolvers: map.size - clients,
        dropped,
        estimators: t.live,
        durationMs: 0,
      },
    }
  }

  /**
   * All state as a JSON-able value: every estimator, the published bests and
   * the map version. restoreAggregator() of it, with the same target ids,
   * gives an aggregator whose snapshot() is deep-equal.
   */
  snapshot(): AggregatorSnapshot {
    const keys: SnapshotKey[] = []
    const bytes4 = new Uint8Array(4)
    const bytes16 = new Uint8Array(16)
    for (const s of this.keys.values()) {
      const family = this.slotFamily[s] as 4 | 6
      const bytes = fromWords(this.slotWords, s * 4, family === 4 ? bytes4 : bytes16)
      const rows: number[][] = []
      for (let row = this.slotHead[s] as number; row >= 0; row = this.table.next[row] as number) rows.push(this.table.toArray(row))
      const text = formatAddress(bytes)
      const best = this.slotBest[s] as number
      const key: SnapshotKey =
        this.slotKind[s] === KIND_CLIENT ? { prefix: `${text}/${this.slotLen[s] as number}`, rows } : { resolver: text, rows }
      keys.push(best >= 0 ? { ...key, best } : key)
    }
    return { format: SNAPSHOT_FORMAT, mapVersion: this.mapVersion, targets: [...this.targetIds], keys }
  }

  /** Loads a snapshot's keys (restoreAggregator's work); problems are collected, nothing thrown here. */
  loadSnapshot(snapshot: unknown, problems: MeasureProblem[]): void {
    if (!isObject(snapshot) || snapshot.format !== SNAPSHOT_FORMAT) {
      problems.push({ path: 'format', message: `must be "${SNAPSHOT_FORMAT}"` })
      return
    }
    const { mapVersion, targets, keys } = snapshot
    if (!Number.isSafeInteger(mapVersion) || (mapVersion as number) < 0) problems.push({ path: 'mapVersion', message: 'must be an integer >= 0' })
    if (!Array.isArray(targets) || !targets.every((id) => typeof id === 'string')) problems.push({ path: 'targets', message: 'must be an array of target ids' })
    if (!Array.isArray(keys)) problems.push({ path: 'keys', message: 'must be an array' })
    if (problems.length > 0) return
    this.mapVersion = mapVersion as number
    const index = new Map(this.targetIds.map((id, i) => [id, i]))
    const targetOf = (targets as string[]).map((id) => index.get(id) ?? -1)
    const words = new Uint32Array(4)
    const noStats: AddStats = { folded: 0, outliers: 0, shifts: 0, failures: 0, evicted: 0 }
    const list = keys as unknown[]
    for (let k = 0; k < list.length && problems.length < 100; k++) {
      const key = list[k]
      const path = `keys[${k}]`
      if (!isObject(key) || !Array.isArray(key.rows)) {
        problems.push({ path, message: 'must be an object with a rows array' })
        continue
      }
      let kind: number
      let family: 4 | 6
      let len: number
      if (typeof key.prefix === 'string' && key.resolver === undefined) {
        let parsed
        try {
          parsed = parseClientKey(key.prefix, 'ecs')
        } catch {
          problems.push({ path: `${path}.prefix`, message: 'must be a prefix' })
          continue
        }
        kind = KIND_CLIENT
        family = parsed.family
        len = parsed.prefixLen
        toWords(parsed.address, words)
      } else if (typeof key.resolver === 'string' && key.prefix === undefined) {
        const address = parseAddress(key.resolver)
        if (!address) {
          problems.push({ path: `${path}.resolver`, message: 'must be an address' })
          continue
        }
        kind = KIND_RESOLVER
        family = address.length === 4 ? 4 : 6
        len = address.length * 8
        toWords(address, words)
      } else {
        problems.push({ path, message: 'must have either prefix or resolver' })
        continue
      }
      if (this.keys.has(keyOf(kind, family, len, words))) {
        problems.push({ path, message: 'repeats an earlier key' })
        continue
      }
      const s = this.slotFor(kind, family, len, words, noStats)
      const rows = key.rows as unknown[]
      for (let i = 0; i < rows.length; i++) {
        const values = rows[i]
        const position = Array.isArray(values) ? values[0] : undefined
        if (!Array.isArray(values) || typeof position !== 'number' || !Number.isInteger(position) || position < 0 || position >= targetOf.length) {
          problems.push({ path: `${path}.rows[${i}]`, message: 'must be an array starting with a target position' })
          continue
        }
        const target = targetOf[position] as number
        // A target no longer configured: its estimates have nothing to steer to.
        if (target < 0) continue
        if (this.findRow(s, target) >= 0) {
          problems.push({ path: `${path}.rows[${i}]`, message: 'repeats a target' })
          continue
        }
        const row = this.rowFor(s, target, noStats)
        if (row >= 0 && !this.table.fromArray(row, values)) problems.push({ path: `${path}.rows[${i}]`, message: 'has a value out of range' })
      }
      const best = key.best
      if (best !== undefined) {
        if (typeof best !== 'number' || !Number.isInteger(best) || best < 0 || best >= targetOf.length) {
          problems.push({ path: `${path}.best`, message: 'must be a target position' })
        } else if ((targetOf[best] as number) >= 0 && this.findRow(s, targetOf[best] as number) >= 0) {
          this.slotBest[s] = targetOf[best] as number
        }
      }
      if ((this.slotHead[s] as number) < 0) this.freeSlot(s)
    }
  }

  private estimatesOf(slot: number | undefined, nowMs: number): KeyEstimates | undefined {
    if (slot === undefined) return undefined
    const family = this.slotFamily[slot] as 4 | 6
    const text = formatAddress(fromWords(this.slotWords, slot * 4, new Uint8Array(family === 4 ? 4 : 16)))
    const targets: TargetEstimate[] = []
    for (let row = this.slotHead[slot] as number; row >= 0; row = this.table.next[row] as number) {
      targets.push({ ...this.table.read(row, nowMs, this.params), counting: this.table.counts(row, nowMs, this.params) })
    }
    const best = this.slotBest[slot] as number
    return {
      key: this.slotKind[slot] === KIND_CLIENT ? `${text}/${this.slotLen[slot] as number}` : text,
      best: best >= 0 ? best : undefined,
      targets,
    }
  }

  private record(slot: number, r: AcceptedReport, stats: AddStats): void {
    const row = this.rowFor(slot, r.target, stats)
    if (row < 0) return
    if (!r.ok) {
      this.table.fail(row, r.atMs, this.params)
      stats.failures++
      return
    }
    const result = this.table.fold(row, r.rttMs, r.atMs, this.params)
    if (result === FOLD.FOLDED) stats.folded++
    else if (result === FOLD.OUTLIER) stats.outliers++
    else stats.shifts++
  }

  /** The slot of a key, created when new (evicting the oldest keys past maxKeys); marks it most recently updated. */
  private slotFor(kind: number, family: 4 | 6, len: number, words: Uint32Array, stats: AddStats): number {
    const key = keyOf(kind, family, len, words)
    const existing = this.keys.get(key)
    if (existing !== undefined) {
      // Re-inserting moves the key to the end: the Map's order is the eviction order. Reports come
      // grouped by client, so the key is usually the newest already (skipping saves about a third of add()).
      if (existing !== this.newestSlot) {
        this.keys.delete(key)
        this.keys.set(key, existing)
        this.newestSlot = existing
      }
      return existing
    }
    while (this.keys.size >= this.maxKeys) {
      this.evictOldest(-1)
      stats.evicted++
    }
    const s = this.freeSlots.length > 0 ? (this.freeSlots.pop() as number) : this.slotCount++
    if (s >= this.slotKind.length) this.growSlots()
    this.slotKind[s] = kind
    this.slotFamily[s] = family
    this.slotLen[s] = len
    this.slotWords.set(words, s * 4)
    this.slotHead[s] = -1
    this.slotBest[s] = -1
    this.slotKey[s] = key
    this.keys.set(key, s)
    this.newestSlot = s
    return s
  }

  private findRow(slot: number, target: number): number {
    for (let row = this.slotHead[slot] as number; row >= 0; row = this.table.next[row] as number) {
      if (this.table.target[row] === target) return row
    }
    return -1
  }

  /** The row of (slot, target), created when new; -1 when maxEstimators leaves no room even after evicting every other key. */
  private rowFor(slot: number, target: number, stats: AddStats): number {
    const t = this.table
    let prev = -1
    let row = this.slotHead[slot] as number
    // Rows are kept in target order: snapshots come out the same whatever order samples arrived in.
    while (row >= 0 && (t.target[row] as number) < target) {
      prev = row
      row = t.next[row] as number
    }
    if (row >= 0 && t.target[row] === target) return row
    while (t.live >= this.maxEstimators) {
      if (!this.evictOldest(slot)) return -1
      stats.evicted++
    }
    const created = t.allocate(target)
    t.next[created] = row
    if (prev < 0) this.slotHead[slot] = created
    else t.next[prev] = created
    return created
  }

  /** Evicts the least recently updated key unless it is `keep`; false when there was nothing else. */
  private evictOldest(keep: number): boolean {
    for (const s of this.keys.values()) {
      if (s === keep) return false
      for (let row = this.slotHead[s] as number; row >= 0; ) {
        const next = this.table.next[row] as number
        this.table.release(row)
        row = next
      }
      this.slotHead[s] = -1
      this.freeSlot(s)
      return true
    }
    return false
  }

  private freeSlot(s: number): void {
    this.keys.delete(this.slotKey[s] as number | string)
    if (this.newestSlot === s) this.newestSlot = -1
    this.slotKind[s] = KIND_FREE
    this.slotKey[s] = 0
    this.freeSlots.push(s)
  }

  private growSlots(): void {
    const n = this.slotKind.length * 2
    this.slotKind = grow(this.slotKind, n)
    this.slotFamily = grow(this.slotFamily, n)
    this.slotLen = grow(this.slotLen, n)
    this.slotWords = grow(this.slotWords, n * 4)
    this.slotHead = grow(this.slotHead, n)
    this.slotBest = grow(this.slotBest, n)
  }
}

/**
 * Rebuilds an aggregator from snapshot(). Estimators of targets no longer in
 * opts.targetIds are dropped; past maxKeys / maxEstimators the oldest keys
 * are evicted as add() would. Throws MeasureError
 * STEER_ERR_MEASURE_SNAPSHOT_INVALID (listing the problems) for a malformed
 * snapshot, STEER_ERR_MEASURE_BAD_OPTIONS for bad options.
 */
export function restoreAggregator(snapshot: unknown, opts: AggregatorOptions): Aggregator {
  const aggregator = new Aggregator(opts)
  const problems: MeasureProblem[] = []
  aggregator.loadSnapshot(snapshot, problems)
  if (problems.length > 0) throw new MeasureError(MeasureErrorCode.SNAPSHOT_INVALID, problems)
  return aggregator
}

function withDuration(result: CompileResult, durationMs: number): CompileResult {
  return { map: result.map, stats: { ...result.stats, durationMs } }
}

/**
 * Adds the compiled entries to the builder, yielding every few thousand. A
 * resolver host entry never replaces a client entry of the same prefix
 * (possible only with /32 or /128 client prefixes): the client's wins.
 */
function* feedBuilder(out: EntryList, builder: LatencyMapBuilder): Generator<void, void, void> {
  const clientHosts = new Set<number | string>()
  for (let e = 0; e < out.size; e++) {
    if (out.kind[e] === KIND_CLIENT && out.len[e] === (out.family[e] === 4 ? 32 : 128)) {
      clientHosts.add(keyOf(KIND_CLIENT, out.family[e] as 4 | 6, out.len[e] as number, out.words.subarray(e * 4, e * 4 + 4)))
    }
  }
  const bytes4 = new Uint8Array(4)
  const bytes16 = new Uint8Array(16)
  for (let e = 0; e < out.size; e++) {
    if ((e & 4095) === 4095) yield
    const kind = out.kind[e] as number
    if (kind === KIND_FREE) continue
    const family = out.family[e] as 4 | 6
    if (kind === KIND_RESOLVER && clientHosts.has(keyOf(KIND_CLIENT, family, out.len[e] as number, out.words.subarray(e * 4, e * 4 + 4)))) {
      out.kind[e] = KIND_FREE
      continue
    }
    builder.addEntry(fromWords(out.words, e * 4, family === 4 ? bytes4 : bytes16), out.len[e] as number, out.updatedMs[e] as number)
    const from = out.start[e] as number
    const to = from + (out.count[e] as number)
    for (let c = from; c < to; c++) builder.addCandidate(out.candTarget[c] as number, (out.candScoreUs[c] as number) / 1000, out.candSamples[c] as number)
  }
}

/**
 * Compiled entries before they become a map: prefixes as four 32-bit words,
 * candidates in published order with scores in whole microseconds. Scores
 * are made strictly increasing along the ranking (a tie or an incumbent held
 * by hysteresis pushes the next one up by 1 µs), so LatencyMapBuilder, which
 * ranks by score, keeps exactly this order.
 */
class EntryList {
  size = 0
  kind: Uint8Array
  family: Uint8Array
  len: Uint8Array
  words: Uint32Array
  updatedMs: Float64Array
  start: Uint32Array
  count: Uint16Array
  candidates = 0
  candTarget: Uint32Array
  candScoreUs: Float64Array
  candSamples: Uint32Array

  constructor(entries: number, candidates: number) {
    this.kind = new Uint8Array(entries)
    this.family = new Uint8Array(entries)
    this.len = new Uint8Array(entries)
    this.words = new Uint32Array(entries * 4)
    this.updatedMs = new Float64Array(entries)
    this.start = new Uint32Array(entries)
    this.count = new Uint16Array(entries)
    this.candTarget = new Uint32Array(candidates)
    this.candScoreUs = new Float64Array(candidates)
    this.candSamples = new Uint32Array(candidates)
  }

  countKind(kind: number): number {
    let n = 0
    for (let e = 0; e < this.size; e++) if (this.kind[e] === kind) n++
    return n
  }

  addEntry(kind: number, family: 4 | 6, len: number, words: Uint32Array, at: number): number {
    const e = this.size
    if (e === this.kind.length) this.growEntries()
    this.kind[e] = kind
    this.family[e] = family
    this.len[e] = len
    for (let i = 0; i < 4; i++) this.words[e * 4 + i] = words[at + i] as number
    this.start[e] = this.candidates
    this.count[e] = 0
    this.size = e + 1
    return e
  }

  addCandidate(target: number, scoreUs: number, samples: number): void {
    const c = this.candidates
    if (c === this.candTarget.length) this.growCandidates()
    this.candTarget[c] = target
    this.candScoreUs[c] = scoreUs
    this.candSamples[c] = samples
    this.candidates = c + 1
  }

  /** Closes the entry started last: counts its candidates and makes their scores strictly increasing. */
  finishEntry(e: number, updatedMs: number): void {
    const from = this.start[e] as number
    this.count[e] = this.candidates - from
    this.updatedMs[e] = updatedMs
    for (let c = from + 1; c < this.candidates; c++) {
      if ((this.candScoreUs[c] as number) <= (this.candScoreUs[c - 1] as number)) this.candScoreUs[c] = (this.candScoreUs[c - 1] as number) + 1
    }
  }

  /** Same target ids in the same order (scores and sample counts aside): the merge rule. */
  sameRanking(a: number, b: number): boolean {
    const n = this.count[a] as number
    if (this.count[b] !== n) return false
    const sa = this.start[a] as number
    const sb = this.start[b] as number
    for (let i = 0; i < n; i++) if (this.candTarget[sa + i] !== this.candTarget[sb + i]) return false
    return true
  }

  /**
   * A new entry for the parent prefix of `members` (all with the same
   * ranking): per target, samples summed and the score their sample-weighted
   * mean. `words` are the parent's (the left child's, whose extra bit is 0).
   */
  addMerged(members: readonly number[], len: number): number {
    const first = members[0] as number
    const e = this.addEntry(KIND_CLIENT, this.family[first] as 4 | 6, len, this.words, first * 4)
    const n = this.count[first] as number
    let updated = 0
    for (const m of members) if ((this.updatedMs[m] as number) > updated) updated = this.updatedMs[m] as number
    for (let i = 0; i < n; i++) {
      let samples = 0
      let weighted = 0
      for (const m of members) {
        const c = (this.start[m] as number) + i
        samples += this.candSamples[c] as number
        weighted += (this.candScoreUs[c] as number) * (this.candSamples[c] as number)
      }
      this.addCandidate(this.candTarget[(this.start[first] as number) + i] as number, Math.round(weighted / samples), Math.min(samples, 0xffffffff))
    }
    this.finishEntry(e, updated)
    for (const m of members) this.kind[m] = KIND_FREE
    return e
  }

  private growEntries(): void {
    const n = this.kind.length * 2
    this.kind = grow(this.kind, n)
    this.family = grow(this.family, n)
    this.len = grow(this.len, n)
    this.words = grow(this.words, n * 4)
    this.updatedMs = grow(this.updatedMs, n)
    this.start = grow(this.start, n)
    this.count = grow(this.count, n)
  }

  private growCandidates(): void {
    const n = this.candTarget.length * 2
    this.candTarget = grow(this.candTarget, n)
    this.candScoreUs = grow(this.candScoreUs, n)
    this.candSamples = grow(this.candSamples, n)
  }
}

/**
 * Merges sibling client prefixes of one family bottom-up: two entries of
 * length L that differ only in bit L-1 and rank the same targets in the same
 * order become one entry of length L-1, which may merge again. A parent
 * prefix that is itself an entry absorbs the pair only when it ranks the
 * same too; otherwise the pair stays. A lone half never widens (that would
 * claim the other half's clients without a sample from them).
 */
function* mergeSiblings(out: EntryList, family: 4 | 6): Generator<void, void, void> {
  const maxLen = family === 4 ? 32 : 128
  const levels: number[][] = Array.from({ length: maxLen + 1 }, () => [])
  for (let e = 0; e < out.size; e++) {
    if (out.kind[e] === KIND_CLIENT && out.family[e] === family) (levels[out.len[e] as number] as number[]).push(e)
  }
  // out.words is read afresh each time: addMerged() may grow (replace) the array.
  const compare = (a: number, b: number): number => {
    const w = out.words
    for (let i = 0; i < 4; i++) {
      const d = (w[a * 4 + i] as number) - (w[b * 4 + i] as number)
      if (d !== 0) return d
    }
    return 0
  }
  for (const level of levels) if (level.length > 1) level.sort(compare)
  for (let len = maxLen; len >= 1; len--) {
    const level = levels[len] as number[]
    if (level.length < 2) continue
    yield
    const bit = len - 1
    const word = bit >>> 5
    const mask = (0x80000000 >>> (bit & 31)) >>> 0
    const parents = levels[len - 1] as number[]
    const created: number[] = []
    let p = 0
    for (let i = 0; i + 1 < level.length; i++) {
      const a = level[i] as number
      const b = level[i + 1] as number
      const w = out.words
      if (((w[a * 4 + word] as number) & mask) !== 0 || !isSibling(w, a, b, word, mask) || !out.sameRanking(a, b)) continue
      i++
      // The parent's address is the left child's; is the parent already an entry?
      while (p < parents.length && compare(parents[p] as number, a) < 0) p++
      const existing = p < parents.length && compare(parents[p] as number, a) === 0 ? (parents[p] as number) : -1
      if (existing < 0) created.push(out.addMerged([a, b], len - 1))
      else if (out.sameRanking(existing, a)) parents[p] = out.addMerged([existing, a, b], len - 1)
    }
    if (created.length > 0) levels[len - 1] = mergeSorted(parents, created, compare)
  }
}

/** Whether b is a's right sibling at the bit `mask` of word `word` (a has it clear). */
function isSibling(w: Uint32Array, a: number, b: number, word: number, mask: number): boolean {
  for (let i = 0; i < 4; i++) {
    const x = w[a * 4 + i] as number
    const y = w[b * 4 + i] as number
    if (i === word ? (x | mask) >>> 0 !== y : x !== y) return false
  }
  return true
}

function mergeSorted(a: readonly number[], b: readonly number[], compare: (x: number, y: number) => number): number[] {
  const out: number[] = new Array(a.length + b.length)
  let i = 0
  let j = 0
  let k = 0
  while (i < a.length && j < b.length) out[k++] = compare(a[i] as number, b[j] as number) <= 0 ? (a[i++] as number) : (b[j++] as number)
  while (i < a.length) out[k++] = a[i++] as number
  while (j < b.length) out[k++] = b[j++] as number
  return out
}

/** A Map key for (kind, prefix): a number for IPv4 (kind, length and address fit in 2^53), a string for IPv6. */
function keyOf(kind: number, family: 4 | 6, len: number, words: Uint32Array): number | string {
  if (family === 4) return (kind * 64 + len) * 0x100000000 + (words[0] as number)
  return `${kind}/${len}/${(words[0] as number).toString(16)}:${(words[1] as number).toString(16)}:${(words[2] as number).toString(16)}:${(words[3] as number).toString(16)}`
}

/** 4 or 16 address bytes as big-endian 32-bit words (IPv4 in the first, the rest 0). */
function toWords(address: Uint8Array, out: Uint32Array): Uint32Array {
  if (address.length === 4) {
    out[0] = (((address[0] as number) << 24) | ((address[1] as number) << 16) | ((address[2] as number) << 8) | (address[3] as number)) >>> 0
    out[1] = 0
    out[2] = 0
    out[3] = 0
    return out
  }
  out.fill(0)
  for (let i = 0; i < address.length; i++) {
    const k = i >> 2
    out[k] = ((out[k] as number) | ((address[i] as number) << (24 - 8 * (i & 3)))) >>> 0
  }
  return out
}

function fromWords(words: Uint32Array, at: number, out: Uint8Array): Uint8Array {
  for (let i = 0; i < out.length; i++) out[i] = ((words[at + (i >> 2)] as number) >>> (24 - 8 * (i & 3))) & 0xff
  return out
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

type Column = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array

function grow<T extends Column>(a: T, size: number): T {
  const next = new (a.constructor as new (n: number) => T)(size)
  next.set(a)
  return next
}
