/**
 * Time-decayed latency estimators, one row per (key, target), stored as
 * columns of typed arrays: a hundred thousand prefixes times twenty targets
 * is two million estimators, and as objects (every double field a separate
 * heap number in V8) they would cost about three times the memory.
 *
 * The math (README.md, "Estimators"): a sample x measured at time t has
 * weight w = 2^(-age / halfLife); the state keeps the decayed weight sum W,
 * the weighted mean m and the weighted mean absolute deviation d, all as of
 * the newest sample time. Folding x at t (ref = max(t, last)):
 *   a = W * 2^(-(ref - last) / H),  b = 2^(-(ref - t) / H),  W' = a + b
 *   m' = (a*m + b*x) / W',          d' = (a*d + b*|x - m|) / W'
 * d is against the mean before x, as RFC 6298's RTTVAR is against SRTT.
 * No I/O; the clock is an argument. Rows are owned by the aggregator.
 */

/** How samples are folded; times in the units their names say. */
export interface EstimatorParams {
  /** Weight halves every halfLifeSec (measure.halfLifeSec). */
  readonly halfLifeSec: number
  /** Below this many samples an estimator neither counts nor rejects outliers (measure.minSamples). */
  readonly minSamples: number
  /** A gap longer than this restarts the estimator; older ones stop counting (measure.maxAgeSec). */
  readonly maxAgeSec: number
  /** A sample farther than outlierK deviations from the mean is an outlier. */
  readonly outlierK: number
  /** The deviation used for the test is at least this many ms... */
  readonly outlierFloorMs: number
  /** ...and at least this percentage of the mean. */
  readonly outlierFloorPct: number
  /** This many outliers in a row on one side of the mean are a level shift: the estimator restarts from them. */
  readonly shiftSamples: number
}

/**
 * Defaults for the parameters not in the configuration. k = 4 deviations: for
 * a normal distribution the MAD is 0.8 sigma, so 4 MADs is about 3.2 sigma
 * (one sample in 700 rejected by chance). The floors keep a path whose
 * samples agree to the microsecond from rejecting ordinary jitter.
 */
export const DEFAULT_OUTLIER_K = 4
export const DEFAULT_OUTLIER_FLOOR_MS = 2
export const DEFAULT_OUTLIER_FLOOR_PCT = 5

/** What fold() did with a sample. */
export const FOLD = { FOLDED: 0, OUTLIER: 1, SHIFT: 2 } as const
export type FoldResult = (typeof FOLD)[keyof typeof FOLD]

/** One estimator as read at `nowMs` (for explain, recipes and tests; allocates). */
export interface EstimatorState {
  readonly target: number
  /** Decayed weighted mean RTT, ms; the score. */
  readonly meanMs: number
  /** Decayed weighted mean absolute deviation, ms. */
  readonly devMs: number
  /** Effective sample count: the decay-weighted sum of weights, as of nowMs. */
  readonly weight: number
  /** Samples folded since the estimator last (re)started. */
  readonly count: number
  /** Newest folded sample, ms since the epoch; undefined before the first. */
  readonly lastSampleMs: number | undefined
  /** Samples rejected as outliers (ever). */
  readonly outliers: number
  /** Current run of outliers on one side of the mean. */
  readonly outlierStreak: number
  /** Failed probes (ever). */
  readonly failures: number
  /** Decay-weighted failed probes as of nowMs (same half-life as the samples). */
  readonly failureWeight: number
  /** Newest failure, ms since the epoch; undefined when none. */
  readonly lastFailureMs: number | undefined
}

/** Fields of a row in its snapshot form, in order; trailing zeros are left out. */
const ROW_FIELDS = 15

/** Rows of estimators. Row numbers are reused after release(). */
export class EstimatorTable {
  private capacity: number
  private used = 0
  private freeRows: Int32Array
  private freeCount = 0
  /** Rows handed out and not released. */
  live = 0

  target: Uint32Array
  /** Next row of the same key (-1: none); the aggregator's list. */
  next: Int32Array
  weight: Float64Array
  mean: Float64Array
  dev: Float64Array
  lastMs: Float64Array
  count: Uint32Array
  outliers: Uint32Array
  failures: Uint32Array
  failWeight: Float64Array
  lastFailMs: Float64Array
  // The outlier run being watched for a level shift: an estimator of its own.
  shCount: Uint32Array
  shWeight: Float64Array
  shMean: Float64Array
  shDev: Float64Array
  shLastMs: Float64Array

  constructor(initialRows = 1024) {
    const n = Math.max(16, initialRows)
    this.capacity = n
    this.freeRows = new Int32Array(n)
    this.target = new Uint32Array(n)
    this.next = new Int32Array(n)
    this.weight = new Float64Array(n)
    this.mean = new Float64Array(n)
    this.dev = new Float64Array(n)
    this.lastMs = new Float64Array(n)
    this.count = new Uint32Array(n)
    this.outliers = new Uint32Array(n)
    this.failures = new Uint32Array(n)
    this.failWeight = new Float64Array(n)
    this.lastFailMs = new Float64Array(n)
    this.shCount = new Uint32Array(n)
    this.shWeight = new Float64Array(n)
    this.shMean = new Float64Array(n)
    this.shDev = new Float64Array(n)
    this.shLastMs = new Float64Array(n)
  }

