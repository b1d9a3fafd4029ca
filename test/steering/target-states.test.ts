/**
 * Target states on their own: admin state combined with health and the
 * passive degraded verdict into "serving", weights replacing capacity, expiry
 * restoring up at capacity (and counting as a change), PATCH bodies validated
 * with JSON paths, bad records refused with every problem. Load and the
 * overload watermark: target-load.test.ts. Decisions that use them:
 * select-overrides.test.ts and select-shed.test.ts.
 */
import t from 'tap'
import { buildSteeringSetup, createTargetStates, OverrideErrorCode, validateTargetPatch } from '../../src/steering/index.js'
import type { OverrideError, TargetAdminRecord, TargetHealthRecord } from '../../src/steering/index.js'

const setup = buildSteeringSetup({
  targets: ['sea-1', 'ord-1', 'lhr-1', 'nrt-1'].map((id, i) => ({ id, site: id, ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 100 * (i + 1), tags: [] })),
  services: [],
  map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 },
})
const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const index = (id: string) => setup.targetIndex.get(id) as number

t.test('serving combines admin state and health; weight replaces capacity', async (t) => {
  const admin = new Map<string, TargetAdminRecord>([
    ['sea-1', { admin: 'drain', reason: 'kernel upgrade', changedAtMs: NOW_MS - 10_000 }],
    ['ord-1', { admin: 'up', weight: 5, reason: 'half a rack', changedAtMs: NOW_MS - 99_000 }],
    ['lhr-1', { admin: 'down', reason: 'fibre cut', changedAtMs: NOW_MS - 1_000 }],
  ])
  const health = new Map<string, TargetHealthRecord>([
    ['ord-1', { status: 'up', degraded: true, changedAtMs: NOW_MS - 5_000 }],
    ['nrt-1', { status: 'down', changedAtMs: NOW_MS - 20_000 }],
  ])
  const s = createTargetStates(setup, admin, { health, version: 4 })
  const rows = ['sea-1', 'ord-1', 'lhr-1', 'nrt-1'].map((id) => {
    const d = s.describe(index(id), NOW_MS)
    return [d.id, d.admin, d.health, d.serving, d.weight, d.degraded, d.changedAtMs === undefined ? undefined : (NOW_MS - d.changedAtMs) / 1000]
  })
  t.same(rows, [
    ['sea-1', 'drain', 'unknown', false, 100, false, 10],
    // Degraded by passive health: up, but no new clients.
    ['ord-1', 'up', 'up', false, 5, true, 5],
    ['lhr-1', 'down', 'unknown', false, 300, false, 1],
    ['nrt-1', 'up', 'down', false, 400, false, 20],
  ])
  t.equal(s.version, 4)
  t.equal(s.drainingButAlive(index('sea-1'), NOW_MS), true)
  t.equal(s.drainingButAlive(index('lhr-1'), NOW_MS), false)
  const none = createTargetStates(setup)
  t.same([none.serving(0, NOW_MS), none.weight(3, NOW_MS), Number.isNaN(none.changedAtMs(0, NOW_MS))], [true, 400, true], 'no records: up at capacity, never changed')
})

t.test('an admin record stops applying at its expiry, which counts as a change', async (t) => {
  const expiresAtMs = NOW_MS + 60_000
  const s = createTargetStates(setup, new Map([['sea-1', { admin: 'down', weight: 1, reason: 'planned', expiresAtMs, changedAtMs: NOW_MS - 5_000 } as const]]))
  const sea = index('sea-1')
  t.same([s.admin(sea, expiresAtMs - 1), s.serving(sea, expiresAtMs - 1), s.weight(sea, expiresAtMs - 1), s.changedAtMs(sea, expiresAtMs - 1)], ['down', false, 1, NOW_MS - 5_000])
  t.same([s.admin(sea, expiresAtMs), s.serving(sea, expiresAtMs), s.weight(sea, expiresAtMs), s.changedAtMs(sea, expiresAtMs + 7)], ['up', true, 100, expiresAtMs])
  t.equal(s.adminRecord(sea, expiresAtMs), undefined)
})

t.test('bad records: every problem at once, paths by target id', async (t) => {
  const admin = new Map<string, TargetAdminRecord>([
    ['nope-1', { admin: 'down', reason: 'x', changedAtMs: NOW_MS }],
    ['sea-1', { admin: 'off' as 'down', weight: -1, reason: '', changedAtMs: NaN }],
  ])
  const health = new Map<string, TargetHealthRecord>([['ord-1', { status: 'sick' as 'down' }]])
  t.throws(() => createTargetStates(setup, admin, { health }), { code: OverrideErrorCode.TARGET_STATE_INVALID })
  try {
    createTargetStates(setup, admin, { health })
  } catch (err) {
    t.same(
      (err as OverrideError).problems.map((p) => p.path),
      ['["nope-1"]', '["sea-1"].admin', '["sea-1"].weight', '["sea-1"].reason', '["sea-1"].changedAtMs', 'health["ord-1"].status'],
    )
  }
})

t.test('validateTargetPatch: partial updates, changedAtMs only on a real change', async (t) => {
  const drained = validateTargetPatch({ state: 'drain', reason: 'maintenance', expiresAt: '2026-11-26T14:00:00Z' }, undefined, NOW_MS)
  t.same(drained, { record: { admin: 'drain', reason: 'maintenance', expiresAtMs: NOW_MS + 7_200_000, changedAtMs: NOW_MS }, problems: [] })
  const prev = drained.record as TargetAdminRecord
  const reworded = validateTargetPatch({ reason: 'maintenance, ticket 42' }, prev, NOW_MS + 1000)
  t.same(reworded.record, { ...prev, reason: 'maintenance, ticket 42' }, 'only the reason changed: changedAtMs kept')
  const weighted = validateTargetPatch({ weight: 50, expiresAt: null, reason: 'less' }, prev, NOW_MS + 2000)
  t.same(weighted.record, { admin: 'drain', weight: 50, reason: 'less', changedAtMs: NOW_MS + 2000 }, 'weight changed; expiry cleared')
  const back = validateTargetPatch({ state: 'up', weight: null, reason: 'done' }, weighted.record, NOW_MS + 3000)
  t.same(back.record, { admin: 'up', reason: 'done', changedAtMs: NOW_MS + 3000 }, 'back up at capacity: a change, kept for the TTL window')
  const afterExpiry = validateTargetPatch({ reason: 'note' }, prev, NOW_MS + 7_200_000)
  t.same(afterExpiry.record?.admin, 'up', 'an expired previous record is not carried forward')
})

t.test('validateTargetPatch: problems with paths in the body', async (t) => {
  const cases: [unknown, string[]][] = [
    ['down', ['']],
    [{ state: 'off', reason: 'x' }, ['state']],
    [{ weight: -3, reason: 'x' }, ['weight']],
    [{ weight: 'heavy', reason: 'x' }, ['weight']],
    [{ state: 'down' }, ['reason']],
    [{ state: 'down', reason: 'x', expiresAt: '2026-11-26T11:00:00Z' }, ['expiresAt']],
    [{ state: 'down', reason: 'x', expiresAt: 12 }, ['expiresAt']],
    [{ state: 'down', reason: 'x', admin: 'down' }, ['admin']],
  ]
  for (const [body, paths] of cases) {
    const v = validateTargetPatch(body, undefined, NOW_MS)
    t.equal(v.record, undefined, JSON.stringify(body))
    t.same(
      v.problems.map((p) => p.path),
      paths,
      JSON.stringify(body),
    )
  }
})
