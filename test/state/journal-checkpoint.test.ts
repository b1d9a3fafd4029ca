// Checkpoints: the real sequence, and every on-disk state a crash between its
// steps can leave (built file by file), read back whole; states that only
// lost data can produce are refused, naming the file. Step numbers follow
// the header of src/state/journal.ts.
import * as realFs from 'node:fs/promises'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { encodeFrame, segmentFileName } from '../../src/state/journal-format.js'
import { encodeSnapshot, openJournal } from '../../src/state/journal.js'
import type { Journal, JournalReplay } from '../../src/state/journal.js'
import type * as AtomicFileModule from '../../src/state/atomic-file.js'
import type * as JournalModule from '../../src/state/journal.js'
import { openStateDir } from '../../src/state/state-dir.js'
import type { StateError } from '../../src/state/state-error.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-checkpoint-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function rejection(promise: Promise<unknown>): Promise<StateError> {
  try {
    await promise
  } catch (err) {
    return err as StateError
  }
  throw new Error('expected a rejection')
}

const value = (seq: number): string => `r${seq}`
const segName = (startSeq: number): string => segmentFileName('m', startSeq)

/** A segment starting at `startSeq` with one frame per batch size, records r<seq>. */
async function writeSegment(dir: string, startSeq: number, batchSizes: readonly number[]): Promise<void> {
  const frames: Buffer[] = []
  let seq = startSeq
  for (const size of batchSizes) {
    frames.push(encodeFrame(seq, Array.from({ length: size }, (_, i) => Buffer.from(JSON.stringify(value(seq + i))))))
    seq += size
  }
  await writeFile(join(dir, segName(startSeq)), Buffer.concat(frames))
}

/** The snapshot a checkpoint at `seq` writes: all records up to it. */
async function writeSnapshot(dir: string, seq: number): Promise<void> {
  await writeFile(join(dir, 'm.snapshot'), encodeSnapshot('m', seq, JSON.stringify(Array.from({ length: seq }, (_, i) => value(i + 1)))))
}

interface Replayed {
  journal: Journal<string, string[]>
  replay: JournalReplay<string, string[]>
  /** Snapshot values then record values: the caller's rebuilt state. */
  state: string[]
}

async function replay(dir: string): Promise<Replayed> {
  const journal = openJournal<string, string[]>(dir, 'm')
  const r = await journal.replay()
  return { journal, replay: r, state: [...(r.snapshot ?? []), ...r.records.map((x) => x.value)] }
}

const upTo = (n: number): string[] => Array.from({ length: n }, (_, i) => value(i + 1))

t.test('a checkpoint replaces the records it covers: snapshot, one new segment, old ones gone', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await replay(dir)
  await journal.append([value(1), value(2), value(3)])
  await journal.append([value(4), value(5)])
  t.equal(await journal.checkpoint(upTo(5)), 5)
  t.same((await readdir(dir)).sort(), ['m.0000000000000006.wal', 'm.snapshot'])
  t.equal(await journal.append([value(6)]), 6)
  t.equal(await journal.append([value(7)]), 7)
  await journal.close()

  const again = await replay(dir)
  t.equal(again.replay.snapshotSeq, 5)
  t.same(again.replay.records.map((r) => r.seq), [6, 7])
  t.same(again.state, upTo(7))
  t.equal(again.replay.lastSeq, 7)
  t.equal(await again.journal.append([value(8)]), 8)
  await again.journal.close()
})

t.test('appends in the same tick as a checkpoint land on the right side of it', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await replay(dir)
  const a = journal.append([value(1), value(2)])
  const c1 = journal.checkpoint(upTo(2))
  const b = journal.append([value(3)])
  const c2 = journal.checkpoint(upTo(3))
  const c3 = journal.checkpoint(upTo(3))
  const c = journal.append([value(4)])
  t.same(await Promise.all([a, c1, b, c2, c3, c]), [2, 2, 3, 3, 3, 4])
  t.same((await readdir(dir)).sort(), ['m.0000000000000004.wal', 'm.snapshot'], 'the later checkpoint won, in call order')
  await journal.close()
  const again = await replay(dir)
  t.equal(again.replay.snapshotSeq, 3)
  t.same(again.state, upTo(4))
  await again.journal.close()
})

