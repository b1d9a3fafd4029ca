// The writer, read back through the `maxmind` package: lookups for IPv4 and
// IPv6, nesting (most specific wins), prefix lengths, the IPv4 aliases, every
// data type and size encoding, record sizes, de-duplication, and a seeded
// property test against a brute-force longest-prefix match.
import t from 'tap'
import { Reader } from 'maxmind'
import type { Response } from 'maxmind'
import { GEO_ERROR, mmdbTyped, writeMmdb } from '../../src/geo/index.js'
import type { MmdbMap, MmdbMetadata, MmdbNetwork } from '../../src/geo/index.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

const meta: MmdbMetadata = { databaseType: 'GeoIP2-City', description: 'writer test', buildEpochSec: 1_767_225_600 }
const read = (networks: MmdbNetwork[], m: Partial<MmdbMetadata> = {}) => new Reader<Response>(writeMmdb(networks, { ...meta, ...m }))
const get = (reader: Reader<Response>, ip: string) => {
  const [record, prefixLen] = reader.getWithPrefixLength(ip)
  return { record: record as unknown, prefixLen }
}

t.test('IPv4 and IPv6 networks, nested: the most specific network answers, with its prefix length', async (t) => {
  const reader = read([
    { network: '10.1.2.0/24', record: { n: 'ten-one-two' } },
    { network: '10.0.0.0/8', record: { n: 'ten' } },
    { network: '10.1.0.0/16', record: { n: 'ten-one' } },
    { network: '2001:db8::/32', record: { n: 'doc' } },
    { network: '2001:db8:5::/48', record: { n: 'doc-5' } },
    { network: '0.0.0.0/1', record: { n: 'low-half' } },
  ])
  const cases: [string, string | undefined, number][] = [
    ['10.1.2.3', 'ten-one-two', 24],
    ['10.1.3.1', 'ten-one', 24], // 10.1.3.0/24 is the piece of 10.1.0.0/16 beside 10.1.2.0/24
    ['10.1.128.1', 'ten-one', 17],
    ['10.128.0.1', 'ten', 9],
    ['10.2.0.1', 'ten', 15],
    ['11.0.0.1', 'low-half', 8], // 0.0.0.0/1 minus 10.0.0.0/8: the sibling 11.0.0.0/8
    ['128.0.0.1', undefined, 1],
    ['2001:db8:5::1', 'doc-5', 48],
    ['2001:db8:4:ffff::1', 'doc', 48], // the sibling of 2001:db8:5::/48
    ['2001:db9::1', undefined, 32],
  ]
  for (const [ip, want, prefixLen] of cases) {
    const got = get(reader, ip)
    t.same(got.record, want === undefined ? null : { n: want }, ip)
    t.equal(got.prefixLen, prefixLen, `${ip} prefix length`)
  }
  t.equal(reader.metadata.ipVersion, 6)
  t.equal(reader.metadata.databaseType, 'GeoIP2-City')
  t.equal(reader.metadata.buildEpoch.getTime(), 1_767_225_600_000)
  t.same(reader.metadata.languages, ['en'])
  t.same(reader.metadata.description, { en: 'writer test' })
})

t.test('IPv4 lives at ::/96; ::ffff:0:0/96 and 2002::/16 are aliases of it, as in MaxMind databases', async (t) => {
  const reader = read([{ network: '198.51.100.0/24', record: { n: 'v4' } }])
  t.same(get(reader, '198.51.100.7'), { record: { n: 'v4' }, prefixLen: 24 })
  t.same(get(reader, '::198.51.100.7'), { record: { n: 'v4' }, prefixLen: 120 })
  t.same(get(reader, '::ffff:198.51.100.7'), { record: { n: 'v4' }, prefixLen: 120 })
  t.same(get(reader, '2002:c633:6407::1'), { record: { n: 'v4' }, prefixLen: 40 })
  t.equal(get(reader, '198.51.101.1').record, null)
  t.equal(get(reader, '2002:c633:6507::1').record, null)
})

t.test('a wide IPv6 network covering an alias range: the alias still leads to the IPv4 records', async (t) => {
  const reader = read([
    { network: '::/0', record: { n: 'everything' } },
    { network: '192.0.2.0/24', record: { n: 'doc' } },
  ])
  t.same(get(reader, '2002:c000:0201::').record, { n: 'doc' })
  t.same(get(reader, '::ffff:192.0.2.1').record, { n: 'doc' })
  t.same(get(reader, '2001:db8::1').record, { n: 'everything' })
  // The rest of the IPv4 space is covered by ::/0 through ::/96; 203 and 192 share their first 4 bits.
  t.same(get(reader, '203.0.113.1'), { record: { n: 'everything' }, prefixLen: 5 })
})

