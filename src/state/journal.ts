/**
 * An append-only journal (write-ahead log) of JSON records with group commit,
 * crash recovery and checkpoints. It knows nothing of what the records mean:
 * the caller folds them into its own state and, now and then, hands that
 * state to checkpoint() so the journal can start over from it.
 *
 * On disk, in the journal's directory (frame layout: journal-format.ts):
 *   NAME.SSSSSSSSSSSSSSSS.wal  segments; S = sequence number of the first record
 *   NAME.snapshot              the last checkpoint: a header line, then the value's JSON
 *
 * Durability: append() resolves only after its records are written and
 * fdatasync'ed (fdatasync(2) also flushes the file size, the metadata a later
 * read needs). Appends made while an fsync is in flight wait and go out
 * together in the next write + fsync (group commit), so N concurrent callers
 * cost one fsync, not N.
 *
 * Checkpoint order, chosen so that a crash between any two steps leaves a
 * state that replay() reads back whole (each is a case in
 * test/state/journal-checkpoint.test.ts):
 *   1. records up to S (the last one appended before the call) are fsynced
 *      in the current segment;
 *   2. a new segment S+1 is created and the directory fsynced; appends
 *      continue there while the snapshot is written;
 *   3. the snapshot (tagged S) is written atomically (atomic-file.ts);
 *   4. only then are segments holding nothing after S deleted.
 * Old segments outlive the snapshot that makes them redundant, never the
 * other way round; replay() skips records at or below the snapshot's S and
 * deletes segments left over from an interrupted step 4.
 */
