// Map build benchmark: loads 1M-prefix latency maps (IPv4 /24 and IPv6 /48,
// 3-5 candidates each over 20 targets) from JSON files and reports file
// size, load time (read + parse + build), RSS added (peak and retained after
// GC), and lookup cost against a 1k-prefix map in the same process (the
// reference run: lookup cost must not grow with the map's size).
//
// Runs against the compiled code, so build first:
//   npm run build && node bench/map-build.js [--entries 1000000] [--via-json-parse]
// Each measured load runs in its own child process (node --expose-gc) so peak
// RSS is that load's alone. --via-json-parse also loads the IPv4 map through
// JSON.parse of the whole text (the fallback path), for comparison.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, URL } from 'node:url'

const dist = new URL('../dist/steering/', import.meta.url)
const TARGETS = Array.from({ length: 20 }, (_, i) => `oca-${String(i).padStart(2, '0')}`)
const resolveTarget = (id) => {
  const i = TARGETS.indexOf(id)
  return i < 0 ? undefined : i
}

/** mulberry32: seeded, so every run measures the same maps. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** JSON text of a map with `count` distinct random prefixes of one family. */
function mapText(family, count, seed) {
  const rand = prng(seed)
  const lines = []
  const seen = family === 4 ? new Uint8Array(1 << 21) : new Set()
  while (lines.length < count) {
    let prefix
    if (family === 4) {
      const n = Math.floor(rand() * (1 << 24))
      if (seen[n >> 3] & (1 << (n & 7))) continue
      seen[n >> 3] |= 1 << (n & 7)
      prefix = `${n >>> 16}.${(n >>> 8) & 0xff}.${n & 0xff}.0/24`
    } else {
      // 2000::/3, then 32 random bits: a /48 per entry.
      const g0 = 0x2000 | Math.floor(rand() * 0x2000)
      const g1 = Math.floor(rand() * 0x10000)
      const g2 = Math.floor(rand() * 0x10000)
      const key = g0 * 2 ** 32 + g1 * 2 ** 16 + g2
      if (seen.has(key)) continue
      seen.add(key)
      prefix = `${g0.toString(16)}:${g1.toString(16)}:${g2.toString(16)}::/48`
    }
    const k = 3 + Math.floor(rand() * 3)
    const pool = TARGETS.slice()
    const targets = []
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(rand() * (pool.length - i))
      ;[pool[i], pool[j]] = [pool[j], pool[i]]
      targets.push(`{"id":"${pool[i]}","score":${(1 + rand() * 200).toFixed(1)},"samples":${1 + Math.floor(rand() * 500)}}`)
    }
    lines.push(`{"prefix":"${prefix}","targets":[${targets.join(',')}]}`)
  }
  return `{"version":1,"generatedAt":"2026-01-01T00:00:00Z","entries":[\n${lines.join(',\n')}\n]}\n`
}

/** Lookup keys: half resolver addresses inside entries, a quarter ECS source prefixes inside entries, a quarter random addresses. */
async function lookupKeys(map, family, count, seed) {
  const { parseClientKey } = await import(new URL('client-key.js', dist))
  const rand = prng(seed)
  const keys = new Array(count)
  const bytes = family === 4 ? 4 : 16
  const ecsLen = family === 4 ? 24 : 56
  for (let i = 0; i < count; i++) {
    const r = rand()
    const address = new Uint8Array(bytes)
    if (r < 0.75) {
      const base = parseClientKey(map.entryPrefix(Math.floor(rand() * map.size)), 'resolver')
      address.set(base.address)
      for (let b = base.prefixLen >> 3; b < bytes; b++) address[b] = Math.floor(rand() * 256)
    } else {
      for (let b = 0; b < bytes; b++) address[b] = Math.floor(rand() * 256)
      if (family === 6) address[0] = 0x20 | (address[0] & 0x1f)
    }
    if (r >= 0.5 && r < 0.75) keys[i] = parseClientKey(`${formatIp(address)}/${ecsLen}`, 'ecs')
    else keys[i] = { family, address, prefixLen: bytes * 8, source: 'resolver' }
  }
  return keys
}

function formatIp(a) {
  if (a.length === 4) return a.join('.')
  const groups = []
  for (let i = 0; i < 16; i += 2) groups.push(((a[i] << 8) | a[i + 1]).toString(16))
  return groups.join(':')
}