t.test('checkpoints of an empty or unchanged journal keep one segment', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await replay(dir)
  t.equal(await journal.checkpoint([]), 0)
  t.equal(await journal.checkpoint([]), 0)
  t.same((await readdir(dir)).sort(), ['m.0000000000000001.wal', 'm.snapshot'])
  await journal.close()
  const again = await replay(dir)
  t.same([again.replay.snapshot, again.replay.snapshotSeq, again.replay.lastSeq], [[], 0, 0])
  await again.journal.close()
})

interface CrashCase {
  readonly name: string
  readonly build: (dir: string) => Promise<void>
  readonly snapshotSeq: number
  readonly lastSeq: number
  /** Segment files left after replay. */
  readonly files: readonly string[]
  readonly removed?: readonly string[]
  readonly temp?: boolean
}

// Records 1..5 in segment 1; the checkpoint is at 5. A crash may stop at any point:
const CRASHES: readonly CrashCase[] = [
  {
    name: 'before step 1 completes (no checkpoint on disk yet)',
    build: (dir) => writeSegment(dir, 1, [3, 2]),
    snapshotSeq: 0,
    lastSeq: 5,
    files: [segName(1)],
  },
  {
    name: 'after step 2 (new segment created, empty), before the snapshot',
    build: async (dir) => {
      await writeSegment(dir, 1, [3, 2])
      await writeSegment(dir, 6, [])
    },
    snapshotSeq: 0,
    lastSeq: 5,
    files: [segName(1), segName(6)],
  },
  {
    name: 'after step 2 with appends in the new segment, before the snapshot',
    build: async (dir) => {
      await writeSegment(dir, 1, [3, 2])
      await writeSegment(dir, 6, [1, 1])
    },
    snapshotSeq: 0,
    lastSeq: 7,
    files: [segName(1), segName(6)],
  },
  {
    name: 'during step 3 (the snapshot only a temporary file)',
    build: async (dir) => {
      await writeSegment(dir, 1, [3, 2])
      await writeSegment(dir, 6, [2])
      await writeFile(join(dir, '.m.snapshot.tmp-0123456789abcdef'), encodeSnapshot('m', 5, '["r1","r2"').subarray(0, 40))
    },
    snapshotSeq: 0,
    lastSeq: 7,
    files: [segName(1), segName(6)],
    temp: true,
  },
  {
    name: 'during step 3 while an older snapshot is in place',
    build: async (dir) => {
      await writeSnapshot(dir, 2)
      await writeSegment(dir, 3, [3])
      await writeSegment(dir, 6, [2])
      await writeFile(join(dir, '.m.snapshot.tmp-0123456789abcdef'), 'partial')
    },
    snapshotSeq: 2,
    lastSeq: 7,
    files: [segName(3), segName(6)],
    temp: true,
  },
  {
    name: 'after step 3 (snapshot durable), before step 4 deletes the old segment',
    build: async (dir) => {
      await writeSnapshot(dir, 5)
      await writeSegment(dir, 1, [3, 2])
      await writeSegment(dir, 6, [2])
    },
    snapshotSeq: 5,
    lastSeq: 7,
    files: [segName(6)],
    removed: [segName(1)],
  },
  {
    name: 'during step 4 with several old segments, some deleted',
    build: async (dir) => {
      await writeSnapshot(dir, 8)
      await writeSegment(dir, 6, [3])
      await writeSegment(dir, 9, [1])
    },
    snapshotSeq: 8,
    lastSeq: 9,
    files: [segName(9)],
    removed: [segName(6)],
  },
  {
    name: 'snapshot durable but no newer segment (the snapshot-first order): replay starts one',
    build: async (dir) => {
      await writeSnapshot(dir, 5)
      await writeSegment(dir, 1, [5])
    },
    snapshotSeq: 5,
    lastSeq: 5,
    files: [segName(6)],
    removed: [segName(1)],
  },
  {
    name: 'snapshot durable, every segment already deleted',
    build: (dir) => writeSnapshot(dir, 5),
    snapshotSeq: 5,
    lastSeq: 5,
    files: [segName(6)],
  },
  {
    name: 'snapshot at a record in the middle of the newest segment',
    build: async (dir) => {
      await writeSnapshot(dir, 4)
      await writeSegment(dir, 1, [3, 3])
    },
    snapshotSeq: 4,
    lastSeq: 6,
    files: [segName(1)],
  },
]