  /** A zeroed row for `target`. */
  allocate(target: number): number {
    let row: number
    if (this.freeCount > 0) row = this.freeRows[--this.freeCount] as number
    else {
      if (this.used === this.capacity) this.grow()
      row = this.used++
    }
    this.clear(row)
    this.target[row] = target
    this.next[row] = -1
    this.live++
    return row
  }

  /** Gives a row back; the caller unlinks it first. */
  release(row: number): void {
    if (this.freeCount === this.freeRows.length) this.freeRows = grownInt32(this.freeRows, this.freeRows.length * 2)
    this.freeRows[this.freeCount++] = row
    this.live--
  }

  /**
   * Folds an RTT sample (ms) measured at `atMs`. Once the estimator has
   * minSamples, a sample beyond outlierK deviations is rejected (OUTLIER)
   * unless it completes a run of shiftSamples outliers on one side, which
   * replaces the estimator with the run's own (SHIFT): a path that really got
   * slower or faster is believed after shiftSamples samples.
   */
  fold(row: number, rttMs: number, atMs: number, p: EstimatorParams): FoldResult {
    const halfLifeMs = p.halfLifeSec * 1000
    // After a silence longer than maxAge the old level says nothing of the new one: start afresh.
    if (this.count[row] !== 0 && atMs - (this.lastMs[row] as number) > p.maxAgeSec * 1000) {
      this.count[row] = 0
      this.shCount[row] = 0
    }
    if ((this.count[row] as number) >= p.minSamples) {
      const m = this.mean[row] as number
      const scale = Math.max(this.dev[row] as number, p.outlierFloorMs, (m * p.outlierFloorPct) / 100)
      if (Math.abs(rttMs - m) > p.outlierK * scale) {
        this.outliers[row] = Math.min((this.outliers[row] as number) + 1, 0xffffffff)
        if (this.shCount[row] !== 0 && (this.shMean[row] as number) > m !== rttMs > m) this.shCount[row] = 0
        update(this.shWeight, this.shMean, this.shDev, this.shLastMs, this.shCount, row, rttMs, atMs, halfLifeMs)
        if ((this.shCount[row] as number) < p.shiftSamples) return FOLD.OUTLIER
        this.weight[row] = this.shWeight[row] as number
        this.mean[row] = this.shMean[row] as number
        this.dev[row] = this.shDev[row] as number
        this.lastMs[row] = this.shLastMs[row] as number
        this.count[row] = this.shCount[row] as number
        this.shCount[row] = 0
        return FOLD.SHIFT
      }
      this.shCount[row] = 0
    }
    update(this.weight, this.mean, this.dev, this.lastMs, this.count, row, rttMs, atMs, halfLifeMs)
    return FOLD.FOLDED
  }

  /** Counts a failed probe at `atMs`; the RTT estimate is untouched. */
  fail(row: number, atMs: number, p: EstimatorParams): void {
    const halfLifeMs = p.halfLifeSec * 1000
    const last = this.lastFailMs[row] as number
    const ref = atMs > last ? atMs : last
    // A row that never failed has lastFailMs 0: its old weight decays to exactly 0.
    this.failWeight[row] = (this.failWeight[row] as number) * 2 ** (-(ref - last) / halfLifeMs) + 2 ** (-(ref - atMs) / halfLifeMs)
    this.lastFailMs[row] = ref
    this.failures[row] = Math.min((this.failures[row] as number) + 1, 0xffffffff)
  }

  /** The newest time anything was recorded in the row (sample, outlier or failure), ms since the epoch. */
  activityMs(row: number): number {
    return Math.max(this.lastMs[row] as number, this.lastFailMs[row] as number, this.shCount[row] !== 0 ? (this.shLastMs[row] as number) : 0)
  }

  /** Whether the row may be published at nowMs: minSamples folded and the newest no older than maxAgeSec. */
  counts(row: number, nowMs: number, p: EstimatorParams): boolean {
    return (this.count[row] as number) >= p.minSamples && (this.lastMs[row] as number) >= nowMs - p.maxAgeSec * 1000
  }

  /** The row as an object, weights decayed to nowMs. */
  read(row: number, nowMs: number, p: EstimatorParams): EstimatorState {
    const halfLifeMs = p.halfLifeSec * 1000
    const n = this.count[row] as number
    const last = this.lastMs[row] as number
    const lastFail = this.lastFailMs[row] as number
    const failures = this.failures[row] as number
    return {
      target: this.target[row] as number,
      meanMs: n > 0 ? (this.mean[row] as number) : NaN,
      devMs: n > 0 ? (this.dev[row] as number) : NaN,
      weight: n > 0 ? (this.weight[row] as number) * 2 ** (-Math.max(0, nowMs - last) / halfLifeMs) : 0,
      count: n,
      lastSampleMs: n > 0 ? last : undefined,
      outliers: this.outliers[row] as number,
      outlierStreak: this.shCount[row] as number,
      failures,
      failureWeight: failures > 0 ? (this.failWeight[row] as number) * 2 ** (-Math.max(0, nowMs - lastFail) / halfLifeMs) : 0,
      lastFailureMs: failures > 0 ? lastFail : undefined,
    }
  }

