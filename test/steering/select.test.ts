/**
 * The steering decision: which rule decides, which targets answer, and the ECS
 * scope (RFC 7871 section 7.2.1) for source prefixes shorter than, equal to and
 * longer than the deciding entry, entries nested inside the source prefix,
 * geo-decided answers and the load-sharing hash. Real map (parseMapJson) and a
 * real geo database (written by our MMDB writer, read by maxmind).
 */
import t from 'tap'
import { greatCircleKm, openGeoDatabase, writeMmdb } from '../../src/geo/index.js'
import { buildSteeringSetup, explain, parseClientKey, parseMapJson, select } from '../../src/steering/index.js'
import type { SteeringView } from '../../src/steering/index.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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
    version: 7,
    entries: [
      { prefix: '10.0.0.0/8', targets: [{ id: 'ord-1', score: 30, samples: 100 }] },
      { prefix: '10.1.0.0/16', targets: [{ id: 'lhr-1', score: 20, samples: 50 }, { id: 'ord-1', score: 60, samples: 20 }] },
      { prefix: '10.1.2.0/24', targets: [{ id: 'sea-1', score: 5, samples: 40 }] },
      { prefix: '10.1.2.128/25', targets: [{ id: 'nrt-1', score: 4, samples: 10 }] },
      // Two near-equal targets (within 10%): shared by capacity, chosen per client /24.
      { prefix: '172.16.0.0/12', targets: [{ id: 'sea-1', score: 10, samples: 10 }, { id: 'nrt-1', score: 10.5, samples: 10 }] },
      { prefix: '2001:db8:aaaa::/48', targets: [{ id: 'lhr-1', score: 9, samples: 10 }, { id: 'sea-1', score: 90, samples: 10 }] },
      // Stale: updated long before "now" below.
      { prefix: '100.64.0.0/10', targets: [{ id: 'nrt-1', score: 1, samples: 10 }], updatedAt: '2026-01-01T00:00:00Z' },
    ],
  },
  (id) => setup.targetIndex.get(id),
)