t.test('every crash point of a checkpoint replays to the same state, and the journal goes on', async (t) => {
  for (const c of CRASHES) {
    await t.test(c.name, async (t) => {
      const dir = await tempDir(t)
      await c.build(dir)
      // Through the state directory, which removes the temporary files a crash left.
      const stateDir = await openStateDir(dir)
      t.equal(stateDir.removedTempFiles.length, c.temp ? 1 : 0)
      const journal = stateDir.journal<string, string[]>('m')
      const r = await journal.replay()
      t.equal(r.snapshotSeq, c.snapshotSeq)
      t.equal(r.lastSeq, c.lastSeq)
      t.same([...(r.snapshot ?? []), ...r.records.map((x) => x.value)], upTo(c.lastSeq), 'snapshot + records = every record')
      t.same(r.records.map((x) => x.seq), Array.from({ length: c.lastSeq - c.snapshotSeq }, (_, i) => c.snapshotSeq + i + 1))
      t.same(r.removedFiles, (c.removed ?? []).map((f) => join(dir, f)))
      t.equal(r.discardedBytes, 0)
      t.same((await readdir(dir)).filter((f) => f.endsWith('.wal')).sort(), c.files)
      t.equal(await journal.append([value(c.lastSeq + 1)]), c.lastSeq + 1)
      t.equal(await journal.checkpoint(upTo(c.lastSeq + 1)), c.lastSeq + 1)
      await stateDir.close()

      const again = await replay(dir)
      t.same(again.state, upTo(c.lastSeq + 1), 'after appending and checkpointing again')
      t.same((await readdir(dir)).filter((f) => f.endsWith('.wal')), [segName(c.lastSeq + 2)])
      await again.journal.close()
    })
  }
})

t.test('a torn tail in the segment after a snapshot is cut off as usual', async (t) => {
  const dir = await tempDir(t)
  await writeSnapshot(dir, 5)
  await writeSegment(dir, 6, [1, 2])
  const path = join(dir, segName(6))
  const bytes = await readFile(path)
  await writeFile(path, bytes.subarray(0, bytes.length - 3))
  const { journal, replay: r, state } = await replay(dir)
  t.same(state, upTo(6))
  t.ok(r.discardedBytes > 0)
  await journal.close()
})

interface RefusedCase {
  readonly name: string
  readonly build: (dir: string) => Promise<void>
  readonly code: string
  readonly file: string
}

const REFUSED: readonly RefusedCase[] = [
  {
    name: 'old segment deleted before the snapshot existed (the wrong order)',
    build: (dir) => writeSegment(dir, 6, [2]),
    code: 'STEER_ERR_STATE_JOURNAL_GAP',
    file: segName(6),
  },
  {
    name: 'a snapshot older than the oldest segment',
    build: async (dir) => {
      await writeSnapshot(dir, 2)
      await writeSegment(dir, 6, [2])
    },
    code: 'STEER_ERR_STATE_JOURNAL_GAP',
    file: segName(6),
  },
  {
    name: 'a segment missing between two others',
    build: async (dir) => {
      await writeSegment(dir, 1, [5])
      await writeSegment(dir, 9, [1])
    },
    code: 'STEER_ERR_STATE_JOURNAL_GAP',
    file: segName(9),
  },
  {
    name: 'segments that overlap',
    build: async (dir) => {
      await writeSegment(dir, 1, [5])
      await writeSegment(dir, 4, [3])
    },
    code: 'STEER_ERR_STATE_JOURNAL_CORRUPT',
    file: segName(4),
  },
  {
    name: 'a torn tail in a segment that has a successor',
    build: async (dir) => {
      await writeSegment(dir, 1, [5])
      await writeFile(join(dir, segName(1)), Buffer.concat([await readFile(join(dir, segName(1))), Buffer.from([0xff, 0x53, 0x4a])]))
      await writeSegment(dir, 6, [1])
    },
    code: 'STEER_ERR_STATE_JOURNAL_CORRUPT',
    file: segName(1),
  },
]

