/**
 * Overrides on their own: API bodies validated with JSON paths, stored
 * records checked against the configuration, and the compiled set's pin
 * chain (most specific prefix first, newest first within a prefix, expired
 * pins skipped) and bias sums. Decisions that use them: select-overrides.test.ts.
 */
import t from 'tap'
import { buildSteeringSetup, compileOverrides, createPinMatch, OverrideErrorCode, parseClientKey, validateOverride, validateOverrideRecord } from '../../src/steering/index.js'
import type { OverrideError, OverrideRecord, OverrideSet } from '../../src/steering/index.js'

const setup = buildSteeringSetup({
  targets: ['sea-1', 'ord-1', 'lhr-1'].map((id) => ({ id, site: id, ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 100, tags: [] })),
  services: [],
  map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 },
})
const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const opts = { id: 'ov-1', nowMs: NOW_MS }

t.test('validateOverride: good pin and bias bodies become records', async (t) => {
  t.same(validateOverride({ prefix: '198.51.100.0/24', targets: ['sea-1', 'ord-1'], reason: 'maintenance in ord' }, setup, opts), {
    record: { id: 'ov-1', kind: 'pin', prefix: '198.51.100.0/24', targets: ['sea-1', 'ord-1'], reason: 'maintenance in ord' },
    problems: [],
  })
  t.same(validateOverride({ target: 'lhr-1', biasMs: -15.5, reason: 'new transit', expiresAt: '2026-11-26T13:00:00Z' }, setup, opts), {
    record: { id: 'ov-1', kind: 'bias', target: 'lhr-1', biasMs: -15.5, reason: 'new transit', expiresAtMs: NOW_MS + 3_600_000 },
    problems: [],
  })
  t.equal(validateOverride({ kind: 'pin', prefix: '2001:db8::/32', targets: ['lhr-1'], reason: 'v6 test' }, setup, opts).record?.kind, 'pin')
})

t.test('validateOverride: every problem, each with its path in the body', async (t) => {
  const cases: [string, unknown, [string, RegExp][]][] = [
    ['not an object', [1], [['', /JSON object/]]],
    ['neither kind', { reason: 'x' }, [['', /needs prefix and targets .* or target and biasMs/]]],
    ['both kinds', { prefix: '198.51.100.0/24', target: 'sea-1', reason: 'x' }, [['', /not both/]]],
    ['prefix without length', { prefix: '198.51.100.0', targets: ['sea-1'], reason: 'x' }, [['prefix', /^not a CIDR/]]],
    ['prefix not an address', { prefix: 'sea-1/24', targets: ['sea-1'], reason: 'x' }, [['prefix', /^not a CIDR/]]],
    ['prefix length too long', { prefix: '198.51.100.0/33', targets: ['sea-1'], reason: 'x' }, [['prefix', /^not a CIDR.*0-32/]]],
    ['host bits set', { prefix: '198.51.100.7/24', targets: ['sea-1'], reason: 'x' }, [['prefix', /198\.51\.100\.0\/24/]]],
    [
      'unknown and repeated targets',
      { prefix: '198.51.100.0/24', targets: ['sea-1', 'x', 'sea-1', 7], reason: 'x' },
      [
        ['targets[1]', /unknown target "x"/],
        ['targets[2]', /repeats target "sea-1"/],
        ['targets[3]', /target id/],
      ],
    ],
    ['empty targets', { prefix: '198.51.100.0/24', targets: [], reason: 'x' }, [['targets', /1-16 target ids/]]],
    ['no reason', { prefix: '198.51.100.0/24', targets: ['sea-1'], reason: '  ' }, [['reason', /non-empty/]]],
    ['reason too long', { prefix: '198.51.100.0/24', targets: ['sea-1'], reason: 'r'.repeat(501) }, [['reason', /at most 500/]]],
    ['expiry in the past', { prefix: '198.51.100.0/24', targets: ['sea-1'], reason: 'x', expiresAt: '2026-11-26T12:00:00Z' }, [['expiresAt', /not in the future/]]],
    ['expiry not a time', { prefix: '198.51.100.0/24', targets: ['sea-1'], reason: 'x', expiresAt: 'tomorrow' }, [['expiresAt', /RFC 3339/]]],
    ['unknown field', { prefix: '198.51.100.0/24', targets: ['sea-1'], reason: 'x', weight: 3 }, [['weight', /unknown field/]]],
    ['kind disagrees', { kind: 'bias', prefix: '198.51.100.0/24', targets: ['sea-1'], reason: 'x' }, [['kind', /make a pin/]]],
    ['bias unknown target, too large', { target: 'nrt-9', biasMs: 20_000, reason: 'x' }, [['target', /unknown target "nrt-9"/], ['biasMs', /-10000 to 10000/]]],
    ['bias not a number', { target: 'sea-1', biasMs: '20', reason: 'x' }, [['biasMs', /number of ms/]]],
  ]
  for (const [title, body, expected] of cases) {
    const v = validateOverride(body, setup, opts)
    t.equal(v.record, undefined, `${title}: no record`)
    t.same(
      v.problems.map((p) => p.path),
      expected.map((e) => e[0]),
      `${title}: paths`,
    )
    expected.forEach(([, message], i) => t.match(v.problems[i]?.message, message, `${title}: message ${i}`))
  }
})

