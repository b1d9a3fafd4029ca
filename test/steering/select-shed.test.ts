/**
 * Overload shedding and passive-health semantics inside the steering decision
 * (issue 5): a chosen target over its load watermark sheds a stable share
 * f = 1 − watermark / load of client prefixes, spread over the other serving
 * candidates by spare capacity; nothing at or below the watermark, nothing
 * onto overloaded or non-serving targets, nothing without spare capacity,
 * never for pins; shed answers carry the minimum TTL and the client's hash
 * scope. Degraded targets get no new clients but beat down ones.
 * Deterministic inputs: shares are counted over fixed sets of /24s.
 */
import t from 'tap'
import { greatCircleKm } from '../../src/geo/index.js'
import { buildSteeringSetup, compileOverrides, createTargetStates, parseClientKey, parseMapJson, select } from '../../src/steering/index.js'
import type { Decision, GeoLocator, OverrideRecord, SteeringView, TargetAdminRecord, TargetHealthRecord } from '../../src/steering/index.js'

// hot-1 is the best everywhere in 10.0.0.0/8; the others rank behind it, outside the 10% tolerance band.
const setup = buildSteeringSetup({
  targets: [
    { id: 'hot-1', site: 'a', ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 100, tags: [] },
    { id: 'nb-a', site: 'b', ipv4: ['192.0.2.2'], ipv6: [], location: { lat: 1, lon: 1 }, capacity: 100, tags: [] },
    { id: 'nb-b', site: 'c', ipv4: ['192.0.2.3'], ipv6: [], location: { lat: 2, lon: 2 }, capacity: 300, tags: [] },
    { id: 'nb-c', site: 'd', ipv4: ['192.0.2.4'], ipv6: [], location: { lat: 3, lon: 3 }, capacity: 100, tags: [] },
    { id: 'nb-d', site: 'e', ipv4: ['192.0.2.5'], ipv6: [], location: { lat: 0.5, lon: 0.5 }, capacity: 100, tags: [] },
  ],
  services: [
    { name: 'api.example.test', pool: ['hot-1', 'nb-a', 'nb-b', 'nb-c', 'nb-d'], answers: 1, ttl: { min: 10, max: 60 }, allDown: 'best' },
    { name: 'two.example.test', pool: ['hot-1', 'nb-a', 'nb-b', 'nb-c', 'nb-d'], answers: 2, ttl: { min: 10, max: 60 }, allDown: 'best' },
  ],
  map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 },
})

const map = parseMapJson(
  {
    version: 3,
    entries: [
      {
        prefix: '10.0.0.0/8',
        targets: [
          { id: 'hot-1', score: 10, samples: 50 },
          { id: 'nb-d', score: 15, samples: 50 },
          { id: 'nb-a', score: 20, samples: 50 },
          { id: 'nb-b', score: 30, samples: 50 },
          { id: 'nb-c', score: 40, samples: 50 },
        ],
      },
    ],
  },
  (id) => setup.targetIndex.get(id),
)

// 192.168.0.0/14 (four /16 networks) sits at hot-1's site; nothing else is known to the geo database.
const geo: GeoLocator = {
  lookup: (address) =>
    address.length === 4 && address[0] === 192 && (address[1] as number) >= 168 && (address[1] as number) < 172
      ? { latitude: 0, longitude: 0, networkPrefixLen: 16, countryCode: 'XX', continentCode: 'XX', city: undefined }
      : undefined,
}

const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const LONG_AGO_MS = NOW_MS - 86_400_000

interface Scenario {
  load?: Record<string, number>
  admin?: Record<string, Partial<TargetAdminRecord>>
  health?: Record<string, TargetHealthRecord>
  overrides?: OverrideRecord[]
  watermark?: number
}

// nb-d ranks second but is drained in most scenarios: a non-serving target with room must get nothing.
const DRAINED = { 'nb-d': { admin: 'drain' as const } }

function viewOf(s: Scenario = {}): SteeringView {
  const admin = new Map(Object.entries(s.admin ?? DRAINED).map(([id, r]) => [id, { admin: 'up', reason: 'test', changedAtMs: LONG_AGO_MS, ...r } as TargetAdminRecord]))
  return {
    setup,
    map,
    geo,
    isServing: () => true,
    distanceKm: greatCircleKm,
    overrides: compileOverrides(s.overrides ?? [], setup),
    targetStates: createTargetStates(setup, admin, {
      health: new Map(Object.entries(s.health ?? {})),
      load: new Map(Object.entries(s.load ?? {})),
      ...(s.watermark !== undefined ? { overloadWatermark: s.watermark } : {}),
    }),
  }
}

