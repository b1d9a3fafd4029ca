// The aggregator and its compiled map: minSamples/maxAge gating, hysteresis,
// merging of identical sibling prefixes (and not of others), resolver host
// entries, bounded memory, and the exact snapshot round trip.
import t from 'tap'
import { createAggregator, restoreAggregator } from '../../src/measure/aggregator.js'
import type { Aggregator, AggregatorOptions } from '../../src/measure/aggregator.js'
import { parseResolverAddress, reduceClient } from '../../src/measure/client-prefix.js'
import { MeasureErrorCode } from '../../src/measure/measure-error.js'
import type { AcceptedReport } from '../../src/measure/report.js'
import { createMapMatch, mapToJson, parseClientKey } from '../../src/steering/index.js'
import type { LatencyMap } from '../../src/steering/index.js'

const T0 = Date.parse('2026-01-02T03:00:00Z')
const SEC = 1000
const ids = ['a', 'b', 'c', 'd']
const base: AggregatorOptions = { targetIds: ids, halfLifeSec: 1800, minSamples: 3, maxAgeSec: 3600, hysteresisPct: 10 }

function report(client: string, target: string, rttMs: number, atMs = T0, extra: { resolver?: string; ok?: boolean; v4?: number } = {}): AcceptedReport {
  const prefix = reduceClient(client, { ipv4Prefix: extra.v4 ?? 24, ipv6Prefix: 48 })
  if (typeof prefix === 'string') throw new Error(prefix)
  const resolver = extra.resolver === undefined ? undefined : parseResolverAddress(extra.resolver)
  if (typeof resolver === 'string') throw new Error(resolver)
  return { client: prefix, resolver, target: ids.indexOf(target), rttMs, atMs, ok: extra.ok ?? true }
}

/** `n` samples of each target's RTT for one client. */
function feed(agg: Aggregator, client: string, rtts: Record<string, number>, n = 3, atMs = T0, extra: { resolver?: string; v4?: number } = {}): void {
  const reports: AcceptedReport[] = []
  for (let i = 0; i < n; i++) for (const [target, rtt] of Object.entries(rtts)) reports.push(report(client, target, rtt, atMs, extra))
  agg.add(reports)
}

/** The map as { prefix: "id score/samples, ..." }, prefixes sorted. */
function view(map: LatencyMap): Record<string, string> {
  const out: Record<string, string> = {}
  const entries = [...mapToJson(map, (i) => ids[i] ?? '?').entries].sort((x, y) => (x.prefix < y.prefix ? -1 : 1))
  for (const e of entries) out[e.prefix] = e.targets.map((c) => `${c.id} ${c.score}/${c.samples}`).join(', ')
  return out
}

t.test('an entry needs minSamples fresh samples; stale estimators are dropped at compile', async (t) => {
  const agg = createAggregator(base)
  feed(agg, '198.51.100.7', { a: 20, b: 30 }, 2)
  let { map, stats } = agg.compile(T0)
  t.strictSame(view(map), {}, 'two samples do not count')
  t.equal(stats.prefixes, 0)
  t.equal(map.version, 1)
  feed(agg, '198.51.100.9', { a: 20 }, 1, T0 + 10 * SEC)
  ;({ map, stats } = agg.compile(T0 + 10 * SEC))
  t.strictSame(view(map), { '198.51.100.0/24': 'a 20/3' }, 'a counts with three; b with two stays out')
  t.equal(map.version, 2)
  t.equal(map.generatedAtMs, T0 + 10 * SEC)
  t.equal(map.entryUpdatedAtMs(0), T0 + 10 * SEC, 'updatedAt is the newest sample')
  t.strictSame({ entries: stats.entries, prefixes: stats.prefixes, merged: stats.merged, resolvers: stats.resolvers }, { entries: 1, prefixes: 1, merged: 0, resolvers: 0 })
  // Exactly maxAgeSec after its newest sample a counts; b, last heard of at T0, is dropped.
  t.equal(agg.estimatorCount, 2)
  ;({ map, stats } = agg.compile(T0 + 3610 * SEC))
  t.strictSame(view(map), { '198.51.100.0/24': 'a 20/3' })
  t.equal(stats.dropped, 1)
  t.equal(agg.estimatorCount, 1)
  // One ms later a is too old to count, and dropped with it.
  ;({ map, stats } = agg.compile(T0 + 3610 * SEC + 1))
  t.strictSame(view(map), {})
  t.equal(stats.dropped, 1)
  t.equal(agg.estimatorCount, 0)
  t.equal(agg.keyCount, 0, 'a key with no estimator left is forgotten')
  t.equal(agg.compile(T0, { previousVersion: 40 }).map.version, 41, 'an imported map\'s version is overtaken')
})

