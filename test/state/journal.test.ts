// The journal: round trips, torn tails cut at every byte offset, damage in
// the middle refused, group commit under concurrency, bad values, misuse and
// a failed write.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { encodeFrame, scanSegment, segmentFileName } from '../../src/state/journal-format.js'
import { openJournal } from '../../src/state/journal.js'
import type { Journal, JournalRecord } from '../../src/state/journal.js'
import type { StateError } from '../../src/state/state-error.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-journal-'))
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

/** Opens and replays journal `m` in `dir`; the caller closes it. */
async function reopen(dir: string): Promise<{ journal: Journal; records: readonly JournalRecord<unknown>[]; discardedBytes: number; lastSeq: number }> {
  const journal = openJournal(dir, 'm')
  const replayed = await journal.replay()
  return { journal, records: replayed.records, discardedBytes: replayed.discardedBytes, lastSeq: replayed.lastSeq }
}

const values = (records: readonly JournalRecord<unknown>[]): unknown[] => records.map((r) => r.value)
const seqs = (records: readonly JournalRecord<unknown>[]): number[] => records.map((r) => r.seq)
const firstSegment = (dir: string): string => join(dir, segmentFileName('m', 1))

/** Frame start offsets in a segment, by scanning it. */
async function frameOffsets(path: string): Promise<number[]> {
  const offsets = new Set<number>()
  await scanSegment(path, 1, (_seq, _bytes, offset) => offsets.add(offset))
  return [...offsets]
}

t.test('a new journal is empty; records round trip across reopens with sequence numbers 1, 2, 3…', async (t) => {
  const dir = await tempDir(t)
  const first = await reopen(dir)
  t.same([first.records.length, first.lastSeq, first.discardedBytes], [0, 0, 0])
  t.equal(await first.journal.append([]), 0, 'an empty batch on a new journal')
  t.equal(await first.journal.append([{ a: 1 }, 'two']), 2)
  t.equal(await first.journal.append([[3, null, true]]), 3)
  t.equal(await first.journal.append([]), 3, 'an empty batch resolves with the last sequence number')
  t.equal(first.journal.lastSeq, 3)
  await first.journal.close()
  t.same(await readdir(dir), [segmentFileName('m', 1)])

  const second = await reopen(dir)
  t.same(seqs(second.records), [1, 2, 3])
  t.same(values(second.records), [{ a: 1 }, 'two', [3, null, true]])
  t.equal(second.lastSeq, 3)
  t.equal(await second.journal.append(['four']), 4)
  await second.journal.close()

  const third = await reopen(dir)
  t.same(values(third.records), [{ a: 1 }, 'two', [3, null, true], 'four'])
  await third.journal.close()
})

t.test('values survive byte for byte: unicode, escapes, numbers', async (t) => {
  const dir = await tempDir(t)
  const samples = ['', 'ü→😀', '\u0000\n\u2028"\\', { 'k\u0000': [1.5, -0, 1e300, 2 ** 53 - 1] }, { nested: { deep: [{ x: 'y' }] } }, 0, false, null]
  const { journal } = await reopen(dir)
  await journal.append(samples)
  await journal.close()
  const again = await reopen(dir)
  t.same(values(again.records), JSON.parse(JSON.stringify(samples)))
  await again.journal.close()
})

t.test('onRecord streams records instead of collecting them', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await reopen(dir)
  await journal.append(['a', 'b'])
  await journal.append(['c'])
  await journal.close()
  const seen: JournalRecord<unknown>[] = []
  const streamed = openJournal(dir, 'm')
  const result = await streamed.replay({ onRecord: (r) => seen.push(r) })
  t.same(result.records, [])
  t.same(seen, [
    { seq: 1, value: 'a' },
    { seq: 2, value: 'b' },
    { seq: 3, value: 'c' },
  ])
  await streamed.close()
})

