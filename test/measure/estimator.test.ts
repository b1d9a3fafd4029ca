// Estimators: the decay math against hand-computed values, outlier rejection
// with its boundary, level shifts accepted after a run on one side, failures,
// restarts after silence, the counting rule, the row's array form.
import t from 'tap'
import { EstimatorTable, FOLD } from '../../src/measure/estimator.js'
import type { EstimatorParams } from '../../src/measure/estimator.js'

const T0 = 1_767_000_000_000
const SEC = 1000
const p: EstimatorParams = {
  halfLifeSec: 100,
  minSamples: 3,
  maxAgeSec: 1000,
  outlierK: 4,
  outlierFloorMs: 2,
  outlierFloorPct: 5,
  shiftSamples: 3,
}

function fresh(): { table: EstimatorTable; row: number } {
  const table = new EstimatorTable(1)
  return { table, row: table.allocate(7) }
}

t.test('decayed mean, deviation and weight, by hand', async (t) => {
  const { table, row } = fresh()
  t.equal(table.fold(row, 10, T0, p), FOLD.FOLDED)
  t.strictSame(table.read(row, T0, p), {
    target: 7,
    meanMs: 10,
    devMs: 0,
    weight: 1,
    count: 1,
    lastSampleMs: T0,
    outliers: 0,
    outlierStreak: 0,
    failures: 0,
    failureWeight: 0,
    lastFailureMs: undefined,
  })
  // One half-life later the first sample weighs 1/2: W = 1.5, m = (0.5*10 + 20)/1.5, d = (0 + 10)/1.5.
  table.fold(row, 20, T0 + 100 * SEC, p)
  let s = table.read(row, T0 + 100 * SEC, p)
  t.equal(s.weight, 1.5)
  t.ok(Math.abs(s.meanMs - 25 / 1.5) < 1e-12, `mean ${s.meanMs}`)
  t.ok(Math.abs(s.devMs - 10 / 1.5) < 1e-12, `dev ${s.devMs}`)
  // Same time: a = 1.5, b = 1: m = (25 + 16)/2.5 = 16.4; d = (10 + |16 - 16.667|)/2.5.
  table.fold(row, 16, T0 + 100 * SEC, p)
  s = table.read(row, T0 + 100 * SEC, p)
  t.equal(s.weight, 2.5)
  t.ok(Math.abs(s.meanMs - 16.4) < 1e-12, `mean ${s.meanMs}`)
  t.ok(Math.abs(s.devMs - (10 + 2 / 3) / 2.5) < 1e-12, `dev ${s.devMs}`)
  // Read two half-lives later: the weight decays, the mean does not.
  s = table.read(row, T0 + 300 * SEC, p)
  t.ok(Math.abs(s.weight - 0.625) < 1e-12)
  t.ok(Math.abs(s.meanMs - 16.4) < 1e-12)
  // A late sample (measured at T0, arriving now) weighs what its age says: b = 0.5, W = 3.
  t.equal(table.fold(row, 30, T0, p), FOLD.FOLDED)
  s = table.read(row, T0 + 100 * SEC, p)
  t.equal(s.weight, 3)
  t.ok(Math.abs(s.meanMs - (2.5 * 16.4 + 0.5 * 30) / 3) < 1e-12, `mean ${s.meanMs}`)
  t.ok(Math.abs(s.devMs - (2.5 * ((10 + 2 / 3) / 2.5) + 0.5 * 13.6) / 3) < 1e-12, `dev ${s.devMs}`)
  t.equal(s.lastSampleMs, T0 + 100 * SEC, 'a late sample does not move the newest time back')
  t.equal(s.count, 4)
})

t.test('outliers: rejected beyond k deviations (floored), only once minSamples are in', async (t) => {
  const { table, row } = fresh()
  // Below minSamples nothing is an outlier.
  t.equal(table.fold(row, 20, T0, p), FOLD.FOLDED)
  t.equal(table.fold(row, 20, T0, p), FOLD.FOLDED)
  t.equal(table.fold(row, 20, T0, p), FOLD.FOLDED)
  // Deviation 0, floor max(2 ms, 5% of 20) = 2 ms, k = 4: the limit is 8 ms either side.
  t.equal(table.fold(row, 29, T0, p), FOLD.OUTLIER)
  t.equal(table.fold(row, 11, T0, p), FOLD.OUTLIER)
  let s = table.read(row, T0, p)
  t.equal(s.meanMs, 20, 'outliers leave the mean alone')
  t.equal(s.count, 3)
  t.equal(s.outliers, 2)
  t.equal(table.fold(row, 28, T0, p), FOLD.FOLDED, 'exactly k deviations is not an outlier')
  s = table.read(row, T0, p)
  t.equal(s.meanMs, 22)
  const young = fresh()
  for (const x of [20, 200, 2]) t.equal(young.table.fold(young.row, x, T0, p), FOLD.FOLDED)
  // The floor grows with the mean: at 200 ms, 5% is 10 ms, so 239 ms is within 4 x 10.
  const slow = fresh()
  for (let i = 0; i < 3; i++) slow.table.fold(slow.row, 200, T0, p)
  t.equal(slow.table.fold(slow.row, 239, T0, p), FOLD.FOLDED)
  t.equal(slow.table.fold(slow.row, 300, T0, p), FOLD.OUTLIER)
})

