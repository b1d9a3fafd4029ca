// Across processes: a lock held by a live child refuses a second open and is
// taken over once the child is killed; and kill -9 in the middle of steady
// ingestion, checkpoints and document writes loses nothing acknowledged.
// Children run the TypeScript sources through this test's own loader
// (process.execArgv) with `node -e`, and report on stdout, which is a pipe
// and so written synchronously on POSIX (Node docs, "A note on process I/O"):
// a line printed before the kill is a line the parent reads.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { openStateDir } from '../../src/state/index.js'
import type { StateError } from '../../src/state/index.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

const STATE_URL = pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src', 'state', 'index.ts')).href
/** A child that has not done its part by then has hung: kill it and fail (not a timing assertion). */
const CHILD_LIMIT_MS = 60_000

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-processes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

interface Child {
  readonly pid: number
  /** Resolves with the first stdout line for which `match` is true. */
  waitForLine(match: (line: string) => boolean): Promise<string>
  /** Every complete stdout line so far. */
  lines(): string[]
  stderr(): string
  kill(): void
  /** Resolves once the process has exited and its pipes are drained. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** `node -e SCRIPT STATE_URL DIR` with this test's TypeScript loader; `onLine` sees each stdout line as it comes. */
function startChild(t: Test, script: string, dir: string, onLine: (line: string, child: Child) => void = () => undefined): Child {
  const proc = spawn(process.execPath, [...process.execArgv, '-e', script, STATE_URL, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let pending = ''
  let stderr = ''
  const lines: string[] = []
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = []
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })))
  const limit = setTimeout(() => proc.kill('SIGKILL'), CHILD_LIMIT_MS)
  void closed.then(() => clearTimeout(limit))
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  const child: Child = {
    pid: proc.pid as number,
    waitForLine: (match) =>
      new Promise((resolve, reject) => {
        const seen = lines.find(match)
        if (seen !== undefined) return resolve(seen)
        waiters.push({ match, resolve })
        void closed.then(() => reject(new Error(`child exited before the expected line; stderr:\n${stderr}`)))
      }),
    lines: () => [...lines],
    stderr: () => stderr,
    kill: () => proc.kill('SIGKILL'),
    closed,
  }
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      lines.push(line)
      onLine(line, child)
      for (const w of waiters.splice(0)) {
        if (w.match(line)) w.resolve(line)
        else waiters.push(w)
      }
    }
  })
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  return child
}

// Child of the lock test: open the directory, append one record, say so, then hold on until killed.
const HOLD_LOCK = `
const [stateUrl, dir] = process.argv.slice(1)
import(stateUrl).then(async ({ openStateDir }) => {
  const stateDir = await openStateDir(dir)
  const journal = stateDir.journal('m')
  await journal.replay()
  await journal.append(['from the child'])
  process.stdout.write('locked\\n')
  setInterval(() => {}, 1 << 30)
}).catch((err) => { process.stderr.write(String(err && err.stack)); process.exit(1) })
`

t.test('a live child holding the directory makes a second open fail naming the lock and its pid; killed, its lock is taken over', async (t) => {
  const dir = await tempDir(t)
  const child = startChild(t, HOLD_LOCK, dir)
  await child.waitForLine((l) => l === 'locked')
  let err: StateError | undefined
  try {
    await openStateDir(dir)
  } catch (e) {
    err = e as StateError
  }
  t.equal(err?.code, 'STEER_ERR_STATE_LOCKED')
  t.equal(err?.pid, child.pid)
  t.equal(err?.file, join(dir, 'steerdns.lock'))
  t.match(err?.message, String(child.pid))

  child.kill()
  t.equal((await child.closed).signal, 'SIGKILL')
  const stateDir = await openStateDir(dir)
  const replayed = await stateDir.journal('m').replay()
  t.same(
    replayed.records.map((r) => r.value),
    ['from the child'],
  )
  await stateDir.close()
})