/** Ways a snapshot file can be damaged; each must be refused, not discarded. */
const BAD_SNAPSHOTS: readonly [string, (good: Buffer) => Buffer][] = [
  ['a flipped bit in the value', (good) => flip(good, good.length - 5)],
  ['a flipped bit in the header', (good) => flip(good, 20)],
  ['cut short', (good) => good.subarray(0, good.length - 2)],
  ['extra bytes', (good) => Buffer.concat([good, Buffer.from('x')])],
  ['empty', () => Buffer.alloc(0)],
  ['plain JSON', () => Buffer.from('["r1"]\n')],
  ['another journal', () => encodeSnapshot('other', 5, '[]')],
  ['another format version', (good) => Buffer.from(good.toString().replace('"version":1', '"version":2'))],
  ['a value that is not JSON', () => encodeSnapshot('m', 5, '[oops')],
]

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes)
  out[at] = (out[at] as number) ^ 0x02
  return out
}

t.test('states only lost or damaged data can produce are refused, naming the file', async (t) => {
  for (const c of REFUSED) {
    const dir = await tempDir(t)
    await c.build(dir)
    const before = (await readdir(dir)).sort()
    const journal = openJournal(dir, 'm')
    const err = await rejection(journal.replay())
    t.equal(err.code, c.code, c.name)
    t.equal(err.file, join(dir, c.file), c.name)
    t.same((await readdir(dir)).sort(), before, `${c.name}: nothing deleted`)
    await journal.close()
  }
  for (const [name, damage] of BAD_SNAPSHOTS) {
    const dir = await tempDir(t)
    await writeSnapshot(dir, 5)
    const path = join(dir, 'm.snapshot')
    const damaged = damage(await readFile(path))
    await writeFile(path, damaged)
    const journal = openJournal(dir, 'm')
    const err = await rejection(journal.replay())
    t.equal(err.code, 'STEER_ERR_STATE_SNAPSHOT_CORRUPT', name)
    t.equal(err.file, path, name)
    t.same(await readFile(path), damaged, `${name}: left in place`)
    await journal.close()
  }
})

t.test('random appends, checkpoints and reopens always rebuild the same state', async (t) => {
  const dir = await tempDir(t)
  const rand = createSeededRandom(0xc0ffee)
  const model: string[] = []
  let { journal } = await replay(dir)
  let unawaited: Promise<number>[] = []
  for (let step = 0; step < 300; step++) {
    const roll = rand.next()
    if (roll < 0.7) {
      const batch = Array.from({ length: rand.between(0, 4) }, (_, i) => value(model.length + i + 1))
      model.push(...batch)
      const pending = journal.append(batch)
      if (rand.chance(0.5)) await pending
      else unawaited.push(pending)
    } else if (roll < 0.9) {
      const pending = journal.checkpoint([...model])
      if (rand.chance(0.5)) await pending
      else unawaited.push(pending)
    } else {
      await journal.close()
      // close() waited for them: all settled, none failed.
      await Promise.all(unawaited)
      unawaited = []
      const again = await replay(dir)
      if (JSON.stringify(again.state) !== JSON.stringify(model)) t.fail(`state differs after reopen at step ${step}`)
      journal = again.journal
    }
  }
  await journal.close()
  await Promise.all(unawaited)
  const last = await replay(dir)
  t.same(last.state, model)
  t.ok((await readdir(dir)).filter((f) => f.endsWith('.wal')).length <= 2, 'old segments do not pile up')
  await last.journal.close()
})