t.test('networks that cannot be written are refused with STEER_ERR_GEO_BAD_NETWORK', async (t) => {
  const bad = [
    ['198.51.100.1/24'], // host bits
    ['198.51.100.0'], // no length
    ['198.51.100.0/33'],
    ['198.51.100.0/-1'],
    ['2001:db8::/129'],
    ['not-an-address/8'],
    ['fe80::1%eth0/64'],
    ['::ffff:192.0.2.0/120'], // inside the IPv4-mapped alias
    ['2002:c000:200::/40'], // inside the 6to4 alias
    ['192.0.2.0/24', '192.0.2.0/24'], // repeated
    ['2001:db8::/32', '2001:DB8:0::/32'], // repeated, spelled differently
  ]
  for (const networks of bad) {
    t.throws(() => writeMmdb(networks.map((network) => ({ network, record: {} })), meta), { code: GEO_ERROR.BAD_NETWORK }, networks.join(' '))
  }
})

t.test('every data type round-trips; sizes past the 29/285/65821 escapes encode correctly', async (t) => {
  const longKeys: Record<string, number> = {}
  for (let i = 0; i < 40; i++) longKeys[`k${String(i).padStart(2, '0')}`] = i
  const record = {
    text: 'São Paulo ✓',
    empty: '',
    s29: 'x'.repeat(29),
    s300: 'y'.repeat(300),
    s70000: 'z'.repeat(70_000),
    zero: 0,
    small: 7,
    uint32: 4_000_000_000,
    negative: -5,
    minInt32: -(2 ** 31),
    fraction: 0.1,
    large: 2 ** 40,
    big64: 2n ** 63n + 1n,
    big128: 2n ** 100n,
    yes: true,
    no: false,
    bytes: Uint8Array.from([0, 1, 254, 255]),
    list: [1, 'two', [3], { four: 4 }],
    many: longKeys,
    pinned: { d: mmdbTyped('double', 47), f: mmdbTyped('float', 1.5), u16: mmdbTyped('uint16', 65535), u64: mmdbTyped('uint64', 5) },
  }
  const got = get(read([{ network: '192.0.2.0/24', record }]), '192.0.2.1').record as Record<string, unknown>
  t.same(got, {
    ...record,
    bytes: Buffer.from([0, 1, 254, 255]),
    pinned: { d: 47, f: 1.5, u16: 65535, u64: 5n },
  })
  t.equal(typeof got['big64'], 'bigint')
})

t.test('values a MaxMind DB cannot hold are refused with STEER_ERR_GEO_BAD_RECORD', async (t) => {
  const bad: unknown[] = [undefined, null, () => 1, Symbol('x'), new Date(0), -1n, 2n ** 128n]
  for (const value of bad) {
    t.throws(() => writeMmdb([{ network: '192.0.2.0/24', record: { value } as unknown as MmdbMap }], meta), { code: GEO_ERROR.BAD_RECORD }, String(value))
  }
  t.throws(() => writeMmdb([{ network: '192.0.2.0/24', record: { v: mmdbTyped('uint16', 65536) } }], meta), { code: GEO_ERROR.BAD_RECORD })
  t.throws(() => writeMmdb([{ network: '192.0.2.0/24', record: { v: mmdbTyped('int32', 2 ** 31) } }], meta), { code: GEO_ERROR.BAD_RECORD })
  t.throws(() => writeMmdb([{ network: '192.0.2.0/24', record: { v: mmdbTyped('uint32', 1.5) } }], meta), { code: GEO_ERROR.BAD_RECORD })
})

t.test('identical records are stored once, whatever order their keys were written in', async (t) => {
  const one = writeMmdb([{ network: '192.0.2.0/24', record: { a: 1, b: 'x' } }], meta)
  const three = writeMmdb(
    [
      { network: '192.0.2.0/24', record: { a: 1, b: 'x' } },
      { network: '198.51.100.0/24', record: { b: 'x', a: 1 } },
      { network: '2001:db8::/32', record: { a: 1, b: 'x' } },
    ],
    meta,
  )
  const dataBytes = (db: Buffer) => {
    const r = new Reader<Response>(db)
    return db.lastIndexOf(Buffer.from('abcdef4d61784d696e642e636f6d', 'hex')) - r.metadata.searchTreeSize - 16
  }
  t.equal(dataBytes(three), dataBytes(one))
  t.same(new Reader<Response>(three).get('2001:db8::1'), { a: 1, b: 'x' })
})

