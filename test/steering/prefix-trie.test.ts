// Prefix trie: table-driven longest-prefix and scope cases for both families,
// then a seeded cross-check against a linear scan.
import t from 'tap'
import { parseAddress } from '../../src/steering/client-key.js'
import { createTrieMatch, emptyPrefixTrie, PrefixTrieBuilder } from '../../src/steering/prefix-trie.js'
import type { PrefixTrie } from '../../src/steering/prefix-trie.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

/** "addr/len" → bytes and length (no IPv4-mapped conversion: the trie is per family). */
function prefix(text: string): { address: Uint8Array; len: number } {
  const [ip = '', len] = text.split('/')
  const address = parseAddress(ip)
  if (!address) throw new Error(`bad test prefix ${text}`)
  return { address, len: len === undefined ? address.length * 8 : Number(len) }
}

function build(bits: 32 | 128, prefixes: readonly string[]): PrefixTrie {
  const b = new PrefixTrieBuilder(bits)
  prefixes.forEach((text, value) => {
    const p = prefix(text)
    t.equal(b.insert(p.address, p.len, value), -1, `insert ${text}`)
  })
  return b.freeze()
}

/** [query, expected value (index into the prefix list, -1 none), matchedLen, deepestBelowLen] */
type Case = readonly [string, number, number, number]

function check(bits: 32 | 128, prefixes: readonly string[], cases: readonly Case[]): void {
  const trie = build(bits, prefixes)
  t.equal(trie.size, prefixes.length)
  const out = createTrieMatch()
  for (const [query, value, matchedLen, below] of cases) {
    const q = prefix(query)
    trie.lookup(q.address, q.len, out)
    t.same({ ...out }, { value, matchedLen, deepestBelowLen: below }, `${query} in [${prefixes.join(' ')}]`)
  }
}

t.test('IPv4: nested prefixes, default entry, hosts, siblings', async () => {
  const prefixes = [
    '0.0.0.0/0', // 0
    '10.0.0.0/8', // 1
    '10.1.0.0/16', // 2
    '10.1.2.0/24', // 3
    '10.1.2.3/32', // 4
    '10.1.3.0/24', // 5: sibling of 3
    '192.0.2.0/25', // 6
    '192.0.2.128/25', // 7: sibling of 6, no entry at /24
  ]
  check(32, prefixes, [
    ['10.1.2.3', 4, 32, -1],
    ['10.1.2.4', 3, 24, -1],
    ['10.1.3.9', 5, 24, -1],
    ['10.1.4.0', 2, 16, -1],
    ['10.2.0.0', 1, 8, -1],
    ['11.0.0.0', 0, 0, -1],
    ['192.0.2.1', 6, 25, -1],
    ['192.0.2.200', 7, 25, -1],
    // Short source prefixes: an entry exactly at the length covers it; longer ones are "below".
    ['10.1.2.0/24', 3, 24, 32],
    ['10.1.0.0/16', 2, 16, 32],
    ['10.1.2.0/23', 2, 16, 32],
    ['10.1.0.0/20', 2, 16, 32],
    ['10.1.3.0/24', 5, 24, -1],
    ['10.0.0.0/8', 1, 8, 32],
    ['192.0.2.0/24', 0, 0, 25],
    ['192.0.0.0/16', 0, 0, 25],
    ['0.0.0.0/0', 0, 0, 32],
    ['10.1.2.3/31', 3, 24, 32],
    ['10.1.2.2/31', 3, 24, 32],
    ['10.1.2.4/31', 3, 24, -1],
    ['172.16.0.0/12', 0, 0, -1],
  ])
})

t.test('IPv4 without a default entry, and bits past the query length are ignored', async () => {
  const trie = build(32, ['198.51.100.0/24', '198.51.100.128/26'])
  const out = createTrieMatch()
  trie.lookup(Uint8Array.of(203, 0, 113, 1), 32, out)
  t.same({ ...out }, { value: -1, matchedLen: -1, deepestBelowLen: -1 })
  // Unmasked query bytes: only the first 24 bits count.
  trie.lookup(Uint8Array.of(198, 51, 100, 77), 24, out)
  t.same({ ...out }, { value: 0, matchedLen: 24, deepestBelowLen: 26 })
  trie.lookup(Uint8Array.of(198, 51, 0, 0), 8, out)
  t.same({ ...out }, { value: -1, matchedLen: -1, deepestBelowLen: 26 })
  trie.lookup(Uint8Array.of(198, 51, 100, 150), 99, out) // clamped to 32
  t.same({ ...out }, { value: 1, matchedLen: 26, deepestBelowLen: -1 })
})