t.test('scores are decayed means to the microsecond; ties keep a strict order', async (t) => {
  const agg = createAggregator(base)
  feed(agg, '198.51.100.7', { a: 20.1234567, b: 20.1234567, c: 5, d: 30 }, 3)
  feed(agg, '198.51.100.7', { b: 20.1234567 }, 1)
  t.strictSame(view(agg.compile(T0).map), { '198.51.100.0/24': 'c 5/3, b 20.123/4, a 20.124/3, d 30/3' }, 'b first of the tie: more samples')
})

t.test('hysteresis: a challenger must beat the published best by more than hysteresisPct', async (t) => {
  // No outlier rejection here: the test moves means with a few samples.
  const opts = { ...base, outlierK: 1e9 }
  const agg = createAggregator(opts)
  const plain = createAggregator({ ...opts, hysteresisPct: 0 })
  const both = (rtts: Record<string, number>, n: number): void => {
    feed(agg, '198.51.100.7', rtts, n)
    feed(plain, '198.51.100.7', rtts, n)
  }
  both({ a: 20, b: 30 }, 3)
  t.strictSame(view(agg.compile(T0).map), { '198.51.100.0/24': 'a 20/3, b 30/3' })
  plain.compile(T0)
  // b's mean: (3*30 + 3*7)/6 = 18.5, better than 20 by 7.5%: a keeps first place, b is published just behind it.
  both({ b: 7 }, 3)
  t.strictSame(view(agg.compile(T0).map), { '198.51.100.0/24': 'a 20/3, b 20.001/6' })
  t.strictSame(view(plain.compile(T0).map), { '198.51.100.0/24': 'b 18.5/6, a 20/3' }, 'without hysteresis b would lead')
  t.equal(agg.prefixEstimates({ family: 4, address: new Uint8Array([198, 51, 100, 0]), prefixLen: 24 }, T0)?.best, 0)
  // (6*18.5 + 6*17.3)/12 = 17.9: better by 10.5%, more than the margin.
  both({ b: 17.3 }, 6)
  t.strictSame(view(agg.compile(T0).map), { '198.51.100.0/24': 'b 17.9/12, a 20/3' })
  // Now b is the incumbent: a at (3*20 + 3*14.75)/6 = 17.375 is 2.9% better, held back.
  both({ a: 14.75 }, 3)
  t.strictSame(view(agg.compile(T0).map), { '198.51.100.0/24': 'b 17.9/12, a 17.901/6' })
  t.strictSame(view(plain.compile(T0).map), { '198.51.100.0/24': 'a 17.375/6, b 17.9/12' })
})

t.test('hysteresis lets go when the incumbent stops counting', async (t) => {
  const agg = createAggregator(base)
  feed(agg, '198.51.100.7', { a: 20 }, 3, T0)
  agg.compile(T0)
  feed(agg, '198.51.100.7', { b: 19.5 }, 3, T0 + 3000 * SEC)
  t.strictSame(view(agg.compile(T0 + 3000 * SEC).map), { '198.51.100.0/24': 'a 20/3, b 20.001/3' }, 'a still counts: held')
  t.strictSame(view(agg.compile(T0 + 3601 * SEC).map), { '198.51.100.0/24': 'b 19.5/3' }, 'a is stale: b leads without a margin')
})

