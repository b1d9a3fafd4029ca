// The network list: what a good line becomes (GeoIP2 City layout), and every
// problem reported at once with its line.
import t from 'tap'
import { ACCURACY_RADIUS_KM, GEO_ERROR, formatGeoListProblem, parseNetworkList } from '../../src/geo/index.js'

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'object' && v !== null && 'type' in v && 'value' in v ? (v as { value: unknown }).value : v)))

t.test('a line becomes a GeoIP2 City record; comments, blank lines and extra spaces are ignored', async (t) => {
  const text = [
    '# header comment',
    '',
    '198.51.100.0/24 US NA 47.61 -122.33 Seattle   # trailing comment',
    '\t2001:db8:4::/48\tbr\tsa\t-23.55\t-46.63\tSão   Paulo',
    '10.0.0.0/8 US NA 39.83 -98.58',
    '   ',
  ].join('\n')
  const { entries, problems } = parseNetworkList(text, 'list.txt')
  t.same(problems, [])
  t.same(
    entries.map((e) => [e.line, e.network, e.countryCode, e.continentCode, e.latitude, e.longitude, e.city]),
    [
      [3, '198.51.100.0/24', 'US', 'NA', 47.61, -122.33, 'Seattle'],
      [4, '2001:db8:4::/48', 'BR', 'SA', -23.55, -46.63, 'São Paulo'],
      [5, '10.0.0.0/8', 'US', 'NA', 39.83, -98.58, undefined],
    ],
  )
  t.same(plain(entries[0]?.record), {
    continent: { code: 'NA', names: { en: 'North America' } },
    country: { iso_code: 'US', names: { en: 'United States' } },
    city: { names: { en: 'Seattle' } },
    location: { accuracy_radius: ACCURACY_RADIUS_KM.city, latitude: 47.61, longitude: -122.33 },
  })
  t.same(plain(entries[2]?.record), {
    continent: { code: 'NA', names: { en: 'North America' } },
    country: { iso_code: 'US', names: { en: 'United States' } },
    location: { accuracy_radius: ACCURACY_RADIUS_KM.country, latitude: 39.83, longitude: -98.58 },
  })
})

t.test('every problem is reported at once, with file and line', async (t) => {
  const text = [
    '198.51.100.0/24 US NA 47.61 -122.33 Seattle', // 1 good
    '198.51.100.1/24 US NA 47.61 -122.33', // 2 host bits
    '203.0.113.0/24 USA NA 1 2', // 3 country
    '203.0.114.0/24 US XX 1 2', // 4 continent
    '203.0.115.0/24 US NA 91 2', // 5 latitude
    '203.0.116.0/24 US NA 1 -180.5', // 6 longitude
    '203.0.117.0/24 US NA north 2', // 7 latitude not a number
    '203.0.118.0/24 US NA 1', // 8 too few fields
    '198.51.100.0/24 GB EU 51.5 -0.1 London', // 9 repeats line 1
    '::ffff:192.0.2.0/120 US NA 1 2', // 10 alias range
    'bogus US NA 1 2', // 11 not a network
    '203.0.119.0/24 1X EU 1e2 2', // 12 two problems on one line
    '203.0.120.0/24 US NA 0x10 2', // 13 hex is not a coordinate
  ].join('\n')
  const { entries, problems } = parseNetworkList(text, 'geo.txt')
  t.same(
    entries.map((e) => e.line),
    [1],
  )
  t.same(
    problems.map((p) => [p.line, p.code]),
    [
      [2, GEO_ERROR.BAD_NETWORK],
      [3, GEO_ERROR.BAD_LIST_LINE],
      [4, GEO_ERROR.BAD_LIST_LINE],
      [5, GEO_ERROR.BAD_LIST_LINE],
      [6, GEO_ERROR.BAD_LIST_LINE],
      [7, GEO_ERROR.BAD_LIST_LINE],
      [8, GEO_ERROR.BAD_LIST_LINE],
      [9, GEO_ERROR.BAD_NETWORK],
      [10, GEO_ERROR.BAD_NETWORK],
      [11, GEO_ERROR.BAD_NETWORK],
      [12, GEO_ERROR.BAD_LIST_LINE],
      [12, GEO_ERROR.BAD_LIST_LINE],
      [13, GEO_ERROR.BAD_LIST_LINE],
    ],
  )
  t.ok(problems.every((p) => p.file === 'geo.txt'))
  t.match(formatGeoListProblem(problems[7]!), /^geo\.txt:9: .*line 1/)
})

t.test('the coordinate limits themselves are accepted', async (t) => {
  const { problems } = parseNetworkList('192.0.2.0/24 AQ AN -90 -180\n198.51.100.0/24 FJ OC 90 180\n203.0.113.0/24 NZ OC +0.5 .5', 'x')
  t.same(problems, [])
})

t.test('a list without networks is a problem of the file (line 0)', async (t) => {
  const { entries, problems } = parseNetworkList('# nothing\n\n', 'empty.txt')
  t.same(entries, [])
  t.same(problems.map((p) => [p.line, p.code]), [[0, GEO_ERROR.BAD_LIST_LINE]])
  t.equal(formatGeoListProblem(problems[0]!), 'empty.txt: the list has no networks')
})

t.test('a country code Node has no name for keeps the code as its name', async (t) => {
  const { entries } = parseNetworkList('192.0.2.0/24 QQ EU 1 2', 'x')
  t.same(plain(entries[0]?.record), {
    continent: { code: 'EU', names: { en: 'Europe' } },
    country: { iso_code: 'QQ', names: { en: 'QQ' } },
    location: { accuracy_radius: ACCURACY_RADIUS_KM.country, latitude: 1, longitude: 2 },
  })
})