import type { FileHandle } from 'node:fs/promises'
import { open, readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { readFileIfExists, syncDirectory, writeFileAtomic } from './atomic-file.js'
import { crc32 } from './crc32.js'
import { encodeFrame, MAX_FRAME_PAYLOAD_BYTES, parseSegmentFileName, payloadBytesOf, scanSegment, segmentFileName } from './journal-format.js'
import { ioError, StateError, StateErrorCode } from './state-error.js'

export interface JournalRecord<R> {
  /** 1, 2, 3, … across the journal's whole life; never reused, not reset by checkpoints. */
  readonly seq: number
  readonly value: R
}

export interface JournalReplay<R, S> {
  /** The value of the last checkpoint, or undefined when there has been none. */
  readonly snapshot: S | undefined
  /** The sequence number of the last record the snapshot includes; 0 when there is none (or it predates every record). */
  readonly snapshotSeq: number
  /** Records after the snapshot, in order; empty when `onRecord` was given. */
  readonly records: readonly JournalRecord<R>[]
  /** The sequence number of the last record (or of the snapshot); 0 for a new journal. */
  readonly lastSeq: number
  /** Bytes of torn tail cut off (a crash mid-write); 0 after a clean shutdown. */
  readonly discardedBytes: number
  /** Files removed: segments made redundant by the snapshot (an interrupted checkpoint's leftovers). */
  readonly removedFiles: readonly string[]
}

export interface ReplayOptions<R> {
  /** Called for each record in order instead of collecting them (for journals too large to hold twice). */
  readonly onRecord?: (record: JournalRecord<R>) => void
}

export interface Journal<R = unknown, S = unknown> {
  readonly name: string
  readonly dir: string
  readonly snapshotPath: string
  /** The sequence number of the last record appended (acknowledged or not); 0 before replay and for a new journal. */
  readonly lastSeq: number
  /**
   * Recovers and reads the journal: loads the snapshot, reads every segment
   * after it in order, cuts a torn tail off (so new appends never follow
   * garbage), removes leftovers of an interrupted checkpoint, and opens the
   * last segment for appending. Must be called once, before append() and
   * checkpoint(). Throws StateError naming the file: SNAPSHOT_CORRUPT,
   * JOURNAL_CORRUPT (with offset), JOURNAL_GAP, IO; MISUSE when called twice.
   */
  replay(opts?: ReplayOptions<R>): Promise<JournalReplay<R, S>>
  /**
   * Appends `records` as one all-or-nothing batch and resolves with the
   * sequence number of its last record once it is fsynced (an empty batch
   * resolves once everything appended before it is). Records are encoded
   * with JSON.stringify at the call, so later mutation does not matter.
   * Rejects with StateError: BAD_VALUE (not JSON, or over 64 MiB), IO (the
   * write or fsync failed), JOURNAL_FAILED (an earlier one did), MISUSE
   * (before replay, after close).
   */
  append(records: readonly R[]): Promise<number>
  /**
   * Makes `value` the journal's new starting point: it must include every
   * record appended before this call. Resolves with the sequence number it
   * is tagged with, once the snapshot is durable and the segments it makes
   * redundant are deleted. Appends may continue meanwhile. Rejects with
   * StateError: BAD_VALUE, IO, JOURNAL_FAILED, MISUSE.
   */
  checkpoint(value: S): Promise<number>
  /** Waits for pending appends and checkpoints, then closes the files. Idempotent; never rejects. */
  close(): Promise<void>
}

export interface OpenJournalOptions {
  /** Called once the journal is closed (the state directory forgets it then). */
  readonly onClose?: () => void
}

/** Bytes one group commit gathers before it writes (unless a single append is larger): 4 MiB. */
const MAX_GROUP_BYTES = 4 * 1024 * 1024
const SNAPSHOT_FORMAT = 'steerdns-journal-snapshot'
const SNAPSHOT_VERSION = 1

/**
 * The journal `name` in `dir` (which must exist). No I/O happens until
 * replay(). Nothing stops two journals on the same files within one process
 * or across processes; the state directory's lock and name registry do.
 */
export function openJournal<R = unknown, S = unknown>(dir: string, name: string, opts: OpenJournalOptions = {}): Journal<R, S> {
  return new FileJournal<R, S>(dir, name, opts)
}

interface Segment {
  readonly startSeq: number
  readonly path: string
}

type Pending =
  | { readonly kind: 'records'; readonly firstSeq: number; readonly records: Buffer[]; readonly bytes: number; resolve(lastSeq: number): void; reject(err: unknown): void }
  | { readonly kind: 'roll'; readonly startSeq: number; resolve(): void; reject(err: unknown): void }

class FileJournal<R, S> implements Journal<R, S> {
  readonly snapshotPath: string
  private phase: 'new' | 'replaying' | 'open' | 'failed' | 'closed' = 'new'
  private failure: StateError | undefined
  private nextSeq = 1
  /** Segments on disk, oldest first; the last is the one being appended to. */
  private segments: Segment[] = []
  private handle: FileHandle | undefined
  private readonly queue: Pending[] = []
  private flushing: Promise<void> | undefined
  private checkpoints: Promise<unknown> = Promise.resolve()

  constructor(
    readonly dir: string,
    readonly name: string,
    private readonly opts: OpenJournalOptions,
  ) {
    this.snapshotPath = join(dir, `${name}.snapshot`)
  }

  get lastSeq(): number {
    return this.nextSeq - 1
  }

  private get writerPath(): string {
    return this.segments[this.segments.length - 1]?.path ?? join(this.dir, `${this.name}.*.wal`)
  }

  async replay(opts: ReplayOptions<R> = {}): Promise<JournalReplay<R, S>> {
    if (this.phase !== 'new') throw this.misuse(this.phase === 'closed' ? 'the journal is closed' : 'replay() runs once, before appending')
    this.phase = 'replaying'
    try {
      const result = await this.recover(opts)
      if ((this.phase as string) === 'closed') throw this.misuse('the journal was closed during replay')
      this.phase = 'open'
      return result
    } catch (err) {
      if (this.phase === 'replaying') {
        this.phase = 'failed'
        this.failure = err instanceof StateError ? err : ioError(this.dir, `replay the journal ${this.name}`, err)
      }
      // A failed replay may have opened the segment already; close() during replay left it to us.
      await this.handle?.close().catch(() => undefined)
      this.handle = undefined
      throw err
    }
  }

  private async recover(opts: ReplayOptions<R>): Promise<JournalReplay<R, S>> {
    const { value: snapshot, seq: snapshotSeq } = await this.loadSnapshot()
    const all = await this.listSegments()
    // The segment holding record snapshotSeq + 1 is the last one starting at or before it.
    let first = -1
    for (let i = 0; i < all.length; i++) if ((all[i] as Segment).startSeq <= snapshotSeq + 1) first = i
    const firstSegment = all[0]
    if (first < 0 && firstSegment !== undefined) {
      throw new StateError(
        StateErrorCode.JOURNAL_GAP,
        firstSegment.path,
        `records ${snapshotSeq + 1} to ${firstSegment.startSeq - 1} are missing: the snapshot ${this.snapshotPath} ${snapshotSeq === 0 ? 'does not exist' : `ends at record ${snapshotSeq}`}`,
      )
    }
    const obsolete = first > 0 ? all.slice(0, first) : []
    const live = first >= 0 ? all.slice(first) : []

    const records: JournalRecord<R>[] = []
    const onRecord = opts.onRecord ?? ((r: JournalRecord<R>) => void records.push(r))
    let discardedBytes = 0
    let expected = live[0]?.startSeq ?? snapshotSeq + 1
    for (const segment of live) {
      if (segment.startSeq < expected) {
        throw new StateError(StateErrorCode.JOURNAL_CORRUPT, segment.path, `segment starts at record ${segment.startSeq} but the one before it ends at record ${expected - 1}`, { offset: 0 })
      }
      if (segment.startSeq > Math.max(expected, snapshotSeq + 1)) {
        throw new StateError(StateErrorCode.JOURNAL_GAP, segment.path, `records ${expected} to ${segment.startSeq - 1} are missing before this segment`)
      }
      const scan = await scanSegment(segment.path, segment.startSeq, (seq, bytes, frameOffset) => {
        if (seq <= snapshotSeq) return
        let value: R
        try {
          value = JSON.parse(bytes.toString('utf8')) as R
        } catch (err) {
          throw new StateError(StateErrorCode.JOURNAL_CORRUPT, segment.path, `record ${seq} in the frame at byte ${frameOffset} is not JSON despite a sound CRC`, { offset: frameOffset, cause: err })
        }
        onRecord({ seq, value })
      })
      if (scan.goodBytes < scan.fileBytes) {
        // Only the segment being appended to can have an unsynced write in flight; every
        // earlier one was fsynced whole before its successor was created.
        if (segment !== live[live.length - 1]) {
          throw new StateError(StateErrorCode.JOURNAL_CORRUPT, segment.path, `bad frame at byte ${scan.goodBytes} in a segment that was complete before the next one began`, {
            offset: scan.goodBytes,
          })
        }
        await truncateDurably(segment.path, scan.goodBytes)
        discardedBytes += scan.fileBytes - scan.goodBytes
      }
      expected = scan.nextSeq
    }
    const lastSeq = Math.max(snapshotSeq, expected - 1)

    const removedFiles: string[] = []
    const last = live[live.length - 1]
    // Keep appending to the newest segment when it holds records after the snapshot (or is its
    // successor); otherwise it is redundant and a fresh segment after the snapshot takes over.
    if (last !== undefined && (expected - 1 > snapshotSeq || last.startSeq === snapshotSeq + 1)) {
      this.segments = live
      this.handle = await openForAppend(last.path)
    } else {
      // Nothing after the snapshot on disk: start its successor segment, then every older one is redundant.
      obsolete.push(...live)
      const segment = { startSeq: snapshotSeq + 1, path: join(this.dir, segmentFileName(this.name, snapshotSeq + 1)) }
      this.handle = await createSegment(segment.path)
      this.segments = [segment]
      await syncDirectory(this.dir)
    }
    for (const segment of obsolete) if (await removeFile(segment.path)) removedFiles.push(segment.path)
    if (removedFiles.length > 0) await syncDirectory(this.dir)
    this.nextSeq = lastSeq + 1
    return { snapshot, snapshotSeq, records, lastSeq, discardedBytes, removedFiles }
  }

  private async loadSnapshot(): Promise<{ value: S | undefined; seq: number }> {
    const bytes = await readFileIfExists(this.snapshotPath)
    if (bytes === undefined) return { value: undefined, seq: 0 }
    return decodeSnapshot<S>(this.snapshotPath, this.name, bytes)
  }

  private async listSegments(): Promise<Segment[]> {
    const names = await readdir(this.dir).catch((err: unknown) => {
      throw ioError(this.dir, 'list the state directory', err)
    })
    const segments: Segment[] = []
    for (const fileName of names) {
      const startSeq = parseSegmentFileName(this.name, fileName)
      if (startSeq !== undefined) segments.push({ startSeq, path: join(this.dir, fileName) })
    }
    return segments.sort((a, b) => a.startSeq - b.startSeq)
  }

  append(records: readonly R[]): Promise<number> {
    const refused = this.refusal()
    if (refused) return Promise.reject(refused)
    const encoded: Buffer[] = []
    for (let i = 0; i < records.length; i++) {
      const text = encodeJson(records[i])
      if (text === undefined) return Promise.reject(this.badValue(`record ${i} of the batch cannot be written as JSON`))
      encoded.push(Buffer.from(text, 'utf8'))
    }
    const bytes = payloadBytesOf(encoded)
    if (bytes > MAX_FRAME_PAYLOAD_BYTES) return Promise.reject(this.badValue(`a batch of ${bytes} bytes is over the ${MAX_FRAME_PAYLOAD_BYTES}-byte limit`))
    const firstSeq = this.nextSeq
    this.nextSeq += encoded.length
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ kind: 'records', firstSeq, records: encoded, bytes, resolve, reject })
      this.kick()
    })
  }

  checkpoint(value: S): Promise<number> {
    const refused = this.refusal()
    if (refused) return Promise.reject(refused)
    const text = encodeJson(value)
    if (text === undefined) return Promise.reject(this.badValue('the checkpoint value cannot be written as JSON'))
    const seq = this.nextSeq - 1
    const rolled = new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'roll', startSeq: seq + 1, resolve, reject })
      this.kick()
    })
    // Checkpoints finish in call order, so an older snapshot never replaces a newer one.
    const run = this.checkpoints.then(async () => {
      await rolled
      await writeFileAtomic(this.snapshotPath, encodeSnapshot(this.name, seq, text))
      await this.removeSegmentsBefore(seq + 1)
      return seq
    })
    this.checkpoints = run.catch(() => undefined)
    return run
  }

  async close(): Promise<void> {
    if (this.phase === 'closed') return
    const wasReplaying = this.phase === 'replaying'
    this.phase = 'closed'
    // replay() releases what it opened when it sees the journal closed under it.
    if (!wasReplaying) {
      // A finishing flush loop may start another for appends that arrived meanwhile; wait them all out.
      while (this.flushing !== undefined || this.queue.length > 0) {
        if (this.flushing !== undefined) await this.flushing
        else this.kick()
      }
      await this.checkpoints
      await this.handle?.close().catch(() => undefined)
      this.handle = undefined
    }
    this.opts.onClose?.()
  }

  /** Why a new append or checkpoint must be refused, if it must. */
  private refusal(): StateError | undefined {
    if (this.phase === 'open') return undefined
    if (this.phase === 'failed') return this.failure
    if (this.phase === 'closed') return this.misuse('the journal is closed')
    return this.misuse('call replay() before append() or checkpoint()')
  }

  private kick(): void {
    if (this.flushing !== undefined) return
    // Start a microtask later, so appends issued in the same tick share the first write too.
    this.flushing = Promise.resolve()
      .then(() => this.flushLoop())
      .catch((err: unknown) => {
        this.fail(err, 'append to the journal')
        this.rejectAll(this.failure)
      })
      .finally(() => {
        this.flushing = undefined
        // An append that arrived after the loop's last look but before this callback.
        if (this.queue.length > 0 && this.handle !== undefined) this.kick()
      })
  }

  /** Drains the queue: one frame (one write + fdatasync) per turn for everything gathered meanwhile. */
  private async flushLoop(): Promise<void> {
    for (;;) {
      const head = this.queue[0]
      if (head === undefined) return
      // Never write again after a failure, even while closing.
      if (this.failure !== undefined) return this.rejectAll(this.failure)
      const handle = this.handle
      if (handle === undefined) return this.rejectAll(this.misuse('the journal has no open segment'))
      if (head.kind === 'roll') {
        this.queue.shift()
        try {
          await this.roll(head.startSeq)
        } catch (err) {
          const failure = this.fail(err, 'start a new journal segment')
          head.reject(failure)
          return this.rejectAll(this.failure)
        }
        head.resolve()
        continue
      }
      const batch: Extract<Pending, { kind: 'records' }>[] = []
      let bytes = 0
      for (let next = this.queue[0]; next !== undefined && next.kind === 'records'; next = this.queue[0]) {
        if (batch.length > 0 && bytes + next.bytes > MAX_GROUP_BYTES) break
        batch.push(next)
        bytes += next.bytes
        this.queue.shift()
      }
      const records = batch.flatMap((p) => p.records)
      if (records.length > 0) {
        const firstSeq = (batch[0] as { firstSeq: number }).firstSeq
        try {
          await writeAll(handle, encodeFrame(firstSeq, records))
          await handle.datasync()
        } catch (err) {
          // After a failed write or fsync the file's state is unknown and a retried fsync can
          // falsely succeed (PostgreSQL's "fsyncgate", 2018): stop, and let replay sort it out.
          const failure = this.fail(err, 'append to the journal')
          for (const p of batch) p.reject(failure)
          return this.rejectAll(this.failure)
        }
      }
      for (const p of batch) p.resolve(p.firstSeq + p.records.length - 1)
    }
  }

  /** Moves appends to a new segment starting at `startSeq` (all earlier records are fsynced by now). */
  private async roll(startSeq: number): Promise<void> {
    const current = this.segments[this.segments.length - 1]
    // Nothing appended since the segment began (two checkpoints in a row): keep it.
    if (current !== undefined && current.startSeq === startSeq) return
    const segment = { startSeq, path: join(this.dir, segmentFileName(this.name, startSeq)) }
    const handle = await createSegment(segment.path)
    try {
      await syncDirectory(this.dir)
    } catch (err) {
      await handle.close().catch(() => undefined)
      throw err
    }
    const old = this.handle
    this.handle = handle
    this.segments.push(segment)
    await old?.close().catch(() => undefined)
  }

  private async removeSegmentsBefore(startSeq: number): Promise<void> {
    const writer = this.segments[this.segments.length - 1]
    const doomed = this.segments.filter((s) => s.startSeq < startSeq && s !== writer)
    if (doomed.length === 0) return
    for (const segment of doomed) await removeFile(segment.path)
    this.segments = this.segments.filter((s) => !doomed.includes(s))
    await syncDirectory(this.dir)
  }

  /** Marks the journal failed; returns the error for the operation that failed (IO naming the segment). */
  private fail(err: unknown, action: string): StateError {
    const path = this.writerPath
    const first = err instanceof StateError ? err : ioError(path, action, err)
    this.phase = 'failed'
    this.failure = new StateError(StateErrorCode.JOURNAL_FAILED, path, `an earlier write failed (${first.message}); reopen the state directory to recover`, { cause: first })
    return first
  }

  private rejectAll(err: unknown): void {
    for (const p of this.queue.splice(0)) p.reject(err)
  }

  private misuse(message: string): StateError {
    return new StateError(StateErrorCode.MISUSE, this.writerPath, `journal ${this.name}: ${message}`)
  }

  private badValue(message: string): StateError {
    return new StateError(StateErrorCode.BAD_VALUE, this.writerPath, `journal ${this.name}: ${message}`)
  }
}

