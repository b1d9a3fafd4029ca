// openGeoDatabase and lookups: City and ASN layouts, prefix lengths relative to
// the queried family, shared results, validation of bad files, and a real
// MaxMind file (GeoIP2-City-Test.mmdb) when the workspace has one.
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GEO_ERROR, openGeoDatabase, writeMmdb } from '../../src/geo/index.js'
import type { GeoLocation, MmdbMap, MmdbNetwork } from '../../src/geo/index.js'
import { parseTreeNetwork } from '../../src/geo/ip-network.js'
import { mmdbTyped } from '../../src/geo/mmdb-writer.js'

const bytesOf = (ip: string) => {
  const net = parseTreeNetwork(`${ip}/${ip.includes(':') ? 128 : 32}`)
  return net.family === 4 ? net.treeBits.slice(12) : net.treeBits.slice()
}

const city = (name: string | undefined, iso: string, continent: string, latitude: number, longitude: number): MmdbMap => ({
  continent: { code: continent, names: { en: continent } },
  country: { iso_code: iso, names: { en: iso } },
  location: { accuracy_radius: mmdbTyped('uint16', 50), latitude: mmdbTyped('double', latitude), longitude: mmdbTyped('double', longitude) },
  ...(name === undefined ? {} : { city: { names: { en: name } } }),
})

async function dbFile(dir: string, networks: MmdbNetwork[], databaseType = 'GeoIP2-City'): Promise<string> {
  const file = join(dir, `${databaseType}.mmdb`)
  writeFileSync(file, writeMmdb(networks, { databaseType, description: 'lookup test', buildEpochSec: 1_767_225_600 }))
  return file
}

t.test('City layout: location, country, continent, city; prefix lengths relative to the queried family', async (t) => {
  const file = await dbFile(t.testdir({}), [
    { network: '10.0.0.0/8', record: city(undefined, 'US', 'NA', 39.83, -98.58) },
    { network: '10.1.2.0/24', record: city('Frankfurt', 'DE', 'EU', 50.11, 8.68) },
    { network: '198.51.100.0/24', record: { country: { iso_code: 'US' } } }, // no location
    { network: '2001:db8:4::/48', record: city('São Paulo', 'BR', 'SA', -23.55, -46.63) },
    { network: '192.0.2.0/24', record: { ...city('Tokyo', 'JP', 'AS', 35.68, 139.69), traits: { autonomous_system_number: 64500 } } },
  ])
  const db = await openGeoDatabase(file)
  t.same(db.metadata, {
    databaseType: 'GeoIP2-City',
    layout: 'city',
    buildEpochSec: 1_767_225_600,
    nodeCount: db.metadata.nodeCount,
    recordSizeBits: 24,
    ipVersion: 6,
    description: 'lookup test',
  })
  t.equal(db.path, file)
  t.equal(db.sizeBytes, readFileSync(file).length)
  const want = (l: Partial<GeoLocation>): GeoLocation => ({ countryCode: undefined, continentCode: undefined, city: undefined, asn: undefined, latitude: 0, longitude: 0, networkPrefixLen: 0, ...l })
  t.same(db.lookup(bytesOf('10.1.2.3')), want({ latitude: 50.11, longitude: 8.68, countryCode: 'DE', continentCode: 'EU', city: 'Frankfurt', networkPrefixLen: 24 }))
  t.same(db.lookup(bytesOf('10.1.3.3')), want({ latitude: 39.83, longitude: -98.58, countryCode: 'US', continentCode: 'NA', networkPrefixLen: 24 }))
  t.same(db.lookup(bytesOf('10.128.0.1')), want({ latitude: 39.83, longitude: -98.58, countryCode: 'US', continentCode: 'NA', networkPrefixLen: 9 }))
  t.same(db.lookup(bytesOf('2001:db8:4::1')), want({ latitude: -23.55, longitude: -46.63, countryCode: 'BR', continentCode: 'SA', city: 'São Paulo', networkPrefixLen: 48 }))
  t.equal(db.lookup(bytesOf('192.0.2.1'))?.asn, 64500)
  // An IPv4-mapped address given as 16 bytes is an IPv6 lookup (through the ::ffff:0:0/96 alias).
  t.equal(db.lookup(bytesOf('::ffff:10.1.2.3'))?.networkPrefixLen, 120)
  t.equal(db.lookup(bytesOf('198.51.100.1')), undefined, 'a record without coordinates')
  t.equal(db.lookup(bytesOf('203.0.113.1')), undefined, 'an address in no network')
  t.equal(db.lookup(bytesOf('2001:db9::1')), undefined)
  t.equal(db.lookup(new Uint8Array(5)), undefined, 'neither 4 nor 16 bytes')
  t.equal(db.lookupAsn(bytesOf('10.1.2.3')), undefined)
  t.same(db.lookupAsn(bytesOf('192.0.2.1')), { asn: 64500, organization: undefined, networkPrefixLen: 24 })
  const first = db.lookup(bytesOf('10.1.2.3'))
  t.equal(db.lookup(bytesOf('10.1.2.200')), first, 'one frozen result per record and prefix length')
  t.ok(Object.isFrozen(first))
  t.equal(db.decodeFailures, 0)
})