t.test('24-, 28- and 32-bit records all read back the same', async (t) => {
  const networks: MmdbNetwork[] = [
    { network: '10.0.0.0/8', record: { n: 1 } },
    { network: '10.9.0.0/16', record: { n: 2 } },
    { network: '2001:db8:7::/48', record: { n: 3 } },
  ]
  for (const bits of [24, 28, 32] as const) {
    const reader = read(networks, { minRecordSizeBits: bits })
    t.equal(reader.metadata.recordSize, bits)
    t.same(get(reader, '10.9.1.1'), { record: { n: 2 }, prefixLen: 16 }, `${bits}`)
    t.same(get(reader, '10.200.1.1'), { record: { n: 1 }, prefixLen: 9 }, `${bits}`)
    t.same(get(reader, '2001:db8:7::9'), { record: { n: 3 }, prefixLen: 48 }, `${bits}`)
  }
})

t.test('a data section past 16 MiB takes 28-bit records, high nibbles included', async (t) => {
  // 2^24 + a little: the records after this one have pointers that need the fourth nibble.
  const filler = new Uint8Array(16_800_000)
  const reader = read([
    { network: '192.0.2.0/24', record: { filler } },
    { network: '10.0.0.0/9', record: { n: 'left' } },
    { network: '10.128.0.0/9', record: { n: 'right' } },
  ])
  t.equal(reader.metadata.recordSize, 28)
  t.same(get(reader, '10.1.1.1'), { record: { n: 'left' }, prefixLen: 9 })
  t.same(get(reader, '10.129.1.1'), { record: { n: 'right' }, prefixLen: 9 })
  t.equal((get(reader, '192.0.2.1').record as { filler: Buffer }).filler.length, 16_800_000)
})

t.test('an empty list and a /0 give valid databases', async (t) => {
  t.equal(read([]).get('192.0.2.1'), null)
  t.same(read([{ network: '0.0.0.0/0', record: { n: 'all v4' } }]).getWithPrefixLength('192.0.2.1'), [{ n: 'all v4' }, 0])
  // 15: the 6to4 alias 2002::/16 splits ::/0, and 2001: and 2002: share 14 bits.
  t.same(read([{ network: '::/0', record: { n: 'all' } }]).getWithPrefixLength('2001:db8::1'), [{ n: 'all' }, 15])
})

t.test('the same input gives the same bytes', async (t) => {
  const networks: MmdbNetwork[] = [
    { network: '2001:db8::/32', record: { b: 2, a: 1 } },
    { network: '192.0.2.0/24', record: { a: 1 } },
  ]
  t.ok(writeMmdb(networks, meta).equals(writeMmdb([...networks].reverse(), meta)))
})

t.test('property: random nested networks answer as a brute-force longest-prefix match', async (t) => {
  const seed = Number(process.env['GEO_WRITER_SEED'] ?? 20260101)
  const random = createSeededRandom(seed)
  t.comment(`seed ${seed} (GEO_WRITER_SEED replays it)`)
  for (let round = 0; round < 20; round++) {
    const family = random.chance(0.5) ? 4 : 6
    const bytes = family === 4 ? 4 : 16
    // A small address neighbourhood so that networks nest and overlap often.
    const base = random.bytes(bytes)
    const nets = new Map<string, { addr: Uint8Array; len: number }>()
    for (let i = 0; i < 40; i++) {
      const addr = Uint8Array.from(base)
      addr[bytes - 1] = random.int(256)
      addr[bytes - 2] = random.int(4)
      const len = random.between(bytes * 8 - 12, bytes * 8)
      const masked = mask(addr, len)
      nets.set(`${text(masked)}/${len}`, { addr: masked, len })
    }
    const list = [...nets.entries()].map(([network], i) => ({ network, record: { i } }))
    const reader = read(list)
    for (let probe = 0; probe < 200; probe++) {
      const addr = Uint8Array.from(base)
      addr[bytes - 1] = random.int(256)
      addr[bytes - 2] = random.int(5)
      let want: number | undefined
      let wantLen = -1
      ;[...nets.values()].forEach((n, i) => {
        if (n.len > wantLen && equalBytes(mask(addr, n.len), n.addr)) [want, wantLen] = [i, n.len]
      })
      const got = get(reader, text(addr))
      if (want === undefined ? got.record !== null : (got.record as { i: number } | null)?.i !== want) {
        t.fail(`seed ${seed} round ${round}: ${text(addr)} found ${JSON.stringify(got.record)}, expected network ${want}`)
        return
      }
      // The reported network contains the address and lies inside the matched network.
      if (want !== undefined && got.prefixLen < wantLen) t.fail(`${text(addr)}: prefix ${got.prefixLen} shorter than /${wantLen}`)
    }
  }
  t.pass('every probe matched')
})

function mask(addr: Uint8Array, len: number): Uint8Array {
  return addr.map((b, i) => (i * 8 >= len ? 0 : i * 8 + 8 <= len ? b : b & (0xff << (8 - (len - i * 8)))))
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

function text(addr: Uint8Array): string {
  if (addr.length === 4) return addr.join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push((((addr[i] as number) << 8) | (addr[i + 1] as number)).toString(16))
  return groups.join(':')
}