t.test('merging: identical sibling rankings merge upwards, sample-weighted; different ones and lone halves do not', async (t) => {
  const agg = createAggregator(base)
  // Four /24s in a /22, all ranking a < b: one /22. Scores weighted by samples: (3*10 + 6*20 + 3*12 + 3*14)/15.
  feed(agg, '10.0.0.1', { a: 10, b: 50 }, 3)
  feed(agg, '10.0.1.1', { a: 20, b: 40 }, 6)
  feed(agg, '10.0.2.1', { a: 12, b: 40 }, 3)
  feed(agg, '10.0.3.1', { a: 14, b: 40 }, 3)
  // 198.51.100/24 and 101/24 agree; 102/24 ranks b first; 103 agrees with 100 but its sibling 102 does not.
  feed(agg, '198.51.100.1', { a: 10, b: 20 })
  feed(agg, '198.51.101.1', { a: 11, b: 21 })
  feed(agg, '198.51.102.1', { a: 30, b: 20 })
  feed(agg, '198.51.103.1', { a: 10, b: 20 })
  // A lone /24 (its sibling has no entry): stays a /24. Same targets, different order lengths: no merge.
  feed(agg, '203.0.113.1', { a: 10, b: 20 })
  feed(agg, '192.0.2.1', { a: 10, b: 20 })
  feed(agg, '192.0.3.1', { a: 10, b: 20, c: 30 })
  // IPv6 /48s.
  feed(agg, '2001:db8:0:1::1', { c: 5, d: 6 })
  feed(agg, '2001:db8:1:1::1', { c: 7, d: 9 })
  const { map, stats } = agg.compile(T0)
  t.strictSame(view(map), {
    '10.0.0.0/22': 'a 15.2/15, b 42/15',
    '192.0.2.0/24': 'a 10/3, b 20/3',
    '192.0.3.0/24': 'a 10/3, b 20/3, c 30/3',
    '198.51.100.0/23': 'a 10.5/6, b 20.5/6',
    '198.51.102.0/24': 'b 20/3, a 30/3',
    '198.51.103.0/24': 'a 10/3, b 20/3',
    '2001:db8::/47': 'c 6/6, d 7.5/6',
    '203.0.113.0/24': 'a 10/3, b 20/3',
  })
  t.strictSame({ prefixes: stats.prefixes, merged: stats.merged, entries: stats.entries }, { prefixes: 13, merged: 5, entries: 8 })
  // The merged entry answers for every address of both halves.
  const out = createMapMatch()
  map.lookup(parseClientKey('198.51.101.200', 'resolver'), out)
  t.equal(map.entryPrefix(out.entry), '198.51.100.0/23')
})

t.test('merging climbs as far as the rankings agree', async (t) => {
  const agg = createAggregator(base)
  // 64 /24s agree (one /18); the next 64 too except the last, which stops the climb at each level on its side.
  for (let i = 0; i < 128; i++) feed(agg, `10.3.${i}.1`, i === 127 ? { b: 1, a: 2 } : { a: 1, b: 2 })
  const { map, stats } = agg.compile(T0)
  t.strictSame(Object.keys(view(map)), ['10.3.0.0/18', '10.3.112.0/21', '10.3.120.0/22', '10.3.124.0/23', '10.3.126.0/24', '10.3.127.0/24', '10.3.64.0/19', '10.3.96.0/20'])
  t.equal(stats.merged, 120)
})

t.test('merging next to a reported parent prefix', async (t) => {
  const agg = createAggregator(base)
  // A parent reported as such, ranking as its halves do: all three become one.
  feed(agg, '10.1.0.0/23', { a: 30, b: 60 }, 6)
  feed(agg, '10.1.0.1', { a: 10, b: 20 })
  feed(agg, '10.1.1.1', { a: 10, b: 20 })
  // A parent ranking otherwise: the halves stay, the parent too.
  feed(agg, '10.2.0.0/23', { b: 10, a: 20 })
  feed(agg, '10.2.0.1', { a: 10, b: 20 })
  feed(agg, '10.2.1.1', { a: 10, b: 20 })
  t.strictSame(view(agg.compile(T0).map), {
    '10.1.0.0/23': 'a 20/12, b 40/12',
    '10.2.0.0/23': 'b 10/3, a 20/3',
    '10.2.0.0/24': 'a 10/3, b 20/3',
    '10.2.1.0/24': 'a 10/3, b 20/3',
  })
})

