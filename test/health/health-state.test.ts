// The health state machine, pure: the first result decides an unknown
// target, rise and fall count exactly, an alternating endpoint never moves a
// decided state, seeds behave like decided states; and the jitter bounds.
import t from 'tap'
import { nextHealthState, seededState, UNKNOWN_STATE } from '../../src/health/index.js'
import type { HealthState, ProbeResult, Thresholds } from '../../src/health/index.js'
import { firstDelayMs, nextIntervalMs } from '../../src/health/schedule.js'
import type { TargetHealthRecord } from '../../src/steering/index.js'

const OK: ProbeResult = { ok: true }
const FAIL: ProbeResult = { ok: false, error: 'ECONNREFUSED' }

/** Feeds results written as a string ("+" ok, "-" fail) and returns the status after each, as a string (u/U/D). */
function run(start: HealthState, results: string, th: Thresholds): { trace: string; final: HealthState; changes: number } {
  let s = start
  let trace = ''
  let changes = 0
  let now = 1000
  for (const ch of results) {
    const next = nextHealthState(s, ch === '+' ? OK : FAIL, th, (now += 1000), 5)
    if (next.status !== s.status) changes++
    s = next
    trace += s.status === 'up' ? 'U' : s.status === 'down' ? 'D' : 'u'
  }
  return { trace, final: s, changes }
}

const R2F3: Thresholds = { rise: 2, fall: 3 }

t.test('state machine table (rise 2, fall 3 unless given)', async (t) => {
  const cases: { name: string; start: HealthState; results: string; trace: string; th?: Thresholds }[] = [
    { name: 'unknown: the first success decides up', start: UNKNOWN_STATE, results: '+', trace: 'U' },
    { name: 'unknown: the first failure decides down', start: UNKNOWN_STATE, results: '-', trace: 'D' },
    { name: 'up falls on exactly the 3rd consecutive failure', start: UNKNOWN_STATE, results: '+---', trace: 'UUUD' },
    { name: 'a success resets the failure count', start: UNKNOWN_STATE, results: '+--+---', trace: 'UUUUUUD' },
    { name: 'down rises on exactly the 2nd consecutive success', start: UNKNOWN_STATE, results: '-++', trace: 'DDU' },
    { name: 'a failure resets the success count', start: UNKNOWN_STATE, results: '-+-++', trace: 'DDDDU' },
    { name: 'alternating from up never changes', start: UNKNOWN_STATE, results: '+-+-+-+-+-+-+-+-', trace: 'U'.repeat(16) },
    { name: 'alternating from down never changes', start: UNKNOWN_STATE, results: '-+-+-+-+-+-+-+-+', trace: 'D'.repeat(16) },
    { name: 'two failures between successes never fall', start: UNKNOWN_STATE, results: '+--+--+--+--', trace: 'U'.repeat(12) },
    { name: 'seeded up holds through fall-1 failures', start: seededState('up', 1), results: '--+---', trace: 'UUUUUD' },
    { name: 'seeded down still down is never up', start: seededState('down', 1), results: '-----', trace: 'DDDDD' },
    { name: 'seeded down that recovered needs rise successes', start: seededState('down', 1), results: '++', trace: 'DU' },
    { name: 'seeded down with one lucky success stays down', start: seededState('down', 1), results: '+-+-', trace: 'DDDD' },
    { name: 'rise 1 / fall 1 follow every result', start: UNKNOWN_STATE, results: '+-+', trace: 'UDU', th: { rise: 1, fall: 1 } },
  ]
  for (const c of cases) t.equal(run(c.start, c.results, c.th ?? R2F3).trace, c.trace, c.name)
})

t.test('counters, timestamps and errors', async (t) => {
  const s1 = nextHealthState(UNKNOWN_STATE, OK, R2F3, 5000, 12)
  t.match(s1, { status: 'up', changedAtMs: 5000, consecutiveOk: 1, consecutiveFail: 0, lastCheckMs: 5000, lastDurationMs: 12 })
  t.notOk('lastError' in s1, 'no error after a success')
  const s2 = nextHealthState(s1, { ok: false, error: 'status 503' }, R2F3, 6000, 3)
  t.match(s2, { status: 'up', changedAtMs: 5000, consecutiveOk: 0, consecutiveFail: 1, lastError: 'status 503', lastCheckMs: 6000 })
  const s3 = nextHealthState(s2, OK, R2F3, 7000, 3)
  t.notOk('lastError' in s3, 'the error goes with the next success')
  t.ok(Object.isFrozen(s3), 'states are immutable')
  t.equal(seededState('down', 42).changedAtMs, 42, 'a seed keeps its change time')
  t.equal(seededState('down', NaN).changedAtMs, undefined, 'a bad seed time is dropped')
  const fromSeed = run(seededState('down', 42), '++', R2F3).final
  t.equal(fromSeed.changedAtMs, 3000, 'the change time moves when the seeded status changes')
  t.equal(run(seededState('down', 42), '-', R2F3).final.changedAtMs, 42, 'and not when it holds')
})

t.test('a long random sequence: the status changes only at the thresholds', async (t) => {
  let x = 7
  const rand = (): number => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648)
  let results = ''
  for (let i = 0; i < 2000; i++) results += rand() < 0.6 ? '+' : '-'
  const th = { rise: 3, fall: 4 }
  let s = UNKNOWN_STATE
  let i = 0
  let changes = 0
  for (const ch of results) {
    const next = nextHealthState(s, ch === '+' ? OK : FAIL, th, i, 1)
    if (i > 0 && next.status !== s.status) {
      changes++
      const tail = results.slice(0, i + 1)
      if (next.status === 'down') t.ok(tail.endsWith('-'.repeat(th.fall)), `down at ${i} after ${th.fall} failures`)
      else t.ok(tail.endsWith('+'.repeat(th.rise)), `up at ${i} after ${th.rise} successes`)
    }
    s = next
    i++
  }
  t.ok(changes >= 10, `the sequence exercised both directions (${changes} changes)`)
})

t.test('jitter: first tick in [0, interval), then [0.9, 1.0) × interval', async (t) => {
  for (const r of [0, 0.25, 0.5, 0.999999]) {
    const first = firstDelayMs(1000, () => r)
    t.ok(first >= 0 && first < 1000, `first ${first}`)
    const next = nextIntervalMs(1000, () => r)
    t.ok(next >= 900 && next < 1000, `next ${next}`)
  }
  t.equal(firstDelayMs(1000, () => 0.5), 500)
  t.equal(nextIntervalMs(1000, () => 0), 900)
  t.ok(nextIntervalMs(1000, () => 7) < 1000, 'a random source out of range cannot stretch the interval')
  t.equal(nextIntervalMs(1000, () => NaN), 900)
  t.equal(firstDelayMs(1000, () => -1), 0)
})

t.test('a HealthState is a TargetHealthRecord (what steering consumes)', async (t) => {
  const states: ReadonlyMap<string, HealthState> = new Map([['sea-1', nextHealthState(UNKNOWN_STATE, OK, R2F3, 1, 1)]])
  const records: ReadonlyMap<string, TargetHealthRecord> = states
  t.equal(records.get('sea-1')?.status, 'up')
})