t.test('IPv6: nested, /0, /128, siblings, word boundaries', async () => {
  const prefixes = [
    '::/0', // 0
    '2001:db8::/32', // 1
    '2001:db8:1::/48', // 2
    '2001:db8:1:2::/64', // 3
    '2001:db8:1:2::1/128', // 4
    '2001:db8:1:3::/64', // 5
    '2001:db8:0:0:8000::/65', // 6: bit 64 set, crosses a 32-bit word
    '2001:db8:0:0:0:0:0:1/128', // 7
    '2001:db8:0:0:0:0:1:0/127', // 8: differs only in the last word
  ]
  check(128, prefixes, [
    ['2001:db8:1:2::1', 4, 128, -1],
    ['2001:db8:1:2::2', 3, 64, -1],
    ['2001:db8:1:3:ffff::', 5, 64, -1],
    ['2001:db8:1:4::', 2, 48, -1],
    ['2001:db8:2::', 1, 32, -1],
    ['2001:db9::', 0, 0, -1],
    ['2001:db8::8000:0:0:0', 6, 65, -1],
    ['2001:db8::1', 7, 128, -1],
    ['2001:db8::2', 1, 32, -1],
    ['2001:db8::1:1', 8, 127, -1],
    ['2001:db8::/64', 1, 32, 128],
    ['2001:db8::/96', 1, 32, 128],
    ['2001:db8::/112', 1, 32, 128], // ::1/128 is inside, ::1:0/127 is not
    ['2001:db8::1:0/112', 1, 32, 127],
    ['2001:db8::/127', 1, 32, 128],
    ['2001:db8:1::/48', 2, 48, 128],
    ['2001:db8:1:3::/64', 5, 64, -1],
    ['2001:db8:1::/56', 2, 48, 128],
    ['2001:db8:1:3::/63', 2, 48, 128], // covers :2::/64, its /128 and :3::/64
    ['2001:db8:1:4::/62', 2, 48, -1],
    ['::/0', 0, 0, 128],
  ])
})

t.test('path compression: splits above, below and beside existing nodes', async () => {
  // Insertion order matters for the builder's shape, not for the answers.
  const orders: string[][] = [
    ['10.0.0.0/24', '10.0.0.0/8', '10.0.0.128/25', '10.128.0.0/9'],
    ['10.128.0.0/9', '10.0.0.128/25', '10.0.0.0/8', '10.0.0.0/24'],
    ['10.0.0.0/8', '10.128.0.0/9', '10.0.0.0/24', '10.0.0.128/25'],
  ]
  for (const order of orders) {
    const b = new PrefixTrieBuilder(32)
    for (const text of order) {
      const p = prefix(text)
      b.insert(p.address, p.len, ['10.0.0.0/8', '10.0.0.0/24', '10.0.0.128/25', '10.128.0.0/9'].indexOf(text))
    }
    const trie = b.freeze()
    const out = createTrieMatch()
    const ask = (q: string) => {
      const p = prefix(q)
      trie.lookup(p.address, p.len, out)
      return [out.value, out.matchedLen, out.deepestBelowLen]
    }
    t.same(ask('10.0.0.200'), [2, 25, -1], order.join(' '))
    t.same(ask('10.0.0.1'), [1, 24, -1])
    t.same(ask('10.0.1.1'), [0, 8, -1])
    t.same(ask('10.200.0.0'), [3, 9, -1])
    t.same(ask('10.0.0.0/8'), [0, 8, 25])
    t.same(ask('10.0.0.0/16'), [0, 8, 25])
    t.same(ask('10.128.0.0/9'), [3, 9, -1])
    t.same(ask('0.0.0.0/0'), [-1, -1, 25])
    // Whatever the order, a branch node made early (10.0/25 beside 10.128/9 meet at bit 8)
    // later takes the /8 entry, so no node is left over.
    t.equal(trie.nodeCount, 4)
  }
})

t.test('a single branch node that is not an entry', async () => {
  check(32, ['10.0.0.0/9', '10.128.0.0/9'], [
    ['10.0.0.0/8', -1, -1, 9],
    ['10.0.0.0/9', 0, 9, -1],
    ['10.64.0.0/10', 0, 9, -1],
    ['11.0.0.0/8', -1, -1, -1],
    ['0.0.0.0/0', -1, -1, 9],
  ])
  check(32, ['255.255.255.255/32', '0.0.0.0/32'], [
    ['255.255.255.255', 0, 32, -1],
    ['0.0.0.0', 1, 32, -1],
    ['0.0.0.1', -1, -1, -1],
    ['0.0.0.0/0', -1, -1, 32],
    ['128.0.0.0/1', -1, -1, 32],
  ])
})