/** JSON text of `value`, or undefined when JSON cannot carry it (undefined, a function, BigInt, a cycle). */
function encodeJson(value: unknown): string | undefined {
  try {
    const text = JSON.stringify(value) as string | undefined
    return typeof text === 'string' ? text : undefined
  } catch {
    return undefined
  }
}

interface SnapshotHeader {
  readonly format: string
  readonly version: number
  readonly journal: string
  readonly seq: number
  readonly bytes: number
  readonly crc32: number
}

/**
 * A header line, then the value's JSON and a newline. The header carries the
 * value's length and CRC-32: rename makes the file whole, the CRC makes
 * damage after the fact (a disk, an editor) an error instead of wrong state.
 */
export function encodeSnapshot(journal: string, seq: number, valueJson: string): Buffer {
  const body = Buffer.from(valueJson, 'utf8')
  const header: SnapshotHeader = { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, journal, seq, bytes: body.length, crc32: crc32(body) }
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), body, Buffer.from('\n')])
}

/** The value and sequence number in a snapshot file; throws StateError SNAPSHOT_CORRUPT naming `path`. */
export function decodeSnapshot<S>(path: string, journal: string, bytes: Buffer): { value: S; seq: number } {
  const corrupt = (why: string, cause?: unknown) =>
    new StateError(StateErrorCode.SNAPSHOT_CORRUPT, path, `not a usable snapshot (${why}); it is left in place for inspection`, { cause })
  const newline = bytes.indexOf(0x0a)
  if (newline < 0) throw corrupt('no header line')
  let header: Partial<SnapshotHeader>
  try {
    header = JSON.parse(bytes.subarray(0, newline).toString('utf8')) as Partial<SnapshotHeader>
  } catch (err) {
    throw corrupt('the header line is not JSON', err)
  }
  if (header === null || typeof header !== 'object' || header.format !== SNAPSHOT_FORMAT) throw corrupt(`the header's format is not "${SNAPSHOT_FORMAT}"`)
  if (header.version !== SNAPSHOT_VERSION) throw corrupt(`version ${String(header.version)} is not ${SNAPSHOT_VERSION}`)
  if (header.journal !== journal) throw corrupt(`it belongs to journal "${String(header.journal)}", not "${journal}"`)
  const { seq, bytes: length, crc32: crc } = header
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw corrupt('the header has no valid seq')
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw corrupt('the header has no valid bytes')
  if (bytes.length !== newline + 1 + length + 1 || bytes[bytes.length - 1] !== 0x0a) {
    throw corrupt(`the value should be ${length} bytes and a newline, the file has ${bytes.length - newline - 1} after the header`)
  }
  const body = bytes.subarray(newline + 1, newline + 1 + length)
  if (crc32(body) !== crc) throw corrupt('CRC-32 mismatch')
  try {
    return { value: JSON.parse(body.toString('utf8')) as S, seq }
  } catch (err) {
    throw corrupt('the value is not JSON', err)
  }
}

async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let written = 0
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, null)
    written += bytesWritten
  }
}

async function openForAppend(path: string): Promise<FileHandle> {
  return open(path, 'a', 0o600).catch((err: unknown) => {
    throw ioError(path, 'open the journal segment for appending', err)
  })
}

/** Creates an empty segment (failing if the file exists: a segment is never overwritten). */
async function createSegment(path: string): Promise<FileHandle> {
  return open(path, 'ax', 0o600).catch((err: unknown) => {
    throw ioError(path, 'create the journal segment', err)
  })
}

/** Cuts `path` to `length` bytes and fsyncs it, so the cut is not undone by a crash. */
async function truncateDurably(path: string, length: number): Promise<void> {
  try {
    const handle = await open(path, 'r+')
    try {
      await handle.truncate(length)
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw ioError(path, `cut the torn tail off at byte ${length}`, err)
  }
}

/** Removes a file; false when it was already gone. */
async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw ioError(path, 'remove', err)
  }
}
