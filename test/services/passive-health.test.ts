/** Passive health: a target degrades when enough of its recent reports failed, and recovers as the window slides. */
import t from 'tap'
import { PassiveHealth } from '../../src/services/passive-health.js'

const T0 = 1_800_000_000_000

t.test('degraded at the threshold with enough reports; not below either', async (t) => {
  const p = new PassiveHealth({ failurePct: 50, minReports: 10, windowSec: 60 }, 2)
  for (let i = 0; i < 9; i++) p.record(0, false, T0 + i * 100)
  t.same(p.evaluate(T0 + 1000), [], '9 failures of 9: under minReports, no verdict')
  p.record(0, true, T0 + 1500)
  t.same(p.evaluate(T0 + 2000), [0], '9 of 10 failed: degraded')
  t.match(p.verdictOf(0, T0 + 2000), { degraded: true, reports: 10, failures: 9, changedAtMs: T0 + 2000 })
  t.same(p.evaluate(T0 + 2500), [], 'no change, no report')
  t.equal(p.verdictOf(1, T0 + 2000).degraded, false, 'the other target is untouched')

  const q = new PassiveHealth({ failurePct: 50, minReports: 10, windowSec: 60 }, 1)
  for (let i = 0; i < 20; i++) q.record(0, i % 5 !== 0 ? true : false, T0 + i)
  t.same(q.evaluate(T0 + 100), [], '4 of 20 failed (20%): healthy')
})

t.test('the window slides: old failures stop counting and the target recovers', async (t) => {
  const p = new PassiveHealth({ failurePct: 50, minReports: 5, windowSec: 10 }, 1)
  for (let i = 0; i < 6; i++) p.record(0, false, T0 + i * 1000)
  t.same(p.evaluate(T0 + 6000), [0], 'degraded')
  t.equal(p.verdictOf(0, T0 + 14_000).reports, 1, 'at +14 s only the seconds 5..14 count: one failure left')
  t.same(p.evaluate(T0 + 14_000), [0], 'too few reports left: no longer degraded')
  t.equal(p.verdictOf(0, T0 + 14_000).degraded, false)
  for (let i = 0; i < 10; i++) p.record(0, true, T0 + 15_000 + i)
  t.same(p.evaluate(T0 + 16_000), [], 'healthy reports keep it healthy')
})

t.test('reports dated before the window (replayed after a leader change) count for nothing and erase nothing', async (t) => {
  const p = new PassiveHealth({ failurePct: 50, minReports: 5, windowSec: 10 }, 1)
  for (let i = 0; i < 6; i++) p.record(0, true, T0 + 20_000 + i)
  // Six failures from 20 s earlier, filed under their own time after the newer successes.
  for (let i = 0; i < 6; i++) p.record(0, false, T0 + i)
  t.same(p.evaluate(T0 + 21_000), [], 'not degraded by old failures')
  t.equal(p.verdictOf(0, T0 + 21_000).reports, 6, 'the six recent successes still count')
  t.equal(p.verdictOf(0, T0 + 21_000).failures, 0)
})
