/**
 * Overrides and target admin state inside the steering decision (DESIGN.md
 * steps 2, 3 and 7): pins win before the map (most specific first, IPv4 and
 * IPv6), fall through when no pinned target serves; biases move ranking by
 * exactly their amount against the tolerance band; drained and down targets
 * leave the answer; weights replace capacity for load sharing; the TTL drops
 * to the minimum after a state change; expired overrides stop applying.
 * Real map (parseMapJson); no geo database, so fallbacks are the pool.
 */
import t from 'tap'
import { greatCircleKm } from '../../src/geo/index.js'
import { buildSteeringSetup, compileOverrides, createTargetStates, explain, parseClientKey, parseMapJson, select } from '../../src/steering/index.js'
import type { Decision, OverrideRecord, SteeringView, TargetAdminRecord, TargetHealthRecord } from '../../src/steering/index.js'

const setup = buildSteeringSetup({
  targets: [
    { id: 'sea-1', site: 'seattle', ipv4: ['192.0.2.11'], ipv6: ['2001:db8:10::11'], location: { lat: 47.61, lon: -122.33 }, capacity: 100, tags: ['na'] },
    { id: 'ord-1', site: 'chicago', ipv4: ['192.0.2.12'], ipv6: [], location: { lat: 41.88, lon: -87.63 }, capacity: 100, tags: ['na'] },
    { id: 'lhr-1', site: 'london', ipv4: ['198.51.100.15'], ipv6: ['2001:db8:30::15'], location: { lat: 51.51, lon: -0.13 }, capacity: 100, tags: ['eu'] },
    { id: 'nrt-1', site: 'tokyo', ipv4: ['203.0.113.19'], ipv6: [], location: { lat: 35.68, lon: 139.69 }, capacity: 300, tags: ['as'] },
  ],
  services: [
    { name: 'api.example.test', pool: ['tag:na', 'tag:eu', 'tag:as'], answers: 1, ttl: { min: 10, max: 60 }, allDown: 'best' },
    { name: 'eu.example.test', pool: ['lhr-1'], answers: 1, ttl: { min: 5, max: 30 }, allDown: 'static' },
  ],
  map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 },
})

const map = parseMapJson(
  {
    version: 9,
    entries: [
      { prefix: '10.0.0.0/8', targets: [{ id: 'ord-1', score: 30, samples: 100 }] },
      { prefix: '10.1.0.0/16', targets: [{ id: 'lhr-1', score: 20, samples: 50 }, { id: 'ord-1', score: 60, samples: 20 }] },
      { prefix: '10.1.2.0/24', targets: [{ id: 'sea-1', score: 5, samples: 40 }] },
      { prefix: '172.16.0.0/12', targets: [{ id: 'sea-1', score: 10, samples: 10 }, { id: 'nrt-1', score: 10.5, samples: 10 }] },
      { prefix: '2001:db8:aaaa::/48', targets: [{ id: 'lhr-1', score: 9, samples: 10 }, { id: 'sea-1', score: 90, samples: 10 }] },
    ],
  },
  (id) => setup.targetIndex.get(id),
)

const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const LONG_AGO_MS = NOW_MS - 86_400_000
const base: SteeringView = { setup, map, geo: undefined, isServing: () => true, distanceKm: greatCircleKm }

interface Scenario {
  overrides?: OverrideRecord[]
  admin?: Record<string, Partial<TargetAdminRecord>>
  health?: Record<string, TargetHealthRecord>
}

function viewOf(s: Scenario = {}): SteeringView {
  const admin = new Map(Object.entries(s.admin ?? {}).map(([id, r]) => [id, { admin: 'up', reason: 'test', changedAtMs: LONG_AGO_MS, ...r } as TargetAdminRecord]))
  return {
    ...base,
    overrides: compileOverrides(s.overrides ?? [], setup),
    targetStates: createTargetStates(setup, admin, { health: new Map(Object.entries(s.health ?? {})) }),
  }
}

function decide(view: SteeringView, client: string, opts: { family?: 4 | 6; service?: string; nowMs?: number } = {}): Decision & { ids: string[] } {
  const service = setup.services.get(opts.service ?? 'api.example.test')
  if (!service) throw new Error('service missing')
  const d = select(service, parseClientKey(client, 'ecs'), opts.family ?? 4, view, opts.nowMs ?? NOW_MS, true)
  return { ...d, ids: d.targets.map((i) => setup.targets[i]?.id ?? '?') }
}