/** ns per lookup over all keys (one pass), with a checksum so the work is not optimised away. */
function timeLookups(map, keys, out) {
  let sum = 0
  const t0 = performance.now()
  for (let i = 0; i < keys.length; i++) {
    map.lookup(keys[i], out)
    sum += out.entry + out.deepestBelowLen
  }
  const ns = ((performance.now() - t0) * 1e6) / keys.length
  return { ns, sum }
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mb = (bytes) => bytes / 2 ** 20

/** Child: load one big map (measured) and a 1k map, then time lookups on both, interleaved. */
async function child(bigFile, smallFile, family, viaJsonParse) {
  const { loadMapFile, parseMapJson } = await import(new URL('map-json.js', dist))
  const { createMapMatch } = await import(new URL('latency-map.js', dist))
  const { readFile } = await import('node:fs/promises')
  globalThis.gc()
  const rssBefore = process.memoryUsage().rss
  const t0 = performance.now()
  const big = viaJsonParse ? parseMapJson(JSON.parse(await readFile(bigFile, 'utf8')), resolveTarget) : await loadMapFile(bigFile, resolveTarget)
  const loadSec = (performance.now() - t0) / 1000
  const peakRss = process.resourceUsage().maxRSS * 1024
  globalThis.gc()
  const rssRetained = process.memoryUsage().rss
  const t1 = performance.now()
  const small = await loadMapFile(smallFile, resolveTarget)
  const smallLoadMs = performance.now() - t1

  const count = 1_000_000
  const bigKeys = await lookupKeys(big, family, count, 11)
  const smallKeys = await lookupKeys(small, family, count, 12)
  const out = createMapMatch()
  const bigNs = []
  const smallNs = []
  const crossNs = []
  for (let round = 0; round < 7; round++) {
    bigNs.push(timeLookups(big, bigKeys, out).ns)
    smallNs.push(timeLookups(small, smallKeys, out).ns)
    // The big map's keys against the small map: mostly early misses, the cheapest case.
    crossNs.push(timeLookups(small, bigKeys, out).ns)
  }
  process.stdout.write(
    JSON.stringify({
      entries: big.size,
      loadSec,
      peakAddedMb: mb(peakRss - rssBefore),
      retainedAddedMb: mb(rssRetained - rssBefore),
      mapMb: mb(big.byteLength),
      smallEntries: small.size,
      smallLoadMs,
      bigNs: median(bigNs),
      smallNs: median(smallNs),
      crossNs: median(crossNs),
    }) + '\n',
  )
}

async function main() {
  const args = process.argv.slice(2)
  if (args[0] === '--child') return child(args[1], args[2], Number(args[3]), args[4] === 'json-parse')
  const entriesAt = args.indexOf('--entries')
  const entries = entriesAt >= 0 ? Number(args[entriesAt + 1]) : 1_000_000
  const viaJsonParse = args.includes('--via-json-parse')
  const dir = mkdtempSync(join(tmpdir(), 'steerdns-map-bench-'))
  const self = fileURLToPath(import.meta.url)
  const rows = []
  try {
    const runs = [
      [4, 'IPv4 /24', 'scanner'],
      [6, 'IPv6 /48', 'scanner'],
      ...(viaJsonParse ? [[4, 'IPv4 /24', 'json-parse']] : []),
    ]
    const files = new Map()
    for (const [family] of runs) {
      if (files.has(family)) continue
      const big = join(dir, `v${family}-big.json`)
      const small = join(dir, `v${family}-1k.json`)
      writeFileSync(big, mapText(family, entries, family * 1000 + 1))
      writeFileSync(small, mapText(family, 1000, family * 1000 + 2))
      files.set(family, { big, small })
    }
    for (const [family, label, path] of runs) {
      const { big, small } = files.get(family)
      const run = spawnSync(process.execPath, ['--expose-gc', self, '--child', big, small, String(family), path], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      if (run.status !== 0) throw new Error(`child for ${label} failed (${run.status})`)
      rows.push({ label, path, fileMb: mb(statSync(big).size), ...JSON.parse(run.stdout) })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const table = rows.map((r) => ({
    map: `${r.label} (${r.path})`,
    entries: r.entries,
    'file MB': r.fileMb.toFixed(0),
    'load s': r.loadSec.toFixed(2),
    'peak RSS +MB': r.peakAddedMb.toFixed(0),
    'retained RSS +MB': r.retainedAddedMb.toFixed(0),
    'arrays MB': r.mapMb.toFixed(0),
    'lookup ns': r.bigNs.toFixed(0),
    [`1k map ns`]: r.smallNs.toFixed(0),
    'ratio': (r.bigNs / r.smallNs).toFixed(2),
    '1k load ms': r.smallLoadMs.toFixed(1),
  }))
  console.table(table)
  console.log('lookup ns: median of 7 passes over 1M keys (50% resolver addresses inside entries, 25% ECS source prefixes inside entries, 25% random)')
  for (const r of rows) console.log(`${r.label} (${r.path}): the big map's keys on the 1k map: ${r.crossNs.toFixed(0)} ns`)
}

await main()