t.test('a crash between any two filesystem steps of real checkpoints (with appends running) loses no acknowledged record', async (t) => {
  const work = await tempDir(t)
  const captures: { files: Map<string, Buffer>; acked: number; before: string }[] = []
  let recording = false
  let acked = 0
  // Every directory-level step (open, rename, unlink, link) waits its turn, the directory is
  // copied as it stands (what a kill -9 at that instant leaves), then the step runs.
  let turn: Promise<unknown> = Promise.resolve()
  const capture = async (before: string): Promise<void> => {
    const files = new Map<string, Buffer>()
    for (const name of await realFs.readdir(work)) {
      const bytes = await realFs.readFile(join(work, name)).catch(() => undefined)
      if (bytes !== undefined) files.set(name, bytes)
    }
    captures.push({ files, acked, before })
  }
  const step =
    <A extends unknown[], T>(name: string, real: (...args: A) => Promise<T>) =>
    (...args: A): Promise<T> => {
      const run = turn.then(async () => {
        if (recording && String(args[0]).startsWith(work)) await capture(`${name} ${String(args[0]).slice(work.length + 1) || '.'}`)
        return real(...args)
      })
      turn = run.catch(() => undefined)
      return run
    }
  const fsMock = {
    ...realFs,
    open: step('open', realFs.open),
    rename: step('rename', realFs.rename),
    unlink: step('unlink', realFs.unlink),
    link: step('link', realFs.link),
  }
  const atomicFile = await t.mockImport<typeof AtomicFileModule>('../../src/state/atomic-file.js', { 'node:fs/promises': fsMock })
  const mocked = await t.mockImport<typeof JournalModule>('../../src/state/journal.js', {
    'node:fs/promises': fsMock,
    '../../src/state/atomic-file.js': atomicFile,
  })

  const journal = mocked.openJournal<string, string[]>(work, 'm')
  await journal.replay()
  acked = await journal.append(upTo(5))
  recording = true
  const appends = (async () => {
    for (let seq = 6; seq <= 12; seq++) acked = Math.max(acked, await journal.append([value(seq)]))
  })()
  const checkpoints = (async () => {
    await journal.checkpoint(upTo(journal.lastSeq))
    await journal.append([]) // let a few appends through between the checkpoints
    await journal.checkpoint(upTo(journal.lastSeq))
  })()
  await Promise.all([appends, checkpoints])
  await journal.checkpoint(upTo(journal.lastSeq))
  recording = false
  await journal.close()
  await capture('end')
  t.ok(captures.length >= 12, `${captures.length} crash points captured: ${captures.map((c) => c.before).join(", ")}`)

  for (const c of captures) {
    const dir = await tempDir(t)
    for (const [name, bytes] of c.files) await writeFile(join(dir, name), bytes)
    const stateDir = await openStateDir(dir)
    const j = stateDir.journal<string, string[]>('m')
    try {
      const r = await j.replay()
      const state = [...(r.snapshot ?? []), ...r.records.map((x) => x.value)]
      if (state.length < c.acked || JSON.stringify(state) !== JSON.stringify(upTo(state.length))) {
        t.fail(`crash before "${c.before}": ${state.length} records, ${c.acked} acknowledged`)
      }
      if ((await j.append([value(state.length + 1)])) !== state.length + 1) t.fail(`append after a crash before "${c.before}"`)
    } catch (err) {
      t.fail(`crash before "${c.before}": ${(err as Error).message}`)
    } finally {
      await stateDir.close()
    }
  }
  t.same(
    [...(captures[captures.length - 1] as { files: Map<string, Buffer> }).files.keys()].sort(),
    ['m.0000000000000013.wal', 'm.snapshot'],
    'the end state: one snapshot, one empty segment',
  )
})