t.test('a level shift is believed after shiftSamples outliers in a row on one side', async (t) => {
  const { table, row } = fresh()
  for (let i = 0; i < 5; i++) table.fold(row, 20, T0, p)
  t.equal(table.fold(row, 80, T0 + 1 * SEC, p), FOLD.OUTLIER)
  t.equal(table.fold(row, 1, T0 + 2 * SEC, p), FOLD.OUTLIER, 'the other side restarts the run')
  t.equal(table.fold(row, 80, T0 + 3 * SEC, p), FOLD.OUTLIER)
  t.equal(table.fold(row, 80, T0 + 4 * SEC, p), FOLD.OUTLIER)
  t.equal(table.fold(row, 21, T0 + 5 * SEC, p), FOLD.FOLDED, 'an ordinary sample breaks the run')
  t.equal(table.read(row, T0 + 5 * SEC, p).outlierStreak, 0)
  t.equal(table.fold(row, 80, T0 + 6 * SEC, p), FOLD.OUTLIER)
  t.equal(table.fold(row, 84, T0 + 7 * SEC, p), FOLD.OUTLIER)
  t.equal(table.read(row, T0 + 7 * SEC, p).outlierStreak, 2)
  t.equal(table.fold(row, 82, T0 + 8 * SEC, p), FOLD.SHIFT)
  const s = table.read(row, T0 + 8 * SEC, p)
  // The estimator is now the run's own: three samples of 80, 84, 82 a second apart (decay ~0.7% per second).
  t.equal(s.count, 3)
  t.ok(Math.abs(s.meanMs - 82) < 0.05, `mean ${s.meanMs}`)
  t.equal(s.lastSampleMs, T0 + 8 * SEC)
  t.equal(s.outlierStreak, 0)
  t.equal(s.outliers, 7, 'every rejected sample was counted, the run included')
  t.ok(table.counts(row, T0 + 8 * SEC, p), 'a shifted estimator counts at once (shiftSamples >= minSamples)')
  t.equal(table.fold(row, 81, T0 + 9 * SEC, p), FOLD.FOLDED, 'the new level is the reference now')
  // A shift downwards works the same.
  for (const x of [10, 10]) t.equal(table.fold(row, x, T0 + 10 * SEC, p), FOLD.OUTLIER)
  t.equal(table.fold(row, 10, T0 + 10 * SEC, p), FOLD.SHIFT)
  t.equal(table.read(row, T0 + 10 * SEC, p).meanMs, 10)
})

t.test('failures are counted and decayed, the RTT untouched', async (t) => {
  const { table, row } = fresh()
  table.fold(row, 20, T0, p)
  table.fail(row, T0, p)
  table.fail(row, T0 + 100 * SEC, p)
  const s = table.read(row, T0 + 100 * SEC, p)
  t.equal(s.failures, 2)
  t.equal(s.failureWeight, 1.5)
  t.equal(s.lastFailureMs, T0 + 100 * SEC)
  t.equal(s.meanMs, 20)
  t.equal(s.count, 1)
  t.equal(table.read(row, T0 + 200 * SEC, p).failureWeight, 0.75)
  t.equal(table.activityMs(row), T0 + 100 * SEC)
})

t.test('counting: minSamples folded and the newest no older than maxAgeSec; silence restarts', async (t) => {
  const { table, row } = fresh()
  table.fold(row, 20, T0, p)
  table.fold(row, 20, T0, p)
  t.notOk(table.counts(row, T0, p), 'two of three samples')
  table.fold(row, 20, T0, p)
  t.ok(table.counts(row, T0, p))
  t.ok(table.counts(row, T0 + 1000 * SEC, p), 'exactly maxAgeSec old still counts')
  t.notOk(table.counts(row, T0 + 1000 * SEC + 1, p))
  // A sample after a silence longer than maxAgeSec starts afresh: no outlier test against the old level.
  t.equal(table.fold(row, 90, T0 + 1001 * SEC, p), FOLD.FOLDED)
  const s = table.read(row, T0 + 1001 * SEC, p)
  t.equal(s.count, 1)
  t.equal(s.meanMs, 90)
  t.equal(s.weight, 1)
})

t.test('array form: trailing zeros left out, every value back exactly', async (t) => {
  const { table, row } = fresh()
  t.strictSame(table.toArray(row), [7])
  table.fold(row, 1 / 3, T0 + 0.5, p)
  table.fold(row, 2 / 3, T0 + 7777.25, p)
  t.strictSame(table.toArray(row).length, 6)
  table.fail(row, T0 + 9, p)
  for (let i = 0; i < 3; i++) table.fold(row, 0.1 + i / 1e6, T0 + 8000, p)
  table.fold(row, 50, T0 + 8001, p)
  const values = table.toArray(row)
  t.equal(values.length, 15, 'an outlier run fills the last fields')
  const copy = new EstimatorTable(1)
  const other = copy.allocate(7)
  t.ok(copy.fromArray(other, JSON.parse(JSON.stringify(values)) as number[]))
  t.strictSame(copy.toArray(other), values)
  t.strictSame(copy.read(other, T0 + 9000, p), table.read(row, T0 + 9000, p))
  t.notOk(copy.fromArray(other, [7, -1]), 'negative')
  t.notOk(copy.fromArray(other, [7, 1, 1, 1, 1, 2.5]), 'fractional count')
  t.notOk(copy.fromArray(other, [7, 1, 'x']), 'not a number')
  t.notOk(copy.fromArray(other, new Array(16).fill(0)), 'too long')
})

t.test('rows are reused after release', async (t) => {
  const table = new EstimatorTable(1)
  const rows = Array.from({ length: 40 }, (_, i) => table.allocate(i))
  t.equal(table.live, 40)
  table.fold(rows[3] as number, 5, T0, p)
  table.release(rows[3] as number)
  const again = table.allocate(99)
  t.equal(again, rows[3])
  t.strictSame(table.toArray(again), [99], 'a reused row starts zeroed')
  t.equal(table.live, 40)
})