t.test('validateOverrideRecord and compileOverrides: stored records checked against the configuration', async (t) => {
  const good: OverrideRecord = { id: 'a', kind: 'pin', prefix: '10.0.0.0/8', targets: ['sea-1'], reason: 'r' }
  t.same(validateOverrideRecord(good, setup), [])
  t.same(
    validateOverrideRecord({ id: '', kind: 'bias', target: 'gone-1', biasMs: 5, reason: 'r', expiresAtMs: Infinity }, setup).map((p) => p.path),
    ['id', 'expiresAtMs', 'target'],
  )
  const records = [good, { ...good, targets: ['sea-1', 'gone-1'] }, { id: 'a', kind: 'bias', target: 'sea-1', biasMs: 5, reason: 'r' }] as OverrideRecord[]
  t.throws(() => compileOverrides(records, setup), { code: OverrideErrorCode.INVALID })
  try {
    compileOverrides(records, setup)
  } catch (err) {
    t.same(
      (err as OverrideError).problems.map((p) => `${p.path}: ${p.message}`),
      ['[1].targets[1]: unknown target "gone-1"', '[1].id: repeats the id of [0]', '[2].id: repeats the id of [0]'],
    )
  }
})

/** The ids of the pins chain() visits for `client`, expired ones included, and the deepest pin below it. */
function chain(set: OverrideSet, client: string, nowMs = NOW_MS): { ids: string[]; active: string[]; below: number } {
  const m = createPinMatch()
  set.lookupPin(parseClientKey(client, 'ecs'), m)
  const ids: string[] = []
  const active: string[] = []
  for (let p = m.pin; p >= 0; p = set.nextPin(p)) {
    ids.push(set.pinRecord(p).id)
    if (set.isPinActive(p, nowMs)) active.push(set.pinRecord(p).id)
  }
  return { ids, active, below: m.deepestBelowLen }
}

t.test('pin chain: most specific prefix first, newest first within a prefix, both families', async (t) => {
  const pin = (id: string, prefix: string, expiresAtMs?: number): OverrideRecord => ({ id, kind: 'pin', prefix, targets: ['sea-1'], reason: id, ...(expiresAtMs ? { expiresAtMs } : {}) })
  const set = compileOverrides(
    [
      pin('v4-8', '10.0.0.0/8'),
      pin('v4-24-old', '10.1.2.0/24'),
      pin('v4-16', '10.1.0.0/16'),
      pin('v4-24-new', '10.1.2.0/24', NOW_MS),
      pin('v6-32', '2001:db8::/32'),
      pin('v6-48', '2001:db8:aaaa::/48'),
      pin('mapped', '::ffff:192.0.2.0/120'),
      pin('all-v4', '0.0.0.0/0'),
    ],
    setup,
    { version: 3 },
  )
  t.equal(set.version, 3)
  t.equal(set.pinCount, 8)
  t.same(chain(set, '10.1.2.3/32'), { ids: ['v4-24-new', 'v4-24-old', 'v4-16', 'v4-8', 'all-v4'], active: ['v4-24-old', 'v4-16', 'v4-8', 'all-v4'], below: -1 })
  t.same(chain(set, '10.1.0.0/16'), { ids: ['v4-16', 'v4-8', 'all-v4'], active: ['v4-16', 'v4-8', 'all-v4'], below: 24 }, 'a /16 source sees the /24 pins below it')
  t.same(chain(set, '10.200.0.0/16').ids, ['v4-8', 'all-v4'])
  t.same(chain(set, '11.0.0.0/8').ids, ['all-v4'])
  t.same(chain(set, '2001:db8:aaaa:1::/64').ids, ['v6-48', 'v6-32'])
  t.same(chain(set, '2001:db9::/32').ids, [], 'no v6 pin covers it')
  t.same(chain(set, '192.0.2.77/32').ids, ['mapped', 'all-v4'], 'IPv4-mapped pin prefix is the IPv4 /24')
  t.same(chain(set, '::ffff:192.0.2.77/128').ids, ['mapped', 'all-v4'], 'IPv4-mapped client key too')
  t.equal(set.nextExpiryMs, NOW_MS)
  t.same(
    set.active(NOW_MS).map((r) => r.id),
    ['v4-8', 'v4-24-old', 'v4-16', 'v6-32', 'v6-48', 'mapped', 'all-v4'],
    'active() leaves out the expired record',
  )
})

t.test('biases: per target sums of the active ones', async (t) => {
  const bias = (id: string, target: string, biasMs: number, expiresAtMs?: number): OverrideRecord => ({ id, kind: 'bias', target, biasMs, reason: id, ...(expiresAtMs ? { expiresAtMs } : {}) })
  const set = compileOverrides([bias('b1', 'lhr-1', 20), bias('b2', 'sea-1', -5), bias('b3', 'lhr-1', 7, NOW_MS + 1000)], setup)
  const lhr = setup.targetIndex.get('lhr-1') as number
  const sea = setup.targetIndex.get('sea-1') as number
  const ord = setup.targetIndex.get('ord-1') as number
  t.equal(set.hasBias, true)
  t.equal(set.biasMs(lhr, NOW_MS), 27, 'two biases on one target add up')
  t.equal(set.biasMs(lhr, NOW_MS + 1000), 20, 'an expired bias stops counting at its expiry')
  t.same(
    set.activeBiases(lhr, NOW_MS).map((b) => b.id),
    ['b1', 'b3'],
  )
  t.equal(set.biasMs(sea, NOW_MS), -5)
  t.equal(set.biasMs(ord, NOW_MS), 0)
  t.equal(compileOverrides([], setup).hasBias, false)
})