function decide(view: SteeringView, client: string, service = 'api.example.test'): Decision & { ids: string[] } {
  const svc = setup.services.get(service)
  if (!svc) throw new Error('service missing')
  const d = select(svc, parseClientKey(client, 'ecs'), 4, view, NOW_MS, true)
  return { ...d, ids: d.targets.map((i) => setup.targets[i]?.id ?? '?') }
}

const NETWORKS = 4096
/** The i-th client /24 under the /8 `first` (i < 65536). */
function net(first: string, i: number): string {
  return `${first}.${i >> 8}.${i & 255}.0/24`
}

/** First answer per network, and counts by target id. */
function tally(view: SteeringView, nets: readonly string[], service?: string): { first: string[]; counts: Map<string, number> } {
  const first: string[] = []
  const counts = new Map<string, number>()
  for (const n of nets) {
    const id = decide(view, n, service).ids[0] ?? '?'
    first.push(id)
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return { first, counts }
}

const mapNets = Array.from({ length: NETWORKS }, (_, i) => net('10', i))
const count = (m: Map<string, number>, id: string) => m.get(id) ?? 0

t.test('one target over its watermark: its share drops by f, the excess spreads by spare capacity', async (t) => {
  // hot-1 at 120% with the default 90% watermark: f = 1 − 0.9 / 1.2 = 0.25.
  // Spare capacity: nb-a 100 × (0.9 − 0.5) = 40, nb-b 300 × (0.9 − 0.6) = 90; nb-c is overloaded, nb-d drained.
  const view = viewOf({ load: { 'hot-1': 1.2, 'nb-a': 0.5, 'nb-b': 0.6, 'nb-c': 0.95 } })
  const before = tally(viewOf(), mapNets)
  t.equal(count(before.counts, 'hot-1'), NETWORKS, 'unloaded: hot-1 answers every network')
  const { counts } = tally(view, mapNets)
  const hot = count(counts, 'hot-1') / NETWORKS
  t.ok(Math.abs(hot - 0.75) < 0.03, `hot-1 keeps ${(hot * 100).toFixed(1)}% of networks (expected 75%)`)
  const a = count(counts, 'nb-a')
  const b = count(counts, 'nb-b')
  t.ok(a > 0 && b > 0, `the excess reaches more than one target (nb-a ${a}, nb-b ${b})`)
  const aShare = a / (a + b)
  t.ok(Math.abs(aShare - 40 / 130) < 0.04, `nb-a takes ${(aShare * 100).toFixed(1)}% of shed networks (expected ${((40 / 130) * 100).toFixed(1)}% by spare capacity)`)
  t.equal(count(counts, 'nb-c'), 0, 'an overloaded candidate gets no shed clients')
  t.equal(count(counts, 'nb-d'), 0, 'a drained candidate gets no shed clients')
  t.equal(a + b + count(counts, 'hot-1'), NETWORKS)
})

t.test('the same network always gets the same answer; a higher load only adds shed networks', async (t) => {
  const view = viewOf({ load: { 'hot-1': 1.2 } })
  const higher = viewOf({ load: { 'hot-1': 1.5 } })
  let mismatches = 0
  let unshedByHigherLoad = 0
  for (let i = 0; i < 1024; i++) {
    const n = net('10', i)
    const first = decide(view, n).ids
    const base = n.slice(0, n.lastIndexOf('.'))
    for (const host of [`${base}.1/32`, `${base}.200/32`, `${base}.0/25`]) if (decide(view, host).ids.join() !== first.join()) mismatches++
    if (decide(view, n).ids.join() !== first.join()) mismatches++
    if (first[0] !== 'hot-1' && decide(higher, n).ids[0] === 'hot-1') unshedByHigherLoad++
  }
  t.equal(mismatches, 0, 'hosts and sub-prefixes of a /24 get its answer')
  t.equal(unshedByHigherLoad, 0, 'a network shed at 120% is still shed at 150%')
  const atHigher = count(tally(higher, mapNets).counts, 'hot-1') / NETWORKS
  t.ok(Math.abs(atHigher - 0.6) < 0.03, `at 150%, hot-1 keeps ${(atHigher * 100).toFixed(1)}% (expected 60%)`)
})

t.test('no shedding at or below the watermark', async (t) => {
  for (const [load, watermark] of [
    [0.9, undefined],
    [0.5, undefined],
    [1.5, 1.5],
    [0.95, 1],
  ] as const) {
    const view = viewOf({ load: { 'hot-1': load }, ...(watermark !== undefined ? { watermark } : {}) })
    const { counts } = tally(view, mapNets.slice(0, 1024))
    t.equal(count(counts, 'hot-1'), 1024, `load ${load}, watermark ${watermark ?? 0.9}: hot-1 keeps every network`)
    const d = decide(view, '10.0.1.0/24')
    t.same([d.ttlSec, d.trace?.shed, d.scopePrefixLen], [60, undefined, 8], `load ${load}: max TTL, no shed trace, the entry's scope`)
    t.equal(d.trace?.candidates[0]?.overloaded, undefined)
  }
})

t.test('nothing has spare capacity: nothing is shed', async (t) => {
  // nb-a exactly at the watermark has no room; nb-b and nb-c are over it; nb-d is drained.
  const view = viewOf({ load: { 'hot-1': 2, 'nb-a': 0.9, 'nb-b': 1, 'nb-c': 0.95 } })
  const { counts } = tally(view, mapNets.slice(0, 1024))
  t.equal(count(counts, 'hot-1'), 1024, 'hot-1 keeps every network')
  const d = decide(view, '10.0.1.0/24')
  t.match(d.trace?.shed, { from: 'hot-1', fraction: 0, loadPct: 200, applied: false, spare: [], note: /nothing shed/ })
  t.equal(d.ttlSec, 10, 'still overloaded: the minimum TTL, so shedding starts soon after room appears')
  t.equal(d.scopePrefixLen, 8, 'no hash decided: the entry scope')
})

t.test('only one candidate has spare capacity: it takes the shed share, and the trace says no spread was possible', async (t) => {
  const view = viewOf({ load: { 'hot-1': 1.2, 'nb-b': 1, 'nb-c': 0.95 } })
  const { counts } = tally(view, mapNets)
  t.same(
    [...counts.keys()].sort(),
    ['hot-1', 'nb-a'],
    'only hot-1 and nb-a answer',
  )
  t.ok(Math.abs(count(counts, 'hot-1') / NETWORKS - 0.75) < 0.03, 'the shed share is still f')
  const shed = mapNets.map((n) => decide(view, n)).find((d) => d.ids[0] === 'nb-a')
  t.match(shed?.trace?.shed, { applied: true, to: 'nb-a', spare: [{ id: 'nb-a', spareCapacity: 90 }], note: /only nb-a has spare capacity: no spread possible/ })
})

t.test('shed answers: the minimum TTL, the client /24 as scope, a trace naming from, fraction and load', async (t) => {
  const view = viewOf({ load: { 'hot-1': 1.2, 'nb-a': 0.5, 'nb-b': 0.6 } })
  const decisions = mapNets.slice(0, 512).map((n) => decide(view, n))
  const shed = decisions.find((d) => d.ids[0] !== 'hot-1')
  const kept = decisions.find((d) => d.ids[0] === 'hot-1')
  if (!shed || !kept) throw new Error('expected both shed and kept networks')
  t.equal(shed.rule, 'map', 'the rule stays map')
  t.equal(shed.ttlSec, 10, 'shed answer: minimum TTL')
  t.match(shed.trace?.ttlReason, /^min: hot-1 is overloaded \(load 120% > 90%\): this client was shed$/)
  t.equal(shed.scopePrefixLen, 24, 'shed per client /24 inside the /8 entry')
  t.match(shed.trace?.shed, {
    from: 'hot-1',
    fraction: 0.25,
    loadPct: 120,
    watermarkPct: 90,
    applied: true,
    to: shed.ids[0],
    spare: [
      { id: 'nb-a', spareCapacity: 40 },
      { id: 'nb-b', spareCapacity: 90 },
      { id: 'nb-c', spareCapacity: 90 },
    ],
    note: /spread over 3 targets by spare capacity/,
  })
  t.match(shed.trace?.candidates[0], { id: 'hot-1', loadPct: 120, overloaded: true })
  t.same([kept.ttlSec, kept.scopePrefixLen, kept.trace?.shed?.applied], [10, 24, false], 'kept answer: also short-lived and per /24, since its client may be shed next')
  t.match(kept.trace?.ttlReason, /^min: hot-1 is overloaded \(load 120% > 90%\)$/)
})

t.test('geo and default decisions shed too', async (t) => {
  // nb-c exactly at the watermark: not overloaded (its own networks stay) but no room for shed ones.
  const load = { 'hot-1': 1.2, 'nb-a': 0.5, 'nb-b': 0.6, 'nb-c': 0.9 }
  // Geo: 192.168.0.0/14 is nearest hot-1 (nb-d, nearer still, is drained).
  const geoNets = Array.from({ length: 1024 }, (_, i) => `192.${168 + (i >> 8)}.${i & 255}.0/24`)
  const geoBefore = tally(viewOf(), geoNets)
  t.equal(count(geoBefore.counts, 'hot-1'), 1024)
  const geoLoaded = tally(viewOf({ load }), geoNets)
  const geoKept = count(geoLoaded.counts, 'hot-1') / 1024
  t.ok(Math.abs(geoKept - 0.75) < 0.05, `geo: hot-1 keeps ${(geoKept * 100).toFixed(1)}% (expected 75%)`)
  t.ok(count(geoLoaded.counts, 'nb-a') > 0 && count(geoLoaded.counts, 'nb-b') > 0, 'geo: spread over nb-a and nb-b')
  t.equal(count(geoLoaded.counts, 'nb-c') + count(geoLoaded.counts, 'nb-d'), 0)
  const g = decide(viewOf({ load }), geoNets[geoLoaded.first.findIndex((id) => id !== 'hot-1')] as string)
  t.same([g.rule, g.ttlSec, g.scopePrefixLen], ['geo', 10, 24], 'geo shed: rule geo, minimum TTL, scope /24 (not the /16 geo network)')

  // Default: no map entry, no geo location; the pool by weight, then shedding from hot-1's share only.
  const defaultNets = Array.from({ length: NETWORKS }, (_, i) => net('172', i))
  const defBefore = tally(viewOf(), defaultNets)
  const defAfter = tally(viewOf({ load }), defaultNets)
  let moved = 0
  let movedFromOthers = 0
  const movedTo = new Map<string, number>()
  defaultNets.forEach((_, i) => {
    const was = defBefore.first[i] as string
    const now = defAfter.first[i] as string
    if (was === now) return
    if (was !== 'hot-1') movedFromOthers++
    moved++
    movedTo.set(now, (movedTo.get(now) ?? 0) + 1)
  })
  const hotBefore = count(defBefore.counts, 'hot-1')
  t.equal(movedFromOthers, 0, 'default: only hot-1 networks move')
  t.ok(Math.abs(moved / hotBefore - 0.25) < 0.06, `default: ${moved}/${hotBefore} of hot-1's networks moved (expected 25%)`)
  t.ok(count(movedTo, 'nb-a') > 0 && count(movedTo, 'nb-b') > 0, 'default: spread over nb-a and nb-b')
  t.equal(count(movedTo, 'nb-c') + count(movedTo, 'nb-d'), 0)
  t.equal(decide(viewOf({ load }), '172.0.1.0/24').rule, 'default')
})

t.test('pins are never shed: the operator wins', async (t) => {
  const view = viewOf({ load: { 'hot-1': 3 }, overrides: [{ id: 'p', kind: 'pin', prefix: '10.0.0.0/16', targets: ['hot-1'], reason: 'test' } as OverrideRecord] })
  const { counts } = tally(view, mapNets.slice(0, 256))
  t.equal(count(counts, 'hot-1'), 256)
  const d = decide(view, '10.0.1.0/24')
  t.same([d.rule, d.ttlSec, d.trace?.shed], ['override', 60, undefined])
})

t.test('answers > 1: each overloaded slot sheds, with no duplicate targets', async (t) => {
  // Chosen [hot-1, nb-a] (hot-1 alone in the band, nb-a next serving); a shed hot-1 goes to a target not already answering.
  const view = viewOf({ load: { 'hot-1': 1.2, 'nb-a': 0.5, 'nb-b': 0.6 } })
  let hot = 0
  const replacements = new Set<string>()
  const duplicates: string[] = []
  const secondMoved: string[] = []
  for (const n of mapNets) {
    const d = decide(view, n, 'two.example.test')
    if (new Set(d.ids).size !== 2) duplicates.push(n)
    if (d.ids[1] !== 'nb-a') secondMoved.push(n)
    if (d.ids[0] === 'hot-1') hot++
    else replacements.add(d.ids[0] as string)
  }
  t.same(duplicates, [], 'two distinct targets in every answer')
  t.same(secondMoved, [], 'the second slot (nb-a, not overloaded) stays')
  t.ok(Math.abs(hot / NETWORKS - 0.75) < 0.03, `hot-1 keeps ${hot}/${NETWORKS} first slots`)
  t.same([...replacements].sort(), ['nb-b', 'nb-c'], 'replacements spread over the candidates with room outside the answer')

  const both = viewOf({ load: { 'hot-1': 1.2, 'nb-a': 1.8, 'nb-b': 0.6 } })
  const traced = mapNets.map((n) => decide(both, n, 'two.example.test'))
  t.ok(traced.every((d) => new Set(d.ids).size === 2))
  t.ok(traced.every((d) => d.trace?.shed?.from === 'hot-1' && d.trace.shedMore?.[0]?.from === 'nb-a'), 'one shed trace per overloaded slot')
  const nbA = traced.filter((d) => d.ids.includes('nb-a')).length / NETWORKS
  t.ok(Math.abs(nbA - 0.5) < 0.03, `nb-a at 180% (f = 0.5) stays in ${(nbA * 100).toFixed(1)}% of answers`)
})

t.test('degraded: no new clients, and answered before down targets when nothing serves', async (t) => {
  const degraded = { status: 'up' as const, degraded: true, changedAtMs: LONG_AGO_MS }
  const view = viewOf({ health: { 'hot-1': degraded } })
  const { counts } = tally(view, mapNets.slice(0, 256))
  t.equal(count(counts, 'hot-1'), 0, 'a degraded target gets no networks')
  t.same([...counts.keys()], ['nb-a'], 'the next serving candidate answers')
  t.match(decide(view, '10.0.1.0/24').trace?.candidates[0], { id: 'hot-1', serving: false, degraded: true })

  const othersDown = Object.fromEntries(setup.targets.filter((x) => x.id !== 'hot-1').map((x) => [x.id, { admin: 'down' as const }]))
  const lastOne = decide(viewOf({ admin: othersDown, health: { 'hot-1': degraded } }), '10.0.1.0/24')
  t.same([lastOne.rule, lastOne.ids, lastOne.ttlSec], ['all-down', ['hot-1'], 10], 'everything else down: the degraded target answers, with the minimum TTL')
  t.equal(lastOne.trace?.scopeReason, 'all down: best degraded target')
  // Without it being degraded-but-alive, the map's best anyway would be hot-1 too: check the preference with the worst-ranked one.
  const ncOnly = Object.fromEntries(setup.targets.filter((x) => x.id !== 'nb-c').map((x) => [x.id, { admin: 'down' as const }]))
  const worst = decide(viewOf({ admin: ncOnly, health: { 'nb-c': degraded } }), '10.0.1.0/24')
  t.same([worst.rule, worst.ids], ['all-down', ['nb-c']], 'a degraded target beats better-ranked down ones')
  const drainVsDegraded = decide(viewOf({ admin: { ...ncOnly, 'nb-b': { admin: 'drain' } }, health: { 'nb-c': degraded } }), '10.0.1.0/24')
  t.same(drainVsDegraded.ids, ['nb-b'], 'a draining target (working) beats a degraded one (clients see failures)')
  const degradedAndDown = decide(viewOf({ admin: ncOnly, health: { 'nb-c': { ...degraded, status: 'down' } } }), '10.0.1.0/24')
  t.same([degradedAndDown.ids, degradedAndDown.trace?.scopeReason], [['hot-1'], 'all down: best anyway'], 'degraded and failing checks is just down')

  const pinned = decide(viewOf({ health: { 'nb-b': degraded }, overrides: [{ id: 'p', kind: 'pin', prefix: '10.0.0.0/16', targets: ['nb-b', 'nb-c'], reason: 'test' } as OverrideRecord] }), '10.0.1.0/24')
  t.same([pinned.rule, pinned.ids], ['override', ['nb-c']], 'a degraded pinned target is skipped like a drained one')

  const shedAvoidsDegraded = tally(viewOf({ load: { 'hot-1': 1.2 }, health: { 'nb-b': degraded } }), mapNets.slice(0, 1024)).counts
  t.equal(count(shedAvoidsDegraded, 'nb-b'), 0, 'a degraded target takes no shed clients')
})
