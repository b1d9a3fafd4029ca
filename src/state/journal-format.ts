/**
 * The journal's bytes on disk: segment file names, frames, and the scan that
 * reads a segment back and tells a torn tail (a crash mid-write, normal) from
 * damage to acknowledged records (an error).
 *
 * A segment `NAME.SSSSSSSSSSSSSSSS.wal` (S: the sequence number of its first
 * record, 16 decimal digits so names sort numerically) is a run of frames.
 * One frame is one group commit: the records of every append() call that the
 * writer batched into one write(2) + fdatasync(2). All integers little-endian:
 *
 *   offset  size  field
 *   0       4     magic FF 53 4A 31 ("\xFFSJ1"; 0xFF never occurs in UTF-8, so never in record text)
 *   4       4     CRC-32 of bytes 8 .. end of frame
 *   8       4     payload length in bytes
 *   12      4     record count
 *   16      8     sequence number of the first record (the others follow, +1 each)
 *   24      ...   per record: u32 length in bytes, then that many bytes of UTF-8 JSON
 *
 * Why a frame per write rather than per record: the writer has at most one
 * un-fsynced write outstanding, so a crash can damage only the last frame. A
 * bad frame with nothing good after it is therefore a torn write (cut off,
 * its records were never acknowledged); a bad frame followed by a good one
 * cannot come from a crash and means acknowledged data was damaged. With a
 * frame per record, a crash could leave good records after a torn one inside
 * the same unsynced write (filesystems may persist its pages in any order),
 * and the two cases could not be told apart. It also makes each append()
 * batch all-or-nothing after a crash.
 */
import type { FileHandle } from 'node:fs/promises'
import { open } from 'node:fs/promises'
import { crc32 } from './crc32.js'
import { ioError, StateError, StateErrorCode } from './state-error.js'

export const FRAME_HEADER_BYTES = 24
const MAGIC = Buffer.from([0xff, 0x53, 0x4a, 0x31])
const MAGIC_U32 = MAGIC.readUInt32LE(0)
/** One append() may carry at most this many bytes (records plus their 4-byte length prefixes): 64 MiB. */
export const MAX_FRAME_PAYLOAD_BYTES = 64 * 1024 * 1024
/** Bytes read per step while scanning: 1 MiB keeps syscalls few without holding much memory. */
const READ_CHUNK_BYTES = 1024 * 1024
const SEQ_DIGITS = 16

/** `NAME.0000000000000001.wal`; 16 digits hold Number.MAX_SAFE_INTEGER. */
export function segmentFileName(journal: string, startSeq: number): string {
  return `${journal}.${String(startSeq).padStart(SEQ_DIGITS, '0')}.wal`
}

/** The start sequence number of a segment file of `journal`, or undefined for any other file name. */
export function parseSegmentFileName(journal: string, fileName: string): number | undefined {
  const prefix = `${journal}.`
  if (!fileName.startsWith(prefix) || !fileName.endsWith('.wal')) return undefined
  const digits = fileName.slice(prefix.length, -'.wal'.length)
  if (digits.length !== SEQ_DIGITS || !/^\d+$/.test(digits)) return undefined
  const seq = Number(digits)
  return Number.isSafeInteger(seq) && seq >= 1 ? seq : undefined
}

/** Total payload bytes `records` take in a frame (each record plus its length prefix). */
export function payloadBytesOf(records: readonly Uint8Array[]): number {
  let bytes = 0
  for (const r of records) bytes += 4 + r.length
  return bytes
}

/** One frame holding `records` (already-encoded JSON), the first with sequence number `firstSeq`. */
export function encodeFrame(firstSeq: number, records: readonly Uint8Array[]): Buffer {
  const payloadBytes = payloadBytesOf(records)
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes)
  MAGIC.copy(frame, 0)
  frame.writeUInt32LE(payloadBytes, 8)
  frame.writeUInt32LE(records.length, 12)
  frame.writeBigUInt64LE(BigInt(firstSeq), 16)
  let at = FRAME_HEADER_BYTES
  for (const r of records) {
    frame.writeUInt32LE(r.length, at)
    frame.set(r, at + 4)
    at += 4 + r.length
  }
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4)
  return frame
}

interface Frame {
  readonly firstSeq: number
  readonly count: number
  /** The whole frame, header included; a view into the reader's window, valid until its next read. */
  readonly bytes: Buffer
}

/** Reads a file through one sliding window of at least READ_CHUNK_BYTES. */
class WindowReader {
  private window: Buffer = Buffer.alloc(0)
  private windowStart = 0

  constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
  ) {}

  /** `length` bytes at `offset` (offset + length ≤ size); the view is valid until the next call. */
  async at(offset: number, length: number): Promise<Buffer> {
    const from = offset - this.windowStart
    if (from >= 0 && from + length <= this.window.length) return this.window.subarray(from, from + length)
    const want = Math.min(Math.max(length, READ_CHUNK_BYTES), this.size - offset)
    const buf = Buffer.allocUnsafe(want)
    let filled = 0
    while (filled < want) {
      const { bytesRead } = await this.handle.read(buf, filled, want - filled, offset + filled).catch((err: unknown) => {
        throw ioError(this.path, 'read', err)
      })
      if (bytesRead === 0) break
      filled += bytesRead
    }
    if (filled < length) throw ioError(this.path, 'read', new Error(`file shrank while being read (wanted ${length} bytes at offset ${offset})`))
    this.window = buf.subarray(0, filled)
    this.windowStart = offset
    return this.window.subarray(0, length)
  }

  /** The frame at `offset` if its header, length and CRC-32 are sound; undefined otherwise. Never throws for content. */
  async frameAt(offset: number): Promise<Frame | undefined> {
    if (this.size - offset < FRAME_HEADER_BYTES) return undefined
    const header = await this.at(offset, FRAME_HEADER_BYTES)
    if (header.readUInt32LE(0) !== MAGIC_U32) return undefined
    const payloadBytes = header.readUInt32LE(8)
    if (payloadBytes > MAX_FRAME_PAYLOAD_BYTES || payloadBytes > this.size - offset - FRAME_HEADER_BYTES) return undefined
    const bytes = await this.at(offset, FRAME_HEADER_BYTES + payloadBytes)
    if (crc32(bytes.subarray(8)) !== bytes.readUInt32LE(4)) return undefined
    const firstSeq = Number(bytes.readBigUInt64LE(16))
    return { firstSeq, count: bytes.readUInt32LE(12), bytes }
  }

  /** Offset of the first sound frame starting after `offset`, or undefined. Only runs on the damage path. */
  async nextFrameAfter(offset: number): Promise<number | undefined> {
    let from = offset + 1
    while (from + FRAME_HEADER_BYTES <= this.size) {
      const chunk = await this.at(from, Math.min(READ_CHUNK_BYTES, this.size - from))
      const hit = chunk.indexOf(MAGIC)
      if (hit < 0) {
        // Keep the last 3 bytes: a magic may straddle two chunks.
        from += chunk.length - (MAGIC.length - 1)
        continue
      }
      if ((await this.frameAt(from + hit)) !== undefined) return from + hit
      from += hit + 1
    }
    return undefined
  }
}

export interface SegmentScan {
  /** The sequence number the next record after this segment's last good one would have. */
  readonly nextSeq: number
  /** Bytes from the start of the file up to the end of the last good frame. */
  readonly goodBytes: number
  /** Size of the file as found; more than goodBytes when its tail is torn. */
  readonly fileBytes: number
}

/**
 * Reads a segment whose first record is `startSeq`, calling `onRecord` with
 * each record's sequence number and JSON bytes (a view, valid only during the
 * call) in order. Stops at the first bad frame when nothing good follows it
 * (a torn tail; the caller cuts the file at `goodBytes`). Throws StateError
 * STEER_ERR_STATE_JOURNAL_CORRUPT (with `offset`) for a bad frame followed by
 * a good one, a sound frame out of sequence, or a sound frame whose records
 * do not fill its payload exactly; STEER_ERR_STATE_IO when reading fails.
 * Errors thrown by `onRecord` propagate.
 */
export async function scanSegment(path: string, startSeq: number, onRecord: (seq: number, bytes: Buffer, frameOffset: number) => void): Promise<SegmentScan> {
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw ioError(path, 'open the journal segment', err)
  })
  try {
    const size = (await handle.stat().catch((err: unknown) => {
      throw ioError(path, 'stat', err)
    })).size
    const reader = new WindowReader(handle, path, size)
    let offset = 0
    let seq = startSeq
    while (offset < size) {
      const frame = await reader.frameAt(offset)
      if (frame === undefined) {
        const later = await reader.nextFrameAfter(offset)
        if (later !== undefined) {
          throw new StateError(
            StateErrorCode.JOURNAL_CORRUPT,
            path,
            `bad frame at byte ${offset} but a sound frame follows at byte ${later}: acknowledged records are damaged (a crash only tears the last frame)`,
            { offset },
          )
        }
        break
      }
      if (frame.firstSeq !== seq) {
        throw new StateError(StateErrorCode.JOURNAL_CORRUPT, path, `frame at byte ${offset} starts at record ${frame.firstSeq}, expected ${seq}`, { offset })
      }
      const records = splitRecords(frame)
      if (records === undefined) {
        throw new StateError(StateErrorCode.JOURNAL_CORRUPT, path, `frame at byte ${offset} has a sound CRC but its records do not fill its payload`, { offset })
      }
      for (let i = 0; i < records.length; i++) onRecord(seq + i, records[i] as Buffer, offset)
      seq += frame.count
      offset += frame.bytes.length
    }
    return { nextSeq: seq, goodBytes: offset, fileBytes: size }
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/** The records of a sound frame, or undefined when their lengths do not add up to the payload. */
function splitRecords(frame: Frame): Buffer[] | undefined {
  const out: Buffer[] = []
  const end = frame.bytes.length
  let at = FRAME_HEADER_BYTES
  for (let i = 0; i < frame.count; i++) {
    if (end - at < 4) return undefined
    const length = frame.bytes.readUInt32LE(at)
    if (length > end - at - 4) return undefined
    out.push(frame.bytes.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return at === end ? out : undefined
}