// Child of the crash test: four appenders (batches of 1-5 records, value derived from the
// sequence number), a checkpoint every 20 acknowledgements (its value: a digest of every
// record so far), and a document rewritten in a loop. Prints every acknowledgement.
const INGEST = `
const [stateUrl, dir] = process.argv.slice(1)
const mix = (digest, seq) => (Math.imul(digest ^ seq, 16777619) + seq) >>> 0
const value = (seq) => ({ seq, body: 'x'.repeat(seq % 64) })
const out = (line) => process.stdout.write(line + '\\n')
const die = (err) => { process.stderr.write(String(err && err.stack)); process.exit(1) }
import(stateUrl).then(async ({ openStateDir }) => {
  const stateDir = await openStateDir(dir)
  const journal = stateDir.journal('m')
  const replayed = await journal.replay()
  let digest = replayed.snapshot ? replayed.snapshot.digest : 0
  for (const r of replayed.records) digest = mix(digest, r.seq)
  const doc = stateDir.document('overrides')
  let version = ((await doc.read()) || { version: 0 }).version
  out('ready ' + replayed.lastSeq + ' ' + replayed.discardedBytes)
  let acks = 0
  const appender = async (worker) => {
    for (;;) {
      const first = journal.lastSeq + 1
      const batch = []
      for (let seq = first; seq < first + 1 + ((first + worker) % 5); seq++) {
        batch.push(value(seq))
        digest = mix(digest, seq)
      }
      const last = await journal.append(batch)
      out('ack ' + first + ' ' + last)
      if (++acks % 20 === 0) journal.checkpoint({ digest }).then((seq) => out('checkpoint ' + seq), die)
    }
  }
  const writer = async () => {
    for (;;) {
      version += 1
      await doc.write({ version, body: 'y'.repeat(version % 500) })
      out('doc ' + version)
    }
  }
  for (let w = 0; w < 4; w++) appender(w).catch(die)
  writer().catch(die)
}).catch(die)
`

const mix = (digest: number, seq: number): number => (Math.imul(digest ^ seq, 16777619) + seq) >>> 0
const digestUpTo = (n: number): number => {
  let d = 0
  for (let seq = 1; seq <= n; seq++) d = mix(d, seq)
  return d
}

t.test('kill -9 during ingestion, checkpoints and document writes: every acknowledged change survives, rounds after rounds', async (t) => {
  const dir = await tempDir(t)
  const rand = createSeededRandom(0x9e3779b9)
  let maxAcked = 0
  let maxDoc = 0
  let checkpoints = 0
  let discarded = 0
  for (let round = 1; round <= 3; round++) {
    const killAfter = rand.between(150, 400)
    let acks = 0
    const child = startChild(t, INGEST, dir, (line, c) => {
      if (line.startsWith('ack ') && ++acks === killAfter) c.kill()
    })
    const ready = (await child.waitForLine((l) => l.startsWith('ready '))).split(' ')
    t.ok(Number(ready[1]) >= maxAcked, `round ${round}: the child's own replay starts at ${ready[1]}, acknowledged before: ${maxAcked}`)
    discarded += Number(ready[2])
    const { signal } = await child.closed
    t.equal(signal, 'SIGKILL', `round ${round}: killed after ${killAfter} acknowledgements${signal === 'SIGKILL' ? '' : `; stderr: ${child.stderr()}`}`)

    const ackedRanges: [number, number][] = []
    for (const line of child.lines()) {
      const [kind, a, b] = line.split(' ')
      if (kind === 'ack') ackedRanges.push([Number(a), Number(b)])
      if (kind === 'doc') maxDoc = Math.max(maxDoc, Number(a))
      if (kind === 'checkpoint') checkpoints++
    }
    t.ok(ackedRanges.length >= killAfter, `round ${round}: ${ackedRanges.length} acknowledgements read`)
    for (const [, last] of ackedRanges) maxAcked = Math.max(maxAcked, last)

    const stateDir = await openStateDir(dir)
    const journal = stateDir.journal<{ seq: number; body: string }, { digest: number }>('m')
    const r = await journal.replay()
    t.ok(r.lastSeq >= maxAcked, `round ${round}: last record ${r.lastSeq}, last acknowledged ${maxAcked}`)
    t.equal(r.snapshot?.digest ?? 0, digestUpTo(r.snapshotSeq), `round ${round}: the snapshot at ${r.snapshotSeq} holds exactly records 1..${r.snapshotSeq}`)
    const wrong = r.records.filter((rec) => rec.value.seq !== rec.seq || rec.value.body !== 'x'.repeat(rec.seq % 64))
    t.same(wrong, [], `round ${round}: records ${r.snapshotSeq + 1}..${r.lastSeq} carry their own values`)
    t.equal(r.records.length, r.lastSeq - r.snapshotSeq)
    const doc = await stateDir.document<{ version: number }>('overrides').read()
    t.ok((doc?.version ?? 0) >= maxDoc, `round ${round}: document version ${doc?.version}, last acknowledged ${maxDoc}`)
    await stateDir.close()
  }
  t.comment(`${checkpoints} checkpoints acknowledged, ${discarded} torn bytes cut off across the restarts`)
})