t.test('ASN layout: lookupAsn answers, lookup finds no location; layout can be required', async (t) => {
  const file = await dbFile(
    t.testdir({}),
    [
      { network: '192.0.2.0/24', record: { autonomous_system_number: 64500, autonomous_system_organization: 'Example Transit' } },
      { network: '2001:db8::/32', record: { autonomous_system_number: 64501, autonomous_system_organization: 'Example v6' } },
    ],
    'GeoLite2-ASN',
  )
  const db = await openGeoDatabase(file, { layout: 'asn' })
  t.equal(db.metadata.layout, 'asn')
  t.same(db.lookupAsn(bytesOf('192.0.2.77')), { asn: 64500, organization: 'Example Transit', networkPrefixLen: 24 })
  t.same(db.lookupAsn(bytesOf('2001:db8:1::1')), { asn: 64501, organization: 'Example v6', networkPrefixLen: 32 })
  t.equal(db.lookup(bytesOf('192.0.2.77')), undefined)
  t.equal(db.lookupAsn(bytesOf('198.51.100.1')), undefined)
  await t.rejects(openGeoDatabase(file, { layout: 'city' }), { code: GEO_ERROR.INVALID })
})

t.test('files that are not usable databases are refused with coded errors and a cause', async (t) => {
  const dir = t.testdir({ 'garbage.mmdb': 'this is not a database', 'empty.mmdb': '', sub: {} })
  const good = readFileSync(await dbFile(dir, [{ network: '192.0.2.0/24', record: city('London', 'GB', 'EU', 51.51, -0.13) }]))
  const variant = (name: string, edit: (b: Buffer) => Buffer) => {
    const path = join(dir, name)
    writeFileSync(path, edit(Buffer.from(good)))
    return path
  }
  const unreadable = await t.rejects(openGeoDatabase(join(dir, 'missing.mmdb')), { code: GEO_ERROR.UNREADABLE })
  t.ok((unreadable as unknown as Error).cause, 'cause kept')
  await t.rejects(openGeoDatabase(join(dir, 'sub')), { code: GEO_ERROR.UNREADABLE })
  await t.rejects(openGeoDatabase(join(dir, 'garbage.mmdb')), { code: GEO_ERROR.INVALID })
  await t.rejects(openGeoDatabase(join(dir, 'empty.mmdb')), { code: GEO_ERROR.INVALID })
  await t.rejects(openGeoDatabase(variant('half.mmdb', (b) => b.subarray(0, b.length >> 1))), { code: GEO_ERROR.INVALID }, 'half written')
  await t.rejects(
    openGeoDatabase(variant('bad-record.mmdb', (b) => (b.writeUIntBE(0xfffff0, 0, 3), b))),
    { code: GEO_ERROR.INVALID, message: /points outside/ },
    'a tree record past the data section',
  )
  // 24-bit records: 6 bytes a node, then the 16-byte separator, then the data section.
  const nodeCount = (await openGeoDatabase(join(dir, 'GeoIP2-City.mmdb'))).metadata.nodeCount
  const dataStart = nodeCount * 6 + 16
  await t.rejects(
    openGeoDatabase(variant('bad-separator.mmdb', (b) => ((b[dataStart - 3] = 1), b))),
    { code: GEO_ERROR.INVALID, message: /separator/ },
  )
  await t.rejects(
    openGeoDatabase(variant('bad-data.mmdb', (b) => ((b[dataStart] = 0x00), (b[dataStart + 1] = 0xf0), b))),
    { code: GEO_ERROR.INVALID, message: /cannot be decoded/ },
    'an undecodable data record fails the open, not a query',
  )
  await t.rejects(
    openGeoDatabase(variant('no-marker.mmdb', (b) => Buffer.from(b.toString('latin1').replace('MaxMind.com', 'MaxMind.org'), 'latin1'))),
    { code: GEO_ERROR.INVALID },
  )
})

// A real GeoIP2 City file from MaxMind's test-data, if the workspace has one.
// Never copied into the repository; without it the same checks run against a
// database our writer builds in the same layout (and the test says so).
const REAL_DB = process.env['GEOIP2_CITY_TEST_MMDB'] ?? '/work/shared/geo/GeoIP2-City-Test.mmdb'

