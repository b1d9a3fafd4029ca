// An independent reader: libmaxminddb's mmdblookup (Debian package mmdb-bin,
// installed by test/setup.sh) reads databases our tool built and must find the
// same records, prefix lengths and metadata as the `maxmind` package does.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { buildGeoDatabase, openGeoDatabase, parseNetworkList } from '../../src/geo/index.js'
import { parseTreeNetwork } from '../../src/geo/ip-network.js'

const INSTALL_HINT = 'mmdblookup is missing: run `sh test/setup.sh` (installs Debian package mmdb-bin) or `apt-get install mmdb-bin`'

const LIST = `
# A list written for this test, built with the project's tool.
192.0.2.0/27       US NA  47.61 -122.33 Seattle
192.0.2.128/27     GB EU  51.51   -0.13 London
198.51.100.0/24    US NA  39.83  -98.58
198.51.100.64/26   US NA  41.88  -87.63 Chicago
203.0.113.32/27    JP AS  35.68  139.69 Tokyo
203.0.113.64/27    AU OC -33.87  151.21 Sydney
10.0.0.0/8         US NA  39.83  -98.58
10.1.2.0/24        DE EU  50.11    8.68 Frankfurt
2001:db8::/32      US NA  39.83  -98.58
2001:db8:4::/48    BR SA -23.55  -46.63 São Paulo
2001:db8:7::/48    ZA AF -26.2    28.05 Johannesburg
`

interface Lookup {
  readonly prefixLen: number | undefined
  readonly record: unknown
  readonly metadata: Record<string, string>
}

/** Runs `mmdblookup --verbose` and turns its annotated output back into a value. */
function mmdblookup(file: string, ip: string): Lookup {
  const run = spawnSync('mmdblookup', ['--file', file, '--ip', ip, '--verbose'], { encoding: 'utf8' })
  if (run.error) throw run.error
  const metadata: Record<string, string> = {}
  for (const m of run.stdout.matchAll(/^ {4}([A-Za-z ]+):\s+(.*)$/gm)) metadata[m[1] as string] = (m[2] as string).trim()
  const prefix = /Record prefix length: (\d+)/.exec(run.stdout)
  const body = run.stdout.slice(run.stdout.indexOf('{', prefix?.index ?? run.stdout.length))
  return { prefixLen: prefix ? Number(prefix[1]) : undefined, record: prefix ? parseAnnotated(body) : undefined, metadata }
}

