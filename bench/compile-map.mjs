// Map compile benchmark: fills an aggregator with PREFIXES client /24s x
// TARGETS targets (minSamples samples each, plus a thousand resolvers), then
// times compile(): the first (no incumbents yet, code not yet optimised) and
// RUNS more over the same state (hysteresis in play), reporting the fastest
// and the median (the bench machine is shared: the fastest is the cost, the
// median shows the noise). A reference aggregator of 1000 prefixes is
// compiled the same way in the same process; the report gives the cost per
// key of both, so a compile that stops scaling linearly shows as a ratio
// well above 1. Last, compileAsync() with 10 ms slices: the longest slice
// is how long DNS queries on the same thread would wait.
//
// Prefixes come in regions of 8 adjacent /24s sharing a latency profile
// (targets 9 ms apart, jitter +-1 ms), so most regions merge into a /21; one
// prefix in four swaps its two best targets and stays apart.
//
// Runs against the compiled code, so build first:
//   npm run build && node bench/compile-map.mjs [--prefixes 100000] [--targets 20] [--runs 5]
import { performance } from 'node:perf_hooks'

const { createAggregator } = await import(new URL('../dist/measure/index.js', import.meta.url).href)

const args = new Map()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], Number(process.argv[i + 1]))
const PREFIXES = args.get('--prefixes') ?? 100_000
const TARGETS = args.get('--targets') ?? 20
const RUNS = args.get('--runs') ?? 5
const RESOLVERS = 1000
const MIN_SAMPLES = 5
const NOW = Date.parse('2026-01-02T03:00:00Z')

/** mulberry32: seeded, so every run measures the same state. */
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

function filled(prefixes) {
  const rand = prng(7)
  const aggregator = createAggregator({
    targetIds: Array.from({ length: TARGETS }, (_, i) => `oca-${String(i).padStart(2, '0')}`),
    halfLifeSec: 1800,
    minSamples: MIN_SAMPLES,
    maxAgeSec: 3600,
    hysteresisPct: 10,
    maxKeys: prefixes + RESOLVERS,
    maxEstimators: (prefixes + RESOLVERS) * TARGETS,
  })
  const order = Array.from({ length: TARGETS }, (_, i) => i)
  const base = new Float64Array(TARGETS)
  let reports = 0
  const started = performance.now()
  for (let p = 0; p < prefixes; p++) {
    if (p % 8 === 0) {
      // A new region: a random order of targets, 9 ms apart.
      for (let i = TARGETS - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1))
        ;[order[i], order[j]] = [order[j], order[i]]
      }
      const offset = 5 + rand() * 40
      for (let rank = 0; rank < TARGETS; rank++) base[order[rank]] = offset + 9 * rank
    }
    const swapped = rand() < 0.25
    // 16.0.0.0 upwards, one /24 after another.
    const at = 0x10000000 + p * 256
    const client = { family: 4, address: new Uint8Array([at >>> 24, (at >>> 16) & 0xff, (at >>> 8) & 0xff, 0]), prefixLen: 24 }
    const resolverAt = 0xc6336400 + (p % RESOLVERS)
    const resolver = p < RESOLVERS ? new Uint8Array([resolverAt >>> 24, (resolverAt >>> 16) & 0xff, (resolverAt >>> 8) & 0xff, resolverAt & 0xff]) : undefined
    const batch = []
    for (let s = 0; s < MIN_SAMPLES; s++) {
      for (let t = 0; t < TARGETS; t++) {
        let rtt = base[t]
        if (swapped && t === order[0]) rtt = base[order[1]] + 1
        else if (swapped && t === order[1]) rtt = base[order[0]]
        batch.push({ client, resolver, target: t, rttMs: rtt + (rand() * 2 - 1), atMs: NOW - rand() * 600_000, ok: true })
      }
    }
    aggregator.add(batch)
    reports += batch.length
  }
  return { aggregator, reports, ingestMs: performance.now() - started }
}

/** The first compile, then RUNS more one second apart: their durations sorted. */
function compileRuns(aggregator) {
  const first = aggregator.compile(NOW)
  const runs = []
  let last = first
  for (let i = 1; i <= RUNS; i++) {
    last = aggregator.compile(NOW + i * 1000)
    runs.push(last.stats.durationMs)
  }
  runs.sort((x, y) => x - y)
  return { first, last, fastestMs: runs[0], medianMs: runs[Math.floor(runs.length / 2)] }
}

const fmt = (n, digits = 1) => n.toFixed(digits)

const reference = filled(1000)
const ref = compileRuns(reference.aggregator)
globalThis.gc?.()
const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
const big = filled(PREFIXES)
const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
const run = compileRuns(big.aggregator)

// The same compile in slices (compileAsync, 10 ms slices): the longest time the thread is held.
let sliceStarted = performance.now()
let longestSliceMs = 0
let slices = 0
const sliced = await big.aggregator.compileAsync(NOW + (RUNS + 1) * 1000, {
  sliceMs: 10,
  pause: () =>
    new Promise((resolve) => {
      longestSliceMs = Math.max(longestSliceMs, performance.now() - sliceStarted)
      slices++
      setImmediate(() => {
        sliceStarted = performance.now()
        resolve()
      })
    }),
})
longestSliceMs = Math.max(longestSliceMs, performance.now() - sliceStarted)

const s = run.last.stats
console.log(`compile-map: ${PREFIXES} client /24s x ${TARGETS} targets (${MIN_SAMPLES} samples each), ${RESOLVERS} resolvers; node ${process.version}`)
console.log(`  ingest: ${big.reports} reports in ${fmt(big.ingestMs, 0)} ms (${fmt(big.reports / big.ingestMs / 1000, 2)}M reports/s), ${big.aggregator.estimatorCount} estimators, ~${fmt((heapAfter - heapBefore) / 2 ** 20, 0)} MiB`)
console.log(`  map: ${s.prefixes} prefixes -> ${s.entries} entries (${s.merged} merged away, ${s.resolvers} resolvers), ${run.last.map.candidateTotal} candidates`)
console.log(`  compile: first ${fmt(run.first.stats.durationMs, 0)} ms; then fastest ${fmt(run.fastestMs, 0)} ms, median ${fmt(run.medianMs, 0)} ms of ${RUNS}`)
const refUs = (ref.fastestMs * 1000) / (1000 + RESOLVERS)
const bigUs = (run.fastestMs * 1000) / (PREFIXES + RESOLVERS)
console.log(`  compileAsync (10 ms slices): ${fmt(sliced.stats.durationMs, 0)} ms of work in ${slices + 1} slices, longest ${fmt(longestSliceMs, 0)} ms`)
console.log(`  reference (1000 prefixes, same process): fastest ${fmt(ref.fastestMs, 1)} ms`)
console.log(`  per key: ${fmt(bigUs, 2)} us vs ${fmt(refUs, 2)} us in the reference (ratio ${fmt(bigUs / refUs, 2)})`)