t.test('resolver estimators become host entries found by the resolver\'s address', async (t) => {
  // The resolver serves clients 20 ms and 40 ms from a: no outlier rejection for this test.
  const agg = createAggregator({ ...base, outlierK: 1e9 })
  feed(agg, '198.51.100.7', { a: 20, b: 30 }, 3, T0, { resolver: '192.0.2.53' })
  feed(agg, '203.0.113.7', { a: 40, b: 10 }, 3, T0, { resolver: '192.0.2.53' })
  feed(agg, '2001:db8:5::1', { c: 9 }, 3, T0, { resolver: '2001:db8:ffff::53' })
  const { map, stats } = agg.compile(T0)
  t.strictSame(view(map), {
    '192.0.2.53/32': 'b 20/6, a 30/6',
    '198.51.100.0/24': 'a 20/3, b 30/3',
    '2001:db8:5::/48': 'c 9/3',
    '2001:db8:ffff::53/128': 'c 9/3',
    '203.0.113.0/24': 'b 10/3, a 40/3',
  })
  t.equal(stats.resolvers, 2)
  const out = createMapMatch()
  map.lookup(parseClientKey('192.0.2.53', 'resolver'), out)
  t.equal(map.entryPrefix(out.entry), '192.0.2.53/32')
  map.lookup(parseClientKey('::ffff:192.0.2.53', 'resolver'), out)
  t.equal(map.entryPrefix(out.entry), '192.0.2.53/32', 'a mapped resolver address finds it too')
  t.equal(agg.resolverEstimates(new Uint8Array([192, 0, 2, 53]), T0)?.targets.length, 2)
  // Turned off: the estimators are kept, no host entries published.
  const quiet = createAggregator({ ...base, resolverEntries: false })
  feed(quiet, '198.51.100.7', { a: 20 }, 3, T0, { resolver: '192.0.2.53' })
  t.strictSame(view(quiet.compile(T0).map), { '198.51.100.0/24': 'a 20/3' })
  // With /32 client prefixes a client entry and a resolver entry can name the same host: the client's wins.
  const hosts = createAggregator(base)
  feed(hosts, '192.0.2.53', { a: 5 }, 3, T0, { resolver: '192.0.2.53', v4: 32 })
  feed(hosts, '198.51.100.7', { b: 50 }, 3, T0, { resolver: '192.0.2.53', v4: 32 })
  t.strictSame(view(hosts.compile(T0).map), { '192.0.2.53/32': 'a 5/3', '198.51.100.7/32': 'b 50/3' })
})

t.test('failed probes are counted per estimator and never make an entry', async (t) => {
  const agg = createAggregator(base)
  const stats = agg.add([report('198.51.100.7', 'c', 0, T0, { ok: false }), report('198.51.100.7', 'c', 0, T0 + SEC, { ok: false })])
  t.strictSame(stats, { folded: 0, outliers: 0, shifts: 0, failures: 2, evicted: 0 })
  t.strictSame(view(agg.compile(T0 + SEC).map), {})
  const e = agg.prefixEstimates({ family: 4, address: new Uint8Array([198, 51, 100, 0]), prefixLen: 24 }, T0 + SEC)
  t.equal(e?.key, '198.51.100.0/24')
  t.equal(e?.targets[0]?.failures, 2)
  t.equal(e?.targets[0]?.counting, false)
})

