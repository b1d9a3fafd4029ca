// Latency map: lookups by client key (both families, IPv4-mapped as IPv4),
// candidate ranking, accessors, and the builder's checks.
import t from 'tap'
import { parseAddress, parseClientKey } from '../../src/steering/client-key.js'
import { createMapMatch, emptyLatencyMap, LatencyMapBuilder } from '../../src/steering/latency-map.js'
import type { LatencyMap } from '../../src/steering/latency-map.js'

function add(b: LatencyMapBuilder, text: string, candidates: readonly (readonly [number, number, number])[], updatedAtMs?: number): number {
  const [ip = '', len = ''] = text.split('/')
  const e = b.addEntry(parseAddress(ip) as Uint8Array, Number(len), updatedAtMs)
  for (const [target, scoreMs, samples] of candidates) b.addCandidate(target, scoreMs, samples)
  return e
}

function sampleMap(): LatencyMap {
  const b = new LatencyMapBuilder()
  add(b, '198.51.100.0/24', [[1, 31, 12], [0, 12.5, 40]], 1_700_000_000_000) // 0
  add(b, '198.51.100.128/25', [[2, 8, 5]]) // 1
  add(b, '2001:db8::/32', [[0, 20, 3], [1, 20, 9], [2, 20, 9]]) // 2
  add(b, '2001:db8:1::/48', [[1, 5, 1]]) // 3
  add(b, '::ffff:203.0.113.0/120', [[0, 1, 1]]) // 4: stored as 203.0.113.0/24
  return b.build(7, 1_700_000_100_000)
}

t.test('lookup by client key: longest match and scope depth, both families', async (t) => {
  const map = sampleMap()
  t.equal(map.version, 7)
  t.equal(map.size, 5)
  t.equal(map.generatedAtMs, 1_700_000_100_000)
  const out = createMapMatch()
  const cases: [string, 'ecs' | 'resolver', number, number, number][] = [
    ['198.51.100.7', 'resolver', 0, 24, -1],
    ['198.51.100.200', 'resolver', 1, 25, -1],
    ['198.51.100.0/24', 'ecs', 0, 24, 25],
    ['198.51.0.0/16', 'ecs', -1, -1, 25],
    ['192.0.2.1', 'resolver', -1, -1, -1],
    ['::ffff:198.51.100.7', 'resolver', 0, 24, -1], // mapped resolver address finds the IPv4 entry
    ['203.0.113.9', 'resolver', 4, 24, -1], // mapped entry found by a plain IPv4 key
    ['2001:db8:1:2::1', 'resolver', 3, 48, -1],
    ['2001:db8:2::/56', 'ecs', 2, 32, -1],
    ['2001:db8::/32', 'ecs', 2, 32, 48],
    ['2001:db9::/56', 'ecs', -1, -1, -1],
  ]
  for (const [text, source, entry, matchedLen, deepestBelowLen] of cases) {
    map.lookup(parseClientKey(text, source), out)
    t.same({ ...out }, { entry, matchedLen, deepestBelowLen }, text)
  }
})

t.test('candidates are ranked: score, then more samples, then target index', async (t) => {
  const map = sampleMap()
  const ranked = (e: number) =>
    Array.from({ length: map.candidateCount(e) }, (_, i) => [map.candidateTarget(e, i), map.candidateScoreMs(e, i), map.candidateSamples(e, i)])
  t.same(ranked(0), [
    [0, 12.5, 40],
    [1, 31, 12],
  ])
  t.same(ranked(2), [
    [1, 20, 9],
    [2, 20, 9],
    [0, 20, 3],
  ])
  t.equal(map.candidateTotal, 8)
})

t.test('entry accessors: canonical prefix, family, length, update time', async (t) => {
  const map = sampleMap()
  t.same(
    Array.from({ length: map.size }, (_, e) => [map.entryPrefix(e), map.entryFamily(e), map.entryPrefixLen(e)]),
    [
      ['198.51.100.0/24', 4, 24],
      ['198.51.100.128/25', 4, 25],
      ['2001:db8::/32', 6, 32],
      ['2001:db8:1::/48', 6, 48],
      ['203.0.113.0/24', 4, 24],
    ],
  )
  t.equal(map.entryUpdatedAtMs(0), 1_700_000_000_000)
  t.equal(map.entryUpdatedAtMs(1), undefined)
  t.ok(map.byteLength > 0)
})