/** A journal with frames [r1] [r2, r3] [last…]; returns the bytes and the offset where the last frame starts. */
async function threeFrames(t: Test, last: unknown[]): Promise<{ bytes: Buffer; lastFrameAt: number; middleFrameAt: number }> {
  const dir = await tempDir(t)
  const { journal } = await reopen(dir)
  await journal.append([{ r: 1 }])
  await journal.append([{ r: 2 }, { r: 3, pad: 'x'.repeat(20) }])
  const lastFrameAt = (await stat(firstSegment(dir))).size
  await journal.append(last)
  await journal.close()
  const bytes = await readFile(firstSegment(dir))
  const middleFrameAt = (await frameOffsets(firstSegment(dir)))[1] as number
  return { bytes, lastFrameAt, middleFrameAt }
}

t.test('a torn last frame, cut at every byte offset, replays exactly the earlier records and is cut off', async (t) => {
  for (const last of [[{ r: 4, text: 'last record' }], [{ r: 4 }, { r: 5 }, 'six']]) {
    const { bytes, lastFrameAt } = await threeFrames(t, last)
    t.ok(bytes.length - lastFrameAt > 24, 'the last frame has a header and a payload')
    const dir = await tempDir(t)
    const segment = firstSegment(dir)
    let checked = 0
    for (let cut = lastFrameAt; cut < bytes.length; cut++) {
      await writeFile(segment, bytes.subarray(0, cut))
      const { journal, records, discardedBytes } = await reopen(dir)
      const ok =
        JSON.stringify(values(records)) === JSON.stringify([{ r: 1 }, { r: 2 }, { r: 3, pad: 'x'.repeat(20) }]) &&
        discardedBytes === cut - lastFrameAt &&
        (await stat(segment)).size === lastFrameAt &&
        (await journal.append(['after'])) === 4
      await journal.close()
      if (!ok) t.fail(`cut at byte ${cut} of ${bytes.length}`)
      const again = await reopen(dir)
      if (JSON.stringify(seqs(again.records)) !== '[1,2,3,4]' || (again.records[3] as JournalRecord<unknown>).value !== 'after') t.fail(`append after the cut at ${cut}`)
      await again.journal.close()
      checked++
    }
    t.equal(checked, bytes.length - lastFrameAt, `every offset of a ${last.length}-record last frame checked`)
  }
})

t.test('zeros or random bytes after the last frame (a crash extending the file) are cut off', async (t) => {
  const { bytes } = await threeFrames(t, ['last'])
  const rand = createSeededRandom(99)
  for (const tail of [Buffer.alloc(4096), rand.bytes(1000), Buffer.from([0xff, 0x53, 0x4a, 0x31]), rand.bytes(3)]) {
    const dir = await tempDir(t)
    await writeFile(firstSegment(dir), Buffer.concat([bytes, tail]))
    const { journal, records, discardedBytes } = await reopen(dir)
    t.equal(records.length, 4)
    t.equal(discardedBytes, tail.length)
    await journal.close()
  }
})

t.test('a flipped bit anywhere in a frame that has a good frame after it is refused, naming the file and offset', async (t) => {
  const { bytes, middleFrameAt, lastFrameAt } = await threeFrames(t, ['last'])
  const dir = await tempDir(t)
  const segment = firstSegment(dir)
  let detected = 0
  for (let at = middleFrameAt; at < lastFrameAt; at++) {
    for (const bit of [0x01, 0x80]) {
      const damaged = Buffer.from(bytes)
      damaged[at] = (damaged[at] as number) ^ bit
      await writeFile(segment, damaged)
      const journal = openJournal(dir, 'm')
      const err = await rejection(journal.replay())
      await journal.close()
      if (err.code === 'STEER_ERR_STATE_JOURNAL_CORRUPT' && err.file === segment && err.offset === middleFrameAt) detected++
      else t.fail(`flip 0x${bit.toString(16)} at byte ${at}: ${err.code} ${err.message}`)
      t.equal((await readFile(segment)).length, damaged.length, 'nothing is cut off')
    }
  }
  t.equal(detected, 2 * (lastFrameAt - middleFrameAt), 'every byte of the middle frame')

  // A new append after the error is refused with the same error, naming the file.
  const journal = openJournal(dir, 'm')
  const replayErr = await rejection(journal.replay())
  const appendErr = await rejection(journal.append(['x']))
  t.equal(appendErr, replayErr)
  await journal.close()
})