const pin = (id: string, prefix: string, targets: string[], extra: Partial<OverrideRecord> = {}): OverrideRecord => ({ id, kind: 'pin', prefix, targets, reason: `why ${id}`, ...extra }) as OverrideRecord
const bias = (id: string, target: string, biasMs: number, extra: Partial<OverrideRecord> = {}): OverrideRecord => ({ id, kind: 'bias', target, biasMs, reason: `why ${id}`, ...extra }) as OverrideRecord

t.test('pins: the most specific covering pin wins over the map (IPv4 and IPv6)', async (t) => {
  const view = viewOf({
    overrides: [
      pin('p16', '10.1.0.0/16', ['ord-1']),
      pin('p24', '10.1.2.0/24', ['nrt-1']),
      pin('v6-48', '2001:db8:aaaa::/48', ['sea-1', 'ord-1']),
      pin('v6-56', '2001:db8:aaaa:100::/56', ['lhr-1']),
    ],
  })
  const cases: [string, 4 | 6, string, string[], number][] = [
    // client, answer family, deciding pin, answer, scope
    ['10.1.2.5/32', 4, 'p24', ['nrt-1'], 24],
    ['10.1.9.0/24', 4, 'p16', ['ord-1'], 16],
    // A /16 source: the /16 pin decides, but the /24 pin (and map entry) below need a /24 source.
    ['10.1.0.0/16', 4, 'p16', ['ord-1'], 24],
    ['2001:db8:aaaa:1::/64', 6, 'v6-48', ['sea-1'], 48],
    ['2001:db8:aaaa:1ab::/64', 6, 'v6-56', ['lhr-1'], 56],
    ['2001:db8:aaaa::/48', 6, 'v6-48', ['sea-1'], 56],
    // ord-1 has no IPv6 address: skipped for AAAA, fine for A.
    ['2001:db8:aaaa:2::/64', 4, 'v6-48', ['sea-1'], 48],
  ]
  for (const [client, family, id, ids, scope] of cases) {
    const d = decide(view, client, { family })
    t.equal(d.rule, 'override', `${client}: rule`)
    t.equal(d.trace?.override?.id, id, `${client}: pin`)
    t.equal(d.trace?.override?.applied, true)
    t.same(d.ids, ids, `${client}: answer`)
    t.equal(d.scopePrefixLen, scope, `${client}: scope (${d.trace?.scopeReason})`)
    t.equal(d.ttlSec, 60, `${client}: a pin is a confident decision`)
  }
  const unpinned = decide(view, '10.9.0.0/16')
  t.same([unpinned.rule, unpinned.ids, unpinned.trace?.override], ['map', ['ord-1'], undefined], 'outside every pin: the map')
  t.match(decide(view, '10.1.2.5/32').trace?.override, { id: 'p24', reason: 'why p24', prefix: '10.1.2.0/24', targets: [{ id: 'nrt-1', serving: true, admin: 'up' }] })
})

t.test('pins: in the pin order, falling through when no pinned target serves', async (t) => {
  const overrides = [pin('p24', '10.1.2.0/24', ['nrt-1', 'lhr-1'])]
  const firstDown = decide(viewOf({ overrides, admin: { 'nrt-1': { admin: 'drain' } } }), '10.1.2.5/32')
  t.same([firstDown.rule, firstDown.ids, firstDown.ttlSec], ['override', ['lhr-1'], 60], 'the next pinned target; nrt-1 was drained long ago')

  const allDown = decide(viewOf({ overrides, admin: { 'nrt-1': { admin: 'down' } }, health: { 'lhr-1': { status: 'down' } } }), '10.1.2.5/32')
  t.equal(allDown.rule, 'map', 'no pinned target serves: the normal decision')
  t.same(allDown.ids, ['sea-1'], 'the map entry for 10.1.2.0/24')
  t.equal(allDown.ttlSec, 10, 'short TTL so the pin takes over again soon')
  t.match(allDown.trace?.ttlReason, /pin p24 has no serving target/)
  t.equal(allDown.scopePrefixLen, 24)
  t.match(allDown.trace?.override, { id: 'p24', applied: false, targets: [{ id: 'nrt-1', admin: 'down', serving: false }, { id: 'lhr-1', health: 'down', serving: false }] })

  // The fallback is bounded by the pin's prefix, not the wider map entry that decided it.
  const wide = decide(viewOf({ overrides: [pin('p20', '10.1.16.0/20', ['nrt-1'])], admin: { 'nrt-1': { admin: 'down' } } }), '10.1.17.0/24')
  t.same([wide.rule, wide.ids, wide.scopePrefixLen], ['map', ['lhr-1'], 20])

  const everythingDown = viewOf({ overrides, admin: Object.fromEntries(setup.targets.map((x) => [x.id, { admin: 'down' as const }])) })
  const d = decide(everythingDown, '10.1.2.5/32')
  t.same([d.rule, d.ids], ['all-down', ['nrt-1']], 'all down, policy best: the pin\'s first target, not the map\'s')
})