t.test('memory is bounded: least recently updated keys go first', async (t) => {
  const agg = createAggregator({ ...base, maxKeys: 2 })
  feed(agg, '10.0.0.1', { a: 1 })
  feed(agg, '10.0.1.1', { a: 1 })
  feed(agg, '10.0.0.1', { a: 1 }, 1) // 10.0.0 is now the most recent
  const stats = agg.add([report('10.0.2.1', 'a', 1)])
  t.equal(stats.evicted, 1)
  t.equal(agg.keyCount, 2)
  t.strictSame(Object.keys(view(agg.compile(T0).map)), ['10.0.0.0/24'], '10.0.1 was evicted; 10.0.2 has one sample')
  const few = createAggregator({ ...base, maxEstimators: 3 })
  feed(few, '10.0.0.1', { a: 1, b: 2 })
  feed(few, '10.0.1.1', { a: 1, b: 2 })
  t.equal(few.estimatorCount, 2, '10.0.0 (two estimators) made room for 10.0.1\'s second')
  t.equal(few.keyCount, 1)
  t.strictSame(Object.keys(view(few.compile(T0).map)), ['10.0.1.0/24'])
  const one = createAggregator({ ...base, maxEstimators: 1 })
  t.equal(one.add([report('10.0.0.1', 'a', 1), report('10.0.0.1', 'b', 1)]).folded, 1, 'no room even alone: the sample is skipped')
})

t.test('snapshot: JSON and back gives the same state, maps and all', async (t) => {
  const agg = createAggregator({ ...base, minSamples: 2 })
  feed(agg, '198.51.100.7', { a: 20.123456789, b: 30.5, c: 7 / 3 }, 4, T0, { resolver: '192.0.2.53' })
  feed(agg, '2001:db8:5::1', { d: 9.75, a: 1 / 7 }, 3, T0 + 1234, { resolver: '2001:db8::53' })
  agg.compile(T0 + 2000)
  feed(agg, '198.51.100.7', { a: 80 }, 1, T0 + 3000) // an outlier run in progress
  agg.add([report('198.51.100.7', 'd', 0, T0 + 3001, { ok: false }), report('10.9.8.7', 'b', 12.5, T0 - 5 * SEC)])
  feed(agg, '198.51.100.7', { b: 25 }, 3, T0 + 4000)
  const snapshot = agg.snapshot()
  t.equal(snapshot.format, 'steerdns-measure/1')
  t.equal(snapshot.mapVersion, 1)
  t.strictSame(snapshot.targets, ids)
  t.equal(snapshot.keys.length, 5)
  t.strictSame(
    snapshot.keys.map((k) => k.prefix ?? k.resolver),
    ['192.0.2.53', '2001:db8:5::/48', '2001:db8::53', '10.9.8.0/24', '198.51.100.0/24'],
    'least recently updated first',
  )
  t.equal(snapshot.keys[4]?.rows[0]?.length, 15, 'the outlier run is in the snapshot')
  const text = JSON.stringify(snapshot)
  const restored = restoreAggregator(JSON.parse(text), { ...base, minSamples: 2 })
  t.equal(JSON.stringify(restored.snapshot()), text)
  t.strictSame(restored.snapshot(), snapshot)
  t.strictSame(view(restored.compile(T0 + 5000).map), view(agg.compile(T0 + 5000).map))
  t.equal(restored.mapVersion, 2)
  // Both go on the same way.
  const more = [report('198.51.100.7', 'a', 80, T0 + 6000), report('198.51.100.7', 'c', 2.5, T0 + 6000)]
  t.strictSame(restored.add(more), agg.add(more))
  t.strictSame(restored.snapshot(), agg.snapshot())
})

t.test('restoring with another target list maps estimators by id and drops the unknown', async (t) => {
  const agg = createAggregator(base)
  feed(agg, '198.51.100.7', { a: 20, b: 30, c: 40 })
  agg.compile(T0)
  const restored = restoreAggregator(agg.snapshot(), { ...base, targetIds: ['c', 'x', 'a'] })
  const s = restored.snapshot()
  t.strictSame(s.targets, ['c', 'x', 'a'])
  t.strictSame(
    s.keys[0]?.rows.map((r) => [r[0], r[2]]),
    [
      [0, 40],
      [2, 20],
    ],
  )
  t.equal(s.keys[0]?.best, 2, 'the best is still a, now at index 2')
})