t.test('a flipped bit in the last frame is indistinguishable from a torn write: that frame is cut off', async (t) => {
  const { bytes, lastFrameAt } = await threeFrames(t, ['last'])
  const dir = await tempDir(t)
  const damaged = Buffer.from(bytes)
  damaged[lastFrameAt + 30] = (damaged[lastFrameAt + 30] as number) ^ 0x04
  await writeFile(firstSegment(dir), damaged)
  const { journal, records, discardedBytes } = await reopen(dir)
  t.same(seqs(records), [1, 2, 3])
  t.equal(discardedBytes, bytes.length - lastFrameAt)
  await journal.close()
})

t.test('sound frames that break the rules are refused: out of sequence, records not filling the payload, not JSON', async (t) => {
  const cases: [string, Buffer][] = [
    ['a sequence gap', Buffer.concat([encodeFrame(1, [Buffer.from('1')]), encodeFrame(3, [Buffer.from('3')])])],
    ['not starting at the segment start', encodeFrame(2, [Buffer.from('2')])],
    ['not JSON', Buffer.concat([encodeFrame(1, [Buffer.from('{oops')]), encodeFrame(2, [Buffer.from('2')])])],
  ]
  for (const [what, bytes] of cases) {
    const dir = await tempDir(t)
    await writeFile(firstSegment(dir), bytes)
    const journal = openJournal(dir, 'm')
    const err = await rejection(journal.replay())
    t.equal(err.code, 'STEER_ERR_STATE_JOURNAL_CORRUPT', what)
    t.equal(err.file, firstSegment(dir), what)
    await journal.close()
  }
  // A frame whose count says more records than its payload holds, with a correct CRC.
  const frame = encodeFrame(1, [Buffer.from('1')])
  frame.writeUInt32LE(2, 12)
  const { crc32 } = await import('../../src/state/crc32.js')
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4)
  const dir = await tempDir(t)
  await writeFile(firstSegment(dir), frame)
  const journal = openJournal(dir, 'm')
  t.equal((await rejection(journal.replay())).code, 'STEER_ERR_STATE_JOURNAL_CORRUPT', 'count larger than the payload')
  await journal.close()
})

t.test('group commit: thousands of concurrent appends all resolve, in order, in few writes', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await reopen(dir)
  const appends = 3000
  // Issued in one tick: one write and one fsync carry them all.
  const acks = await Promise.all(Array.from({ length: appends }, (_, i) => journal.append([{ i }])))
  t.same(acks, Array.from({ length: appends }, (_, i) => i + 1))
  const frames = (await frameOffsets(firstSegment(dir))).length
  t.equal(frames, 1, `${appends} appends in one tick share one frame`)

  // Issued across ticks while fsyncs are in flight: later appends ride along with the next write.
  const rand = createSeededRandom(2024)
  const pending: Promise<number>[] = []
  const expected: number[] = []
  let next = appends + 1
  for (let i = 0; i < 400; i++) {
    const n = rand.between(1, 5)
    const batch = Array.from({ length: n }, (_, k) => ({ i: next + k }))
    next += n
    expected.push(next - 1)
    pending.push(journal.append(batch))
    if (rand.chance(0.1)) await new Promise((resolve) => setImmediate(resolve))
  }
  t.same(await Promise.all(pending), expected, 'each batch resolves with its own last sequence number')
  await journal.close()
  const wrote = (await frameOffsets(firstSegment(dir))).length - frames
  t.ok(wrote < 400, `400 appends across ticks took ${wrote} writes`)

  const again = await reopen(dir)
  t.equal(again.records.length, next - 1)
  t.ok(
    again.records.every((r, i) => r.seq === i + 1 && (r.value as { i: number }).i === (i < appends ? i : i + 1)),
    'replayed in order with their values',
  )
  await again.journal.close()
})

t.test('batches larger than one group write go in separate frames, each whole', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await reopen(dir)
  const big = 'y'.repeat(1024 * 1024)
  const acks = await Promise.all(Array.from({ length: 6 }, (_, i) => journal.append([{ i, big }, { i, tail: true }])))
  t.same(acks, [2, 4, 6, 8, 10, 12])
  t.ok((await frameOffsets(firstSegment(dir))).length >= 2, 'over 4 MiB is split between writes')
  await journal.close()
  const again = await reopen(dir)
  t.equal(again.records.length, 12)
  t.same(
    again.records.map((r) => (r.value as { i: number }).i),
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
  )
  await again.journal.close()
})