  /** The row's state as numbers (target first), trailing zeros left out; JSON keeps doubles exactly. */
  toArray(row: number): number[] {
    const out = [
      this.target[row] as number,
      this.weight[row] as number,
      this.mean[row] as number,
      this.dev[row] as number,
      this.lastMs[row] as number,
      this.count[row] as number,
      this.outliers[row] as number,
      this.failures[row] as number,
      this.failWeight[row] as number,
      this.lastFailMs[row] as number,
      this.shCount[row] as number,
      this.shWeight[row] as number,
      this.shMean[row] as number,
      this.shDev[row] as number,
      this.shLastMs[row] as number,
    ]
    let n = ROW_FIELDS
    while (n > 1 && out[n - 1] === 0) n--
    out.length = n
    return out
  }

  /** Fills a row from toArray()'s form (the target is set by allocate()); false when a value is out of range. */
  fromArray(row: number, values: readonly unknown[]): boolean {
    if (values.length < 1 || values.length > ROW_FIELDS) return false
    const v = (i: number): number => {
      const x = values[i] ?? 0
      return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : NaN
    }
    const ints = [5, 6, 7, 10]
    for (let i = 1; i < values.length; i++) {
      const x = v(i)
      if (Number.isNaN(x) || (ints.includes(i) && (!Number.isInteger(x) || x > 0xffffffff))) return false
    }
    this.weight[row] = v(1)
    this.mean[row] = v(2)
    this.dev[row] = v(3)
    this.lastMs[row] = v(4)
    this.count[row] = v(5)
    this.outliers[row] = v(6)
    this.failures[row] = v(7)
    this.failWeight[row] = v(8)
    this.lastFailMs[row] = v(9)
    this.shCount[row] = v(10)
    this.shWeight[row] = v(11)
    this.shMean[row] = v(12)
    this.shDev[row] = v(13)
    this.shLastMs[row] = v(14)
    return true
  }

  private clear(row: number): void {
    this.weight[row] = 0
    this.mean[row] = 0
    this.dev[row] = 0
    this.lastMs[row] = 0
    this.count[row] = 0
    this.outliers[row] = 0
    this.failures[row] = 0
    this.failWeight[row] = 0
    this.lastFailMs[row] = 0
    this.shCount[row] = 0
    this.shWeight[row] = 0
    this.shMean[row] = 0
    this.shDev[row] = 0
    this.shLastMs[row] = 0
  }

  private grow(): void {
    const n = this.capacity * 2
    this.capacity = n
    this.target = grown(this.target, n)
    this.next = grown(this.next, n)
    this.weight = grown(this.weight, n)
    this.mean = grown(this.mean, n)
    this.dev = grown(this.dev, n)
    this.lastMs = grown(this.lastMs, n)
    this.count = grown(this.count, n)
    this.outliers = grown(this.outliers, n)
    this.failures = grown(this.failures, n)
    this.failWeight = grown(this.failWeight, n)
    this.lastFailMs = grown(this.lastFailMs, n)
    this.shCount = grown(this.shCount, n)
    this.shWeight = grown(this.shWeight, n)
    this.shMean = grown(this.shMean, n)
    this.shDev = grown(this.shDev, n)
    this.shLastMs = grown(this.shLastMs, n)
  }
}

/** The decayed update of one (weight, mean, deviation, time, count) set; see the file header. */
function update(
  w: Float64Array,
  mean: Float64Array,
  dev: Float64Array,
  last: Float64Array,
  count: Uint32Array,
  row: number,
  x: number,
  atMs: number,
  halfLifeMs: number,
): void {
  const n = count[row] as number
  count[row] = n === 0xffffffff ? n : n + 1
  if (n === 0) {
    w[row] = 1
    mean[row] = x
    dev[row] = 0
    last[row] = atMs
    return
  }
  const l = last[row] as number
  const ref = atMs > l ? atMs : l
  const a = (w[row] as number) * 2 ** (-(ref - l) / halfLifeMs)
  const b = 2 ** (-(ref - atMs) / halfLifeMs)
  const m = mean[row] as number
  const sum = a + b
  mean[row] = (a * m + b * x) / sum
  dev[row] = (a * (dev[row] as number) + b * Math.abs(x - m)) / sum
  w[row] = sum
  last[row] = ref
}

type Column = Float64Array | Uint32Array | Int32Array

function grown<T extends Column>(a: T, size: number): T {
  const next = new (a.constructor as new (n: number) => T)(size)
  next.set(a)
  return next
}

function grownInt32(a: Int32Array, size: number): Int32Array {
  return grown(a, size)
}