function parseAnnotated(text: string): unknown {
  const tokens = text.matchAll(/[{}[\]]|"((?:[^"\\]|\\.)*)":|"((?:[^"\\]|\\.)*)" <utf8_string>|(\S+) <(\w+)>/g)
  const stack: { value: Record<string, unknown> | unknown[]; key: string | undefined }[] = []
  let result: unknown
  const put = (value: unknown) => {
    const top = stack[stack.length - 1]
    if (top === undefined) result = value
    else if (Array.isArray(top.value)) top.value.push(value)
    else top.value[top.key as string] = value
  }
  for (const m of tokens) {
    const [token, key, str, scalar, type] = m
    if (token === '{' || token === '[') {
      const value = token === '{' ? {} : []
      put(value)
      stack.push({ value, key: undefined })
    } else if (token === '}' || token === ']') stack.pop()
    else if (key !== undefined) (stack[stack.length - 1] as { key: string | undefined }).key = key
    else if (str !== undefined) put(str)
    else if (type === 'double' || type === 'float') put(Number(scalar))
    else if (type === 'boolean') put(scalar === 'true')
    else put(Number(scalar))
  }
  return result
}

const bytesOf = (ip: string) => {
  const net = parseTreeNetwork(`${ip}/${ip.includes(':') ? 128 : 32}`)
  return net.family === 4 ? net.treeBits.subarray(12) : net.treeBits
}

t.test('mmdblookup finds the same records as the maxmind package in a database our tool built', async (t) => {
  const version = spawnSync('mmdblookup', ['--version'], { encoding: 'utf8' })
  if (version.error) {
    t.fail(INSTALL_HINT)
    return
  }
  const dir = t.testdir({ 'list.txt': LIST })
  const file = join(dir, 'city.mmdb')
  const built = await buildGeoDatabase(join(dir, 'list.txt'), file, { buildEpochSec: 1_767_225_600 })
  t.same(built.problems, [])
  const db = await openGeoDatabase(file)
  const entries = parseNetworkList(LIST, 'list').entries
  const cases: [string, string][] = [
    ['192.0.2.5', '192.0.2.0/27'],
    ['192.0.2.130', '192.0.2.128/27'],
    ['198.51.100.70', '198.51.100.64/26'],
    ['198.51.100.250', '198.51.100.0/24'],
    ['203.0.113.33', '203.0.113.32/27'],
    ['203.0.113.95', '203.0.113.64/27'],
    ['10.1.2.3', '10.1.2.0/24'],
    ['10.200.0.1', '10.0.0.0/8'],
    ['2001:db8:4::1', '2001:db8:4::/48'],
    ['2001:db8:7:ffff::1', '2001:db8:7::/48'],
    ['2001:db8:99::1', '2001:db8::/32'],
    ['::ffff:192.0.2.131', '192.0.2.128/27'],
  ]
  for (const [ip, network] of cases) {
    const want = entries.find((e) => e.network === network)
    const lib = mmdblookup(file, ip)
    const ours = db.lookup(bytesOf(ip))
    const record = lib.record as {
      continent: { code: string; names: { en: string } }
      country: { iso_code: string }
      location: { latitude: number; longitude: number }
      city?: { names: { en: string } }
    }
    t.same(
      [record.country.iso_code, record.continent.code, record.location.latitude, record.location.longitude, record.city?.names.en],
      [want?.countryCode, want?.continentCode, want?.latitude, want?.longitude, want?.city],
      `${ip}: mmdblookup finds ${network}`,
    )
    t.same(
      [ours?.countryCode, ours?.continentCode, ours?.latitude, ours?.longitude, ours?.city],
      [want?.countryCode, want?.continentCode, want?.latitude, want?.longitude, want?.city],
      `${ip}: maxmind finds ${network}`,
    )
    // libmaxminddb counts IPv4 prefixes in the IPv6 tree (+96); ours are relative to the queried family.
    const v4 = !ip.includes(':')
    t.equal(lib.prefixLen, (ours?.networkPrefixLen ?? -1) + (v4 ? 96 : 0), `${ip}: same network prefix length`)
  }
  t.same(mmdblookup(file, '203.0.113.200').record, undefined, 'an address in no network is not found by mmdblookup')
  t.equal(db.lookup(bytesOf('203.0.113.200')), undefined, 'nor by maxmind')

  const { metadata } = mmdblookup(file, '192.0.2.1')
  t.equal(metadata['Node count'], String(db.metadata.nodeCount))
  t.equal(metadata['Record size'], '24 bits')
  t.equal(metadata['IP version'], 'IPv6')
  t.equal(metadata['Binary format'], '2.0')
  t.match(metadata['Build epoch'], /^1767225600 /)
  t.equal(metadata['Type'], 'GeoIP2-City')
  t.equal(metadata['Languages'], 'en')
})

t.test('mmdblookup reads every record size and data type the writer produces', async (t) => {
  const { writeMmdb, mmdbTyped } = await import('../../src/geo/index.js')
  const dir = t.testdir({})
  const record = {
    s: 'x'.repeat(300),
    u16: mmdbTyped('uint16', 500),
    u32: 4_000_000_000,
    i32: -5,
    d: -0.25,
    f: mmdbTyped('float', 1.5),
    b: true,
    a: [1, 'two'],
    m: { k: 'v' },
  }
  for (const bits of [24, 28, 32] as const) {
    const file = join(dir, `r${bits}.mmdb`)
    writeFileSync(file, writeMmdb([{ network: '192.0.2.0/24', record }, { network: '2001:db8::/32', record: { n: 1 } }], { databaseType: 'Test', description: 'x', buildEpochSec: 1, minRecordSizeBits: bits }))
    const lib = mmdblookup(file, '192.0.2.9')
    t.equal(lib.metadata['Record size'], `${bits} bits`)
    t.same(lib.record, { ...record, u16: 500, f: 1.5 }, `${bits}-bit records`)
    t.same(mmdblookup(file, '2001:db8::1').record, { n: 1 })
  }
})