t.test('values JSON cannot carry are refused without using a sequence number', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await reopen(dir)
  const cyclic: Record<string, unknown> = {}
  cyclic['self'] = cyclic
  for (const bad of [undefined, 1n, cyclic, () => 1]) {
    const err = await rejection(journal.append(['fine', bad]))
    t.equal(err.code, 'STEER_ERR_STATE_BAD_VALUE')
    t.match(err.file, dir)
  }
  t.equal((await rejection(journal.checkpoint(undefined))).code, 'STEER_ERR_STATE_BAD_VALUE')
  t.equal(await journal.append(['first']), 1, 'the journal still works')
  await journal.close()
})

t.test('misuse: append before replay, replay twice, use after close', async (t) => {
  const dir = await tempDir(t)
  const journal = openJournal(dir, 'm')
  t.equal((await rejection(journal.append(['x']))).code, 'STEER_ERR_STATE_MISUSE')
  t.equal((await rejection(journal.checkpoint({}))).code, 'STEER_ERR_STATE_MISUSE')
  await journal.replay()
  t.equal((await rejection(journal.replay())).code, 'STEER_ERR_STATE_MISUSE')
  const inFlight = journal.append(['before close'])
  await journal.close()
  t.equal(await inFlight, 1, 'close waits for pending appends')
  await journal.close()
  t.equal((await rejection(journal.append(['x']))).code, 'STEER_ERR_STATE_MISUSE')
})

t.test('close() during replay: replay rejects with MISUSE and the journal stays closed', async (t) => {
  const dir = await tempDir(t)
  await writeFile(firstSegment(dir), encodeFrame(1, [Buffer.from('"a"')]))
  const journal = openJournal(dir, 'm')
  const replaying = journal.replay()
  await journal.close()
  t.equal((await rejection(replaying)).code, 'STEER_ERR_STATE_MISUSE')
  t.equal((await rejection(journal.append(['x']))).code, 'STEER_ERR_STATE_MISUSE')
  const again = await reopen(dir)
  t.same(values(again.records), ['a'], 'a fresh open still works')
  await again.journal.close()
})

t.test('a failed write fails that batch with IO and every later one with JOURNAL_FAILED; reopening recovers', async (t) => {
  const dir = await tempDir(t)
  const { journal } = await reopen(dir)
  await journal.append(['kept'])
  // Pull the file out from under the writer, as a failing disk would.
  await (journal as unknown as { handle: { close(): Promise<void> } }).handle.close()
  const [first, second] = await Promise.all([rejection(journal.append(['lost'])), rejection(journal.append(['lost too']))])
  t.equal(first.code, 'STEER_ERR_STATE_IO')
  t.equal(first.file, firstSegment(dir))
  t.equal(second.code, 'STEER_ERR_STATE_IO', 'the same write')
  const later = await rejection(journal.append(['later']))
  t.equal(later.code, 'STEER_ERR_STATE_JOURNAL_FAILED')
  t.equal(later.file, firstSegment(dir))
  t.equal((await rejection(journal.checkpoint({}))).code, 'STEER_ERR_STATE_JOURNAL_FAILED')
  await journal.close()
  const again = await reopen(dir)
  t.same(values(again.records), ['kept'])
  t.equal(await again.journal.append(['next']), 2)
  await again.journal.close()
})

t.test('files of other journals and other kinds are ignored', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, segmentFileName('other', 1)), encodeFrame(1, [Buffer.from('"other"')]))
  await writeFile(join(dir, 'm.json'), '{}')
  await writeFile(join(dir, 'm.1.wal'), 'junk')
  await writeFile(join(dir, 'mm.0000000000000001.wal'), 'junk')
  const { journal, records } = await reopen(dir)
  t.same(records, [])
  await journal.append(['mine'])
  await journal.close()
  t.same((await readdir(dir)).sort(), ['m.0000000000000001.wal', 'm.1.wal', 'm.json', 'mm.0000000000000001.wal', 'other.0000000000000001.wal'])
})
