/**
 * Reported load in target states: load, overloaded (strictly above the
 * watermark), spare capacity (weight × room below the watermark), the
 * snapshot-wide anyOverloaded flag select() checks first, describe(), and
 * bad loads or watermarks refused with JSON paths. Passive health's
 * degraded verdict: not serving, still alive. Decisions: select-shed.test.ts.
 */
import t from 'tap'
import { buildSteeringSetup, createTargetStates, DEFAULT_OVERLOAD_WATERMARK, OverrideErrorCode } from '../../src/steering/index.js'
import type { OverrideError, TargetAdminRecord } from '../../src/steering/index.js'

const setup = buildSteeringSetup({
  targets: ['sea-1', 'ord-1', 'lhr-1', 'nrt-1'].map((id, i) => ({ id, site: id, ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 100 * (i + 1), tags: [] })),
  services: [],
  map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 },
})
const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const index = (id: string) => setup.targetIndex.get(id) as number

t.test('load, overloaded and spare capacity against the watermark', async (t) => {
  // Capacities: sea-1 100, ord-1 200, lhr-1 300, nrt-1 400; ord-1 has an admin weight of 50.
  const admin = new Map<string, TargetAdminRecord>([['ord-1', { admin: 'up', weight: 50, reason: 'half', changedAtMs: NOW_MS }]])
  const load = new Map([
    ['sea-1', 1.2],
    ['ord-1', 0.5],
    ['lhr-1', 0.9],
  ])
  const s = createTargetStates(setup, admin, { load })
  t.equal(s.overloadWatermark, DEFAULT_OVERLOAD_WATERMARK, 'default watermark')
  t.equal(DEFAULT_OVERLOAD_WATERMARK, 0.9, 'matches config health.overloadWatermark')
  const rows = ['sea-1', 'ord-1', 'lhr-1', 'nrt-1'].map((id) => [id, s.load(index(id)), s.overloaded(index(id)), Math.round(s.spareCapacity(index(id), NOW_MS) * 1000) / 1000])
  t.same(rows, [
    ['sea-1', 1.2, true, 0],
    // weight 50 (not capacity 200) × (0.9 − 0.5)
    ['ord-1', 0.5, false, 20],
    ['lhr-1', 0.9, false, 0],
    // never reported: idle, 400 × 0.9
    ['nrt-1', undefined, false, 360],
  ])
  t.equal(s.anyOverloaded, true)
  t.match(s.describe(index('sea-1'), NOW_MS), { load: 1.2, overloaded: true })
  t.match(s.describe(index('nrt-1'), NOW_MS), { load: undefined, overloaded: false })
  t.equal(s.overloaded(99), false, 'out of range reads as not overloaded')

  const higher = createTargetStates(setup, admin, { load, overloadWatermark: 1.25 })
  t.same([higher.overloaded(index('sea-1')), higher.anyOverloaded, Math.round(higher.spareCapacity(index('sea-1'), NOW_MS) * 1000) / 1000], [false, false, 5])
  t.equal(createTargetStates(setup).anyOverloaded, false, 'no load reported: nothing overloaded')
})

t.test('bad loads and watermarks: every problem, with paths', async (t) => {
  const load = new Map([
    ['sea-1', -0.1],
    ['ord-1', Number.NaN],
    ['nope-1', 0.5],
    ['lhr-1', 101],
  ])
  const bad = () => createTargetStates(setup, new Map(), { load, overloadWatermark: 0 })
  t.throws(bad, { code: OverrideErrorCode.TARGET_STATE_INVALID })
  try {
    bad()
  } catch (err) {
    t.same(
      (err as OverrideError).problems.map((p) => p.path),
      ['overloadWatermark', 'load["sea-1"]', 'load["ord-1"]', 'load["nope-1"]', 'load["lhr-1"]'],
    )
  }
})

t.test('degraded: not serving, still alive; draining: alive; down: neither', async (t) => {
  const admin = new Map<string, TargetAdminRecord>([
    ['ord-1', { admin: 'drain', reason: 'x', changedAtMs: NOW_MS }],
    ['lhr-1', { admin: 'down', reason: 'x', changedAtMs: NOW_MS }],
  ])
  const health = new Map([
    ['sea-1', { status: 'up' as const, degraded: true }],
    ['nrt-1', { status: 'down' as const, degraded: true }],
  ])
  const s = createTargetStates(setup, admin, { health })
  const rows = ['sea-1', 'ord-1', 'lhr-1', 'nrt-1'].map((id) => [id, s.serving(index(id), NOW_MS), s.alive(index(id), NOW_MS), s.degradedButUp(index(id), NOW_MS)])
  t.same(rows, [
    ['sea-1', false, true, true],
    ['ord-1', false, true, false],
    ['lhr-1', false, false, false],
    ['nrt-1', false, false, false],
  ])
})