const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const dir = await mkdtemp(join(tmpdir(), 'steerdns-select-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const geoFile = join(dir, 'geo.mmdb')
const place = (lat: number, lon: number) => ({ location: { latitude: lat, longitude: lon, accuracy_radius: 50 }, continent: { code: 'XX' }, country: { iso_code: 'XX' } })
await writeFile(
  geoFile,
  writeMmdb(
    [
      { network: '198.51.100.0/24', record: place(51.5, -0.1) }, // London
      { network: '198.51.100.0/26', record: place(47.6, -122.3) }, // Seattle
      { network: '100.64.0.0/10', record: place(51.5, -0.1) }, // London
      { network: '2001:db8:bbbb::/48', record: place(35.7, 139.7) }, // Tokyo
    ],
    { databaseType: 'GeoIP2-City', description: 'select test', buildEpochSec: 1 },
  ),
)
const geo = await openGeoDatabase(geoFile)
const view: SteeringView = { setup, map, geo, isServing: () => true, distanceKm: greatCircleKm }
const api = setup.services.get('api.example.test')
if (!api) throw new Error('service missing')

interface Case {
  client: string
  family?: 4 | 6
  rule: string
  targets: string[]
  scope: number
  ttl?: number
}

const scopeCases: Record<string, Case> = {
  'source longer than the deciding entry: scope is the entry (/24 inside /8)': { client: '10.9.9.0/24', rule: 'map', targets: ['ord-1'], scope: 8 },
  'source equal to the deciding entry, nothing below: scope is the entry': { client: '2001:db8:aaaa::/48', family: 6, rule: 'map', targets: ['lhr-1'], scope: 48 },
  'source equal to the deciding entry, entries below reach /25: scope /25': { client: '10.1.0.0/16', rule: 'map', targets: ['lhr-1'], scope: 25 },
  'entries nested inside the source: scope is the deepest of them (/25)': { client: '10.1.2.0/24', rule: 'map', targets: ['sea-1'], scope: 25 },
  'host source inside the deepest entry: that entry decides': { client: '10.1.2.200/32', rule: 'map', targets: ['nrt-1'], scope: 25 },
  'host source next to nested entries: covering /24 decides, scope /24': { client: '10.1.2.5/32', rule: 'map', targets: ['sea-1'], scope: 24 },
  'source shorter than the entries below it: /12 source decided by the /8, entries reach /25': { client: '10.0.0.0/12', rule: 'map', targets: ['ord-1'], scope: 25 },
  'short source with nothing above it: geo or default, scope from entries below': { client: '10.0.0.0/7', rule: 'default', targets: [], scope: 25 },
  'geo decides where the map has nothing: scope is the geo network (/26)': { client: '198.51.100.7/32', rule: 'geo', targets: ['sea-1'], scope: 26 },
  // The /26 carve-out splits the /24 in the database tree: .200 sits in the /25 that remains.
  'geo network as the database stores it: /25 left of a /24 around a /26': { client: '198.51.100.200/32', rule: 'geo', targets: ['lhr-1'], scope: 25 },
  'stale map entry falls back to geo': { client: '100.64.1.0/24', rule: 'geo', targets: ['lhr-1'], scope: 10 },
  'IPv6 map entry': { client: '2001:db8:aaaa:1::/64', family: 6, rule: 'map', targets: ['lhr-1'], scope: 48 },
  'IPv6 geo: nearest target with an IPv6 address (Tokyo has none: Seattle)': { client: '2001:db8:bbbb::/56', family: 6, rule: 'geo', targets: ['sea-1'], scope: 48 },
  // Scope and hash lengths are in the client's bits, whatever record type it asked for.
  'IPv6 client asking for A records: scope in IPv6 bits': { client: '2001:db8:aaaa:1::/64', family: 4, rule: 'map', targets: ['lhr-1'], scope: 48 },
  'IPv4-mapped IPv6 source is the IPv4 prefix': { client: '::ffff:10.1.2.200/128', rule: 'map', targets: ['nrt-1'], scope: 25 },
}

for (const [title, c] of Object.entries(scopeCases)) {
  t.test(title, async (t) => {
    const key = parseClientKey(c.client, 'ecs')
    const d = select(api, key, c.family ?? 4, view, NOW_MS, true)
    t.equal(d.rule, c.rule, 'rule')
    if (c.targets.length > 0) t.same(d.targets.map((i) => setup.targets[i]?.id), c.targets, 'targets')
    t.equal(d.scopePrefixLen, c.scope, `scope (${d.trace?.scopeReason})`)
    t.equal(d.ttlSec, c.rule === 'default' ? 10 : 60, 'TTL: max when map or geo decided, min otherwise')
  })
}

t.test('near-equal candidates share load by capacity, stable per client /24, scope /24', async (t) => {
  const counts = new Map<string, number>()
  for (let i = 0; i < 400; i++) {
    const net = `172.${16 + (i >> 8)}.${i & 255}`
    const client = `${net}.0/24`
    const first = select(api, parseClientKey(client, 'ecs'), 4, view, NOW_MS)
    const again = select(api, parseClientKey(`${net}.77/32`, 'ecs'), 4, view, NOW_MS)
    t.same(again.targets, first.targets, `same network, same answer (${client})`)
    t.equal(first.scopePrefixLen, 24)
    const id = setup.targets[first.targets[0] as number]?.id ?? '?'
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  // nrt-1 has capacity 300 against sea-1's 100: about three quarters of the networks.
  const nrt = counts.get('nrt-1') ?? 0
  t.ok(nrt > 240 && nrt < 360, `nrt-1 got ${nrt}/400 networks (expected about 300)`)
  t.ok((counts.get('sea-1') ?? 0) > 40, 'sea-1 gets its share')
})

t.test('unhealthy targets are skipped; all down answers by policy, never empty', async (t) => {
  const down = (ids: string[]) => ({ ...view, isServing: (i: number) => !ids.includes(setup.targets[i]?.id ?? '') })
  const key = parseClientKey('10.1.0.0/16', 'ecs')
  const skipped = select(api, key, 4, down(['lhr-1']), NOW_MS)
  t.same(skipped.targets.map((i) => setup.targets[i]?.id), ['ord-1'], 'next in the map ranking')
  const allDown = select(api, key, 4, down(['sea-1', 'ord-1', 'lhr-1', 'nrt-1']), NOW_MS, true)
  t.equal(allDown.rule, 'all-down')
  t.same(allDown.targets.map((i) => setup.targets[i]?.id), ['lhr-1'], 'policy best: the map best anyway')
  t.equal(allDown.ttlSec, 10, 'minimum TTL while all down')
  const eu = setup.services.get('eu.example.test')
  if (!eu) throw new Error('service missing')
  const staticPolicy = select(eu, key, 4, down(['lhr-1']), NOW_MS)
  t.equal(staticPolicy.useStatic, true, 'policy static: the zone answers')
})

t.test('a family no pool target has is NODATA (no-address)', async (t) => {
  const onlyV4 = buildSteeringSetup({
    targets: [{ id: 'a', site: '', ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 1, tags: [] }],
    services: [{ name: 's.example.test', pool: ['a'], answers: 1, ttl: { min: 1, max: 2 }, allDown: 'best' }],
    map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 60 },
  })
  const svc = onlyV4.services.get('s.example.test')
  if (!svc) throw new Error('service missing')
  const d = select(svc, parseClientKey('2001:db8::/48', 'ecs'), 6, { ...view, setup: onlyV4 }, NOW_MS)
  t.equal(d.rule, 'no-address')
  t.same(d.targets, [])
})

t.test('explain returns the answer, scope, TTL and a trace naming candidates and the rule', async (t) => {
  const e = explain(view, 'api.example.test', parseClientKey('10.1.0.0/16', 'ecs'), 4, NOW_MS)
  t.ok(e)
  t.same(e?.answer, ['198.51.100.15'])
  t.same(e?.answerTargets, ['lhr-1'])
  t.match(e?.trace, {
    key: '10.1.0.0/16',
    keySource: 'ecs',
    rule: 'map',
    matched: '10.1.0.0/16',
    mapVersion: 7,
    chosen: ['lhr-1'],
    candidates: [{ id: 'lhr-1', scoreMs: 20, samples: 50, serving: true }, { id: 'ord-1', scoreMs: 60, samples: 20, serving: true }],
  })
  t.equal(explain(view, 'www.example.test', parseClientKey('10.1.0.0/16', 'ecs'), 4, NOW_MS), undefined, 'not steered')
})