t.test('duplicates return the stored value; bad input throws a coded error', async (t) => {
  const b = new PrefixTrieBuilder(32)
  t.equal(b.insert(Uint8Array.of(10, 0, 0, 0), 8, 5), -1)
  t.equal(b.insert(Uint8Array.of(10, 9, 9, 9), 8, 6), 5, 'same /8 once masked')
  t.equal(b.insert(Uint8Array.of(10, 0, 0, 0), 9, 7), -1)
  t.equal(b.size, 2)
  for (const [address, len, value] of [
    [Uint8Array.of(1, 2, 3), 8, 0],
    [Uint8Array.of(1, 2, 3, 4), 33, 0],
    [Uint8Array.of(1, 2, 3, 4), -1, 0],
    [Uint8Array.of(1, 2, 3, 4), 8, -1],
    [Uint8Array.of(1, 2, 3, 4), 8, 1.5],
  ] as const) {
    t.throws(() => b.insert(address, len, value), { code: 'STEER_ERR_MAP_BUILD_INPUT' })
  }
  const trie = b.freeze()
  t.equal(trie.size, 2)
  t.throws(() => b.insert(Uint8Array.of(1, 2, 3, 4), 8, 0), { code: 'STEER_ERR_MAP_BUILD_INPUT' })
  t.throws(() => b.freeze(), { code: 'STEER_ERR_MAP_BUILD_INPUT' })
})

t.test('an empty trie finds nothing', async (t) => {
  for (const bits of [32, 128] as const) {
    const trie = emptyPrefixTrie(bits)
    const out = createTrieMatch()
    trie.lookup(new Uint8Array(bits / 8), 0, out)
    t.same({ ...out }, { value: -1, matchedLen: -1, deepestBelowLen: -1 })
    t.equal(trie.size, 0)
  }
})

/** The shared mulberry32 generator (test/helpers/seeded-random.ts): failures reproduce from the seed. */
const prng = (seed: number): (() => number) => createSeededRandom(seed).next

function bitAt(a: Uint8Array, i: number): number {
  return ((a[i >> 3] as number) >> (7 - (i & 7))) & 1
}

function samePrefix(a: Uint8Array, b: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (bitAt(a, i) !== bitAt(b, i)) return false
  return true
}

t.test('randomized cross-check against a linear scan (both families)', async (t) => {
  for (const bits of [32, 128] as const) {
    // 9000 tries: above the size where lookups start from a jump table.
    for (const [seed, count] of [[1, 3000], [2, 3000], [3, 9000]] as const) {
      const rand = prng(seed * 7919 + bits)
      const bytes = bits / 8
      // A few base addresses with random perturbations, so prefixes nest and share long runs.
      const bases = Array.from({ length: count / 250 }, () => Uint8Array.from({ length: bytes }, () => Math.floor(rand() * 256)))
      const randomAddress = (): Uint8Array => {
        const a = Uint8Array.from(bases[Math.floor(rand() * bases.length)] as Uint8Array)
        const flips = Math.floor(rand() * 4)
        for (let i = 0; i < flips; i++) {
          const bit = Math.floor(rand() * bits)
          a[bit >> 3] = (a[bit >> 3] as number) ^ (0x80 >> (bit & 7))
        }
        return a
      }
      // Lengths skewed towards the interesting ones, /0 and full length included.
      const randomLen = (): number => {
        const r = rand()
        if (r < 0.03) return 0
        if (r < 0.1) return bits
        return Math.floor(rand() * (bits + 1))
      }
      const entries: { address: Uint8Array; len: number }[] = []
      const builder = new PrefixTrieBuilder(bits)
      const seen = new Map<string, number>()
      let wrongInserts = 0
      for (let i = 0; i < count; i++) {
        const address = randomAddress()
        const len = randomLen()
        const keyText = `${Array.from(address, (b, j) => (j * 8 < len ? b & (0xff << Math.max(0, 8 - (len - j * 8))) : 0)).join('.')}/${len}`
        const got = builder.insert(address, len, entries.length)
        const before = seen.get(keyText)
        if (got !== (before ?? -1)) wrongInserts++
        if (before !== undefined) continue
        seen.set(keyText, entries.length)
        entries.push({ address, len })
      }
      t.equal(wrongInserts, 0, 'new prefixes return -1, duplicates the first value')
      const trie = builder.freeze()
      t.equal(trie.size, entries.length)
      if (count > 4096) t.ok(trie.size >= 4096, `${trie.size} prefixes: lookups use the jump table`)
      const out = createTrieMatch()
      let mismatches = 0
      for (let i = 0; i < 3000; i++) {
        const address = randomAddress()
        const len = randomLen()
        let value = -1
        let matchedLen = -1
        let below = -1
        entries.forEach((e, index) => {
          if (e.len <= len) {
            if (e.len > matchedLen && samePrefix(e.address, address, e.len)) {
              value = index
              matchedLen = e.len
            }
          } else if (e.len > below && samePrefix(e.address, address, len)) below = e.len
        })
        trie.lookup(address, len, out)
        if (out.value !== value || out.matchedLen !== matchedLen || out.deepestBelowLen !== below) {
          if (mismatches++ < 5) t.fail(`bits ${bits} seed ${seed}: ${address.join(',')}/${len}`, { found: { ...out }, wanted: { value, matchedLen, below } })
        }
      }
      t.equal(mismatches, 0, `bits ${bits} seed ${seed}: ${entries.length} prefixes, 3000 queries agree`)
    }
  }
})