t.test('a malformed snapshot is refused with paths', async (t) => {
  const good = createAggregator(base)
  feed(good, '198.51.100.7', { a: 20 })
  const snap = JSON.parse(JSON.stringify(good.snapshot())) as Record<string, unknown>
  const bad = (value: unknown, paths: string[]): void => {
    t.throws(() => restoreAggregator(value, base), { code: MeasureErrorCode.SNAPSHOT_INVALID, problems: paths.map((path) => ({ path })) }, paths.join())
  }
  bad(null, ['format'])
  bad({ ...snap, format: 'other' }, ['format'])
  bad({ ...snap, mapVersion: -1 }, ['mapVersion'])
  bad({ ...snap, keys: [{ prefix: 'x', rows: [] }] }, ['keys[0].prefix'])
  bad({ ...snap, keys: [{ prefix: '10.0.0.0/8', resolver: '10.0.0.1', rows: [] }] }, ['keys[0]'])
  bad({ ...snap, keys: [{ prefix: '10.0.0.0/8', rows: [[9]] }] }, ['keys[0].rows[0]'])
  bad({ ...snap, keys: [{ prefix: '10.0.0.0/8', rows: [[0, -1]] }] }, ['keys[0].rows[0]'])
  bad({ ...snap, keys: [{ prefix: '10.0.0.0/8', rows: [[0], [0]] }] }, ['keys[0].rows[1]'])
  bad({ ...snap, keys: [{ prefix: '10.0.0.0/8', rows: [[0]] }, { prefix: '10.0.0.0/8', rows: [[0]] }] }, ['keys[1]'])
  bad({ ...snap, keys: [{ resolver: '10.0.0.0/8', rows: [] }] }, ['keys[0].resolver'])
  bad({ ...snap, keys: [{ prefix: '10.0.0.0/8', rows: [[0]], best: 7 }] }, ['keys[0].best'])
})

t.test('options are checked when the aggregator is made', async (t) => {
  t.throws(() => createAggregator({ ...base, halfLifeSec: 0 }), { code: MeasureErrorCode.BAD_OPTIONS, problems: [{ path: 'halfLifeSec' }] })
  t.throws(() => createAggregator({ ...base, minSamples: 1.5, hysteresisPct: 100 }), {
    code: MeasureErrorCode.BAD_OPTIONS,
    problems: [{ path: 'minSamples' }, { path: 'hysteresisPct' }],
  })
  t.throws(() => createAggregator({ ...base, maxKeys: 0 }), { code: MeasureErrorCode.BAD_OPTIONS })
})

t.test('compileAsync: the same map in slices, add() between them, one compile at a time', async (t) => {
  const fill = (agg: Aggregator): void => {
    for (let i = 0; i < 3000; i++) feed(agg, `10.${i >> 8}.${i & 255}.1`, { a: 10 + (i % 7), b: 20, c: 5 + (i % 3) * 10 }, 3, T0, { resolver: `192.0.2.${i % 200}` })
  }
  const sync = createAggregator(base)
  const sliced = createAggregator(base)
  fill(sync)
  fill(sliced)
  const expected = view(sync.compile(T0).map)
  let pauses = 0
  let busy: unknown
  const result = await sliced.compileAsync(T0, {
    sliceMs: 0,
    pause: async () => {
      pauses++
      if (pauses === 1) {
        try {
          sliced.compile(T0)
        } catch (err) {
          busy = err
        }
      }
      // Reports for a key compiled in the first slice: safe, and left for the next compile.
      sliced.add([report('10.0.0.1', 'd', 1)])
    },
  })
  t.ok(pauses > 5, `${pauses} pauses`)
  t.match(busy, { code: MeasureErrorCode.COMPILE_BUSY })
  t.strictSame(view(result.map), expected)
  t.equal(result.map.version, 1)
  t.equal(result.stats.prefixes, 3000)
  const next = sliced.compile(T0)
  t.equal(next.map.version, 2, 'free to compile again')
  t.equal(view(next.map)['10.0.0.0/24'], `d 1/${pauses}, c 5/3, a 10/3, b 20/3`)
  // A pause that throws leaves the aggregator free too.
  await t.rejects(sliced.compileAsync(T0, { sliceMs: 0, pause: () => Promise.reject(new Error('stop')) }), { message: 'stop' })
  t.equal(sliced.compile(T0).map.version, 3)
})