t.test('pins name targets outside a service\'s pool: that service ignores them', async (t) => {
  const view = viewOf({ overrides: [pin('p8', '10.0.0.0/8', ['lhr-1']), pin('p24', '10.1.2.0/24', ['sea-1'])] })
  const eu = decide(view, '10.1.2.5/32', { service: 'eu.example.test' })
  t.same([eu.rule, eu.ids, eu.trace?.override?.id], ['override', ['lhr-1'], 'p8'], 'the /24 pin is skipped, the /8 one applies')
  const api = decide(view, '10.1.2.5/32')
  t.same([api.rule, api.ids, api.trace?.override?.id], ['override', ['sea-1'], 'p24'])
  const onlyOther = decide(viewOf({ overrides: [pin('p24', '10.1.2.0/24', ['sea-1'])] }), '10.1.2.5/32', { service: 'eu.example.test' })
  t.equal(onlyOther.rule, 'default')
  t.match(onlyOther.trace?.override, { id: 'p24', applied: false, note: /no pinned target is in this service's pool/ })
})

/** Which targets answer the /24s of 10.1.0.0/16 (except 10.1.2.0/24, which has its own entry). */
function answersIn16(view: SteeringView): Set<string> {
  const seen = new Set<string>()
  for (let x = 3; x < 203; x++) for (const id of decide(view, `10.1.${x}.0/24`).ids) seen.add(id)
  return seen
}

t.test('bias: moves a target by exactly biasMs against the 10% tolerance band', async (t) => {
  // 10.1.0.0/16: lhr-1 20 ms, ord-1 60 ms. lhr-1 + b shares with ord-1 when
  // 60 <= (20 + b) * 1.1 (b >= 34.55) and while 20 + b <= 60 * 1.1 (b <= 46).
  const cases: [string, number, string[]][] = [
    ['lhr-1', 34, ['lhr-1']],
    ['lhr-1', 35, ['lhr-1', 'ord-1']],
    ['lhr-1', 46, ['lhr-1', 'ord-1']],
    ['lhr-1', 47, ['ord-1']],
    // Faster: ord-1 at 60 - 41 = 19 still has lhr-1 (20) within 10%; at 18 it does not (19.8).
    ['ord-1', -41, ['lhr-1', 'ord-1']],
    ['ord-1', -42, ['ord-1']],
  ]
  for (const [target, biasMs, expected] of cases) {
    const seen = answersIn16(viewOf({ overrides: [bias('b', target, biasMs)] }))
    t.same([...seen].sort(), expected, `${target} ${biasMs > 0 ? '+' : ''}${biasMs} ms`)
  }
  const d = decide(viewOf({ overrides: [bias('b1', 'lhr-1', 30), bias('b2', 'lhr-1', 17)] }), '10.1.9.0/24')
  t.same(d.ids, ['ord-1'], 'two biases add up (47 ms)')
  t.match(d.trace?.candidates, [
    { id: 'ord-1', scoreMs: 60 },
    { id: 'lhr-1', scoreMs: 20, biasMs: 47, biasOverrides: ['b1', 'b2'] },
  ])
  t.notOk(d.trace?.candidates[0] && 'biasMs' in d.trace.candidates[0], 'no bias field for an unbiased candidate')
  const clamped = decide(viewOf({ overrides: [bias('b', 'ord-1', -100)] }), '10.1.9.0/24')
  t.same(clamped.ids, ['ord-1'], 'a bias below zero ranks at 0 ms')
  t.equal(decide(viewOf({ overrides: [bias('b', 'ord-1', 1000)] }), '10.9.0.0/16').ids[0], 'ord-1', 'the only candidate answers however slow it looks')
})

t.test('drain and down leave the answer; drain beats down when nothing serves', async (t) => {
  for (const admin of ['drain', 'down'] as const) {
    const d = decide(viewOf({ admin: { 'lhr-1': { admin } } }), '10.1.9.0/24')
    t.same(d.ids, ['ord-1'], `lhr-1 ${admin}: the next candidate`)
    t.match(d.trace?.candidates, [{ id: 'lhr-1', admin, serving: false }, { id: 'ord-1', admin: 'up', serving: true }])
  }
  const down = Object.fromEntries(setup.targets.map((x) => [x.id, { admin: 'down' as const }]))
  const withDrain = decide(viewOf({ admin: { ...down, 'lhr-1': { admin: 'drain' } } }), '10.9.9.0/24')
  t.same([withDrain.rule, withDrain.ids, withDrain.ttlSec], ['all-down', ['lhr-1'], 10], 'the draining target still works: it answers, briefly')
  const allDown = decide(viewOf({ admin: down }), '10.9.9.0/24')
  t.same([allDown.rule, allDown.ids], ['all-down', ['ord-1']], 'none draining: the map\'s best anyway')
  const healthDown = decide(viewOf({ admin: { ...down, 'lhr-1': { admin: 'drain' } }, health: { 'lhr-1': { status: 'down' } } }), '10.9.9.0/24')
  t.same(healthDown.ids, ['ord-1'], 'draining but failing health checks is just down')
})

t.test('weights replace capacity in the rendezvous share, deterministically', async (t) => {
  const share = (view: SteeringView) => {
    const counts = new Map<string, number>()
    for (let i = 0; i < 400; i++) {
      const id = decide(view, `172.${16 + (i >> 8)}.${i & 255}.0/24`).ids[0] ?? '?'
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    return counts
  }
  // Capacities: sea-1 100, nrt-1 300 (about 3 in 4 networks to nrt-1).
  const byCapacity = share(viewOf())
  t.ok((byCapacity.get('nrt-1') ?? 0) > 240, `by capacity nrt-1 gets ${byCapacity.get('nrt-1')}/400`)
  const swapped = share(viewOf({ admin: { 'sea-1': { weight: 900 } } }))
  const sea = swapped.get('sea-1') ?? 0
  t.ok(sea > 240 && sea < 360, `sea-1 weight 900 against 300: ${sea}/400 networks (expected about 300)`)
  t.same(share(viewOf({ admin: { 'sea-1': { weight: 900 } } })), swapped, 'same inputs, same answers')
  t.same([...share(viewOf({ admin: { 'nrt-1': { weight: 0 } } }))], [['sea-1', 400]], 'weight 0: no new networks while another near-equal target serves')
  // Default rule (no map entry, no geo): the pool by weight.
  const pool = new Set<string>()
  for (let i = 0; i < 200; i++) pool.add(decide(viewOf({ admin: { 'nrt-1': { weight: 0 }, 'sea-1': { weight: 0 }, 'ord-1': { weight: 0 } } }), `192.168.${i}.0/24`).ids[0] ?? '?')
  t.same([...pool], ['lhr-1'], 'default rule uses weights too')
})

t.test('TTL: the minimum while a chosen or displaced target changed state within the max TTL', async (t) => {
  const cases: [string, Scenario, string, number, RegExp][] = [
    ['chosen target changed 30 s ago', { admin: { 'sea-1': { changedAtMs: NOW_MS - 30_000 } } }, '10.1.2.0/24', 10, /^min: sea-1 changed state 30s ago$/],
    ['chosen target changed 60 s ago (= max TTL)', { admin: { 'sea-1': { changedAtMs: NOW_MS - 60_000 } } }, '10.1.2.0/24', 60, /^max: map/],
    ['the better candidate went down 5 s ago', { admin: { 'lhr-1': { admin: 'down', changedAtMs: NOW_MS - 5_000 } } }, '10.1.9.0/24', 10, /lhr-1 changed state 5s ago/],
    ['a worse candidate went down 5 s ago', { admin: { 'ord-1': { admin: 'down', changedAtMs: NOW_MS - 5_000 } } }, '10.1.9.0/24', 60, /^max/],
    // Degraded loses new clients (like drain): the answer moves to ord-1, briefly, since the verdict is 5 s old.
    ['the best candidate became degraded 5 s ago', { health: { 'lhr-1': { status: 'up', degraded: true, changedAtMs: NOW_MS - 5_000 } } }, '10.1.9.0/24', 10, /lhr-1 changed state 5s ago/],
    ['a drain that expired 5 s ago', { admin: { 'lhr-1': { admin: 'drain', expiresAtMs: NOW_MS - 5_000 } } }, '10.1.9.0/24', 10, /lhr-1 changed state 5s ago/],
    ['health changed 2 s ago', { health: { 'lhr-1': { status: 'up', changedAtMs: NOW_MS - 2_000 } } }, '10.1.9.0/24', 10, /lhr-1 changed state 2s ago/],
  ]
  for (const [title, scenario, client, ttl, reason] of cases) {
    const d = decide(viewOf(scenario), client)
    t.equal(d.ttlSec, ttl, title)
    t.match(d.trace?.ttlReason, reason, title)
  }
})

t.test('expiry: an override stops applying at its expiresAtMs', async (t) => {
  const expiresAtMs = NOW_MS + 1
  const view = viewOf({ overrides: [pin('p16', '10.1.0.0/16', ['nrt-1']), pin('p24', '10.1.9.0/24', ['sea-1'], { expiresAtMs }), bias('b', 'ord-1', -45, { expiresAtMs })] })
  const before = decide(view, '10.1.9.0/24', { nowMs: NOW_MS })
  t.same([before.rule, before.ids, before.trace?.override?.id], ['override', ['sea-1'], 'p24'])
  const after = decide(view, '10.1.9.0/24', { nowMs: expiresAtMs })
  t.same([after.rule, after.ids, after.trace?.override?.id], ['override', ['nrt-1'], 'p16'], 'the covering /16 pin takes over')
  const mapBefore = decide(view, '10.9.0.0/16', { nowMs: NOW_MS })
  t.equal(mapBefore.rule, 'map')
  const biased = decide(viewOf({ overrides: [bias('b', 'ord-1', -45, { expiresAtMs })] }), '10.1.9.0/24', { nowMs: NOW_MS })
  const unbiased = decide(viewOf({ overrides: [bias('b', 'ord-1', -45, { expiresAtMs })] }), '10.1.9.0/24', { nowMs: expiresAtMs })
  t.same([biased.ids, unbiased.ids], [['ord-1'], ['lhr-1']], 'the bias applies before its expiry, not at it')
  t.same(
    decide(viewOf({ overrides: [pin('old', '10.1.9.0/24', ['ord-1']), pin('new', '10.1.9.0/24', ['sea-1'], { expiresAtMs })] }), '10.1.9.0/24', { nowMs: expiresAtMs }).ids,
    ['ord-1'],
    'an older pin on the same prefix applies again once the newer one expired',
  )
})

t.test('explain: the same decision with the override in its trace', async (t) => {
  const view = viewOf({ overrides: [pin('p24', '10.1.2.0/24', ['nrt-1'], { expiresAtMs: NOW_MS + 3_600_000 })], admin: { 'sea-1': { admin: 'drain', reason: 'rack move' } } })
  const e = explain(view, 'api.example.test', parseClientKey('10.1.2.0/24', 'ecs'), 4, NOW_MS)
  t.same(e?.answer, ['203.0.113.19'])
  t.match(e?.trace, {
    rule: 'override',
    override: { id: 'p24', reason: 'why p24', prefix: '10.1.2.0/24', expiresAtMs: NOW_MS + 3_600_000, applied: true },
    mapVersion: 9,
    overridesVersion: 0,
    targetStatesVersion: 0,
    chosen: ['nrt-1'],
  })
  const fallback = explain(viewOf({ admin: { 'sea-1': { admin: 'drain', reason: 'rack move' } } }), 'api.example.test', parseClientKey('10.1.2.0/24', 'ecs'), 4, NOW_MS)
  t.match(fallback?.trace.candidates, [{ id: 'sea-1', admin: 'drain', serving: false, scoreMs: 5 }])
})