const REAL_CASES: [string, Omit<GeoLocation, 'asn'>][] = [
  ['81.2.69.142', { countryCode: 'GB', continentCode: 'EU', city: 'London', latitude: 51.5142, longitude: -0.0931, networkPrefixLen: 31 }],
  ['89.160.20.112', { countryCode: 'SE', continentCode: 'EU', city: 'Linköping', latitude: 58.4167, longitude: 15.6167, networkPrefixLen: 28 }],
  ['216.160.83.56', { countryCode: 'US', continentCode: 'NA', city: 'Milton', latitude: 47.2513, longitude: -122.3149, networkPrefixLen: 29 }],
  ['2001:218::1', { countryCode: 'JP', continentCode: 'AS', city: undefined, latitude: 35.68536, longitude: 139.75309, networkPrefixLen: 32 }],
  ['2a02:d280::1', { countryCode: 'CZ', continentCode: 'EU', city: undefined, latitude: 49.75, longitude: 15, networkPrefixLen: 29 }],
  ['::ffff:81.2.69.142', { countryCode: 'GB', continentCode: 'EU', city: 'London', latitude: 51.5142, longitude: -0.0931, networkPrefixLen: 127 }],
  ['2002:5102:458e::1', { countryCode: 'GB', continentCode: 'EU', city: 'London', latitude: 51.5142, longitude: -0.0931, networkPrefixLen: 47 }],
]

/** The same networks and values in the full GeoIP2 City layout (multi-language names, geoname ids, time zones, subdivisions). */
function geoip2LikeDatabase(): Buffer {
  const names = (en: string, extra: Record<string, string> = {}) => ({ en, ...extra })
  const europe = { code: 'EU', geoname_id: 6255148, names: names('Europe', { de: 'Europa', 'zh-CN': '欧洲' }) }
  const record = (c: (typeof REAL_CASES)[number][1], iso: string, extra: MmdbMap): MmdbMap => ({
    continent: c.continentCode === 'EU' ? europe : { code: c.continentCode as string, geoname_id: 6255147, names: names(c.continentCode as string) },
    country: { geoname_id: 1, iso_code: iso, names: names(iso, { de: iso }) },
    registered_country: { geoname_id: 1, iso_code: iso, names: names(iso) },
    location: {
      accuracy_radius: mmdbTyped('uint16', 100),
      latitude: mmdbTyped('double', c.latitude),
      longitude: mmdbTyped('double', c.longitude),
      time_zone: 'Etc/UTC',
    },
    ...(c.city === undefined ? {} : { city: { geoname_id: 2643743, names: names(c.city, { ru: 'город' }) } }),
    ...extra,
  })
  const at = (i: number) => (REAL_CASES[i] as (typeof REAL_CASES)[number])[1]
  return writeMmdb(
    [
      { network: '81.2.69.142/31', record: record(at(0), 'GB', { subdivisions: [{ geoname_id: 6269131, iso_code: 'ENG', names: names('England') }] }) },
      { network: '89.160.20.112/28', record: record(at(1), 'SE', { postal: { code: '583' } }) },
      { network: '216.160.83.56/29', record: record(at(2), 'US', { location: { accuracy_radius: mmdbTyped('uint16', 22), latitude: mmdbTyped('double', 47.2513), longitude: mmdbTyped('double', -122.3149), metro_code: mmdbTyped('uint16', 819) } }) },
      { network: '2001:218::/32', record: record(at(3), 'JP', { traits: { is_anycast: false } }) },
      { network: '2a02:d280::/29', record: record(at(4), 'CZ', {}) },
    ],
    { databaseType: 'GeoIP2-City', description: 'GeoIP2 City layout built by steerdns', buildEpochSec: 1_767_225_600, languages: ['en', 'zh'], minRecordSizeBits: 28 },
  )
}

t.test('a real GeoIP2 City file (MaxMind test data) reads as expected', async (t) => {
  let file = REAL_DB
  if (!existsSync(REAL_DB)) {
    t.comment(`MaxMind's GeoIP2-City-Test.mmdb is not at ${REAL_DB} (set GEOIP2_CITY_TEST_MMDB): checking a database built by our writer in the GeoIP2 City layout instead`)
    file = join(t.testdir({}), 'geoip2-like.mmdb')
    writeFileSync(file, geoip2LikeDatabase())
  }
  const db = await openGeoDatabase(file, { layout: 'city' })
  t.equal(db.metadata.databaseType, 'GeoIP2-City')
  t.equal(db.metadata.ipVersion, 6)
  t.equal(db.metadata.recordSizeBits, 28)
  t.ok(db.metadata.nodeCount > 0)
  for (const [ip, want] of REAL_CASES) t.same(db.lookup(bytesOf(ip)), { ...want, asn: undefined }, ip)
  t.equal(db.lookup(bytesOf('127.0.0.1')), undefined)
})
