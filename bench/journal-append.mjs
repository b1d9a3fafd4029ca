// Journal append benchmark: appends per second of 100-record batches (about
// 100 bytes of JSON per record, a measurement report's size), acknowledged
// only once fdatasync'ed, as the number of appenders waiting at once grows.
//
// Reference, in the same process and minute: one write + fdatasync of a
// 100-record frame at a time on the same disk (what every append would cost
// without group commit), run before and after the rows (fsync latency
// drifts on shared disks); ratios are against the mean of the two. Each row reports appends/s, its ratio to the
// reference, records/s, how many appends each fsync carried on average
// (frames counted by scanning the segment afterwards), and append latency
// p50/p99 in ms.
//
//   npm run build && node bench/journal-append.mjs [--seconds 2] [--dir /var/tmp] [--concurrency 1,4,16,64,256]
import { mkdtempSync, rmSync } from 'node:fs'
import { open, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { URL } from 'node:url'

const dist = new URL('../dist/state/', import.meta.url)
const { openStateDir } = await import(new URL('index.js', dist).href)
const { encodeFrame, scanSegment } = await import(new URL('journal-format.js', dist).href)

const args = new Map()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1])
const SECONDS = Number(args.get('--seconds') ?? 2)
const BASE = args.get('--dir') ?? tmpdir()
const CONCURRENCY = (args.get('--concurrency') ?? '1,4,16,64,256').split(',').map(Number)
const BATCH = 100

const record = (i) => ({ client: `198.51.${(i >> 8) & 255}.0/24`, resolver: '192.0.2.53', target: `oca-${i % 20}`, rttMs: 10 + (i % 90) + 0.25, at: 1767225600000 + i, status: 'ok' })
const batch = (start) => Array.from({ length: BATCH }, (_, k) => record(start + k))

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** Sequential write + fdatasync of one pre-encoded 100-record frame: the disk's own rate. */
async function reference(dir) {
  const frame = encodeFrame(1, batch(0).map((r) => Buffer.from(JSON.stringify(r))))
  const handle = await open(join(dir, 'reference.bin'), 'a')
  let ops = 0
  const end = performance.now() + SECONDS * 1000
  while (performance.now() < end) {
    await handle.write(frame, 0, frame.length, null)
    await handle.datasync()
    ops++
  }
  await handle.close()
  return { opsPerSec: ops / SECONDS, frameBytes: frame.length }
}

async function run(dir, concurrency) {
  const stateDir = await openStateDir(join(dir, `c${concurrency}`))
  const journal = stateDir.journal('bench')
  await journal.replay()
  const latencies = []
  let appends = 0
  let next = 0
  const end = performance.now() + SECONDS * 1000
  const appender = async () => {
    while (performance.now() < end) {
      const records = batch(next)
      next += BATCH
      const t0 = performance.now()
      await journal.append(records)
      latencies.push(performance.now() - t0)
      appends++
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, appender))
  const elapsedSec = (performance.now() - t0) / 1000
  await stateDir.close()
  const segmentDir = stateDir.dir
  const segment = (await readdir(segmentDir)).find((f) => f.endsWith('.wal'))
  const frames = new Set()
  await scanSegment(join(segmentDir, segment), 1, (_seq, _bytes, offset) => frames.add(offset))
  latencies.sort((a, b) => a - b)
  return { appendsPerSec: appends / elapsedSec, appendsPerFsync: appends / frames.size, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

const dir = mkdtempSync(join(BASE, 'steerdns-bench-journal-'))
try {
  const before = await reference(dir)
  const rows = []
  for (const c of CONCURRENCY) rows.push([c, await run(dir, c)])
  const after = await reference(dir)
  const ref = { opsPerSec: (before.opsPerSec + after.opsPerSec) / 2 }
  console.log(`node ${process.version}, ${SECONDS} s per row, batches of ${BATCH} records (${before.frameBytes} bytes per frame), in ${BASE}`)
  console.log(`reference: write + fdatasync of one batch at a time: ${before.opsPerSec.toFixed(0)} batches/s before, ${after.opsPerSec.toFixed(0)} after`)
  console.log('appenders  appends/s  x reference  records/s  appends/fsync  p50 ms  p99 ms')
  for (const [c, r] of rows) {
    console.log(
      `${String(c).padStart(9)}  ${r.appendsPerSec.toFixed(0).padStart(9)}  ${(r.appendsPerSec / ref.opsPerSec).toFixed(2).padStart(11)}  ${(r.appendsPerSec * BATCH).toFixed(0).padStart(9)}  ${r.appendsPerFsync.toFixed(1).padStart(13)}  ${r.p50.toFixed(2).padStart(6)}  ${r.p99.toFixed(2).padStart(6)}`,
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