t.test('duplicates (mapped spelling included) are found, first entry first, and refused by build()', async (t) => {
  const b = new LatencyMapBuilder()
  t.equal(add(b, '198.51.100.0/24', [[0, 1, 1]]), 0)
  t.equal(add(b, '10.0.0.0/8', [[0, 1, 1]]), 1)
  t.equal(add(b, '::ffff:198.51.100.0/120', [[0, 1, 1]]), 2)
  t.equal(add(b, '198.51.100.0/24', [[1, 1, 1]]), 3)
  t.equal(add(b, '2001:db8::/32', [[1, 1, 1]]), 4)
  t.equal(add(b, '2001:db8::/32', [[1, 1, 1]]), 5)
  t.same(b.duplicates(), [
    [0, 2],
    [0, 3],
    [4, 5],
  ])
  t.throws(() => b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), { code: 'STEER_ERR_MAP_BUILD_INPUT' }, 'closed once checked')
  t.throws(() => b.build(1), { code: 'STEER_ERR_MAP_BUILD_INPUT' })
  const clean = new LatencyMapBuilder()
  add(clean, '198.51.100.0/24', [[0, 1, 1]])
  t.same(clean.duplicates(), [])
  t.equal(clean.build(1).size, 1)
})

t.test('builder rejects a caller’s bad input with a coded error', async (t) => {
  const bad: [string, (b: LatencyMapBuilder) => unknown][] = [
    ['short address', (b) => b.addEntry(Uint8Array.of(1, 2, 3), 8)],
    ['length too long', (b) => b.addEntry(Uint8Array.of(1, 2, 3, 4), 33)],
    ['non-finite update time', (b) => b.addEntry(Uint8Array.of(1, 2, 3, 4), 32, NaN)],
    ['candidate first', (b) => b.addCandidate(0, 1, 1)],
    ['negative score', (b) => (b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), b.addCandidate(0, -1, 1))],
    ['NaN score', (b) => (b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), b.addCandidate(0, NaN, 1))],
    ['fractional samples', (b) => (b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), b.addCandidate(0, 1, 1.5))],
    ['bad target', (b) => (b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), b.addCandidate(-1, 1, 1))],
    ['same target twice', (b) => (b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), b.addCandidate(3, 1, 1), b.addCandidate(3, 2, 1))],
    ['entry without candidates', (b) => (b.addEntry(Uint8Array.of(1, 2, 3, 4), 32), b.build(1))],
    ['negative version', (b) => b.build(-1)],
    ['fractional version', (b) => b.build(1.5)],
    ['build twice', (b) => (b.build(1), b.build(1))],
  ]
  for (const [name, f] of bad) t.throws(() => f(new LatencyMapBuilder()), { code: 'STEER_ERR_MAP_BUILD_INPUT' }, name)
})

t.test('target indices above 65535 are kept (wider storage)', async (t) => {
  const b = new LatencyMapBuilder()
  add(b, '10.0.0.0/8', [[70_000, 2, 1], [65_535, 1, 1]])
  const map = b.build(1)
  t.same([map.candidateTarget(0, 0), map.candidateTarget(0, 1)], [65_535, 70_000])
})

t.test('many entries: arrays grow, every entry is found again', async (t) => {
  const b = new LatencyMapBuilder()
  let numbered = 0
  for (let i = 0; i < 5000; i++) {
    if (b.addEntry(Uint8Array.of(10, i >> 8, i & 0xff, 0), 24, i % 3 === 0 ? i : undefined) === i) numbered++
    b.addCandidate(i % 7, i, i)
  }
  t.equal(numbered, 5000, 'entries are numbered in order')
  const map = b.build(3)
  const out = createMapMatch()
  let wrong = 0
  for (let i = 0; i < 5000; i++) {
    map.lookup({ family: 4, address: Uint8Array.of(10, i >> 8, i & 0xff, 99), prefixLen: 32, source: 'resolver' }, out)
    if (out.entry !== i || map.candidateScoreMs(i, 0) !== i || map.entryUpdatedAtMs(i) !== (i % 3 === 0 ? i : undefined)) wrong++
  }
  t.equal(wrong, 0)
})

t.test('the empty map misses everything', async (t) => {
  const map = emptyLatencyMap()
  t.equal(map.version, 0)
  t.equal(map.size, 0)
  t.equal(emptyLatencyMap(4).version, 4)
  const out = createMapMatch()
  map.lookup(parseClientKey('0.0.0.0/0', 'ecs'), out)
  t.same({ ...out }, { entry: -1, matchedLen: -1, deepestBelowLen: -1 })
  map.lookup(parseClientKey('::/0', 'ecs'), out)
  t.equal(out.entry, -1)
})
