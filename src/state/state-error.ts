/**
 * The registry of state/ error codes and the error class they travel in.
 * Every state error names the file (or directory) it is about: an operator
 * reading a log line must know which file to look at. Codes are stable (tests
 * and the control plane match on them) and are never reused or renamed.
 * Must not import anything outside state/.
 */

/** Every code a state/ error can carry. */
export const StateErrorCode = {
  /** Another live process holds the state directory's lock; `pid` says which. */
  LOCKED: 'STEER_ERR_STATE_LOCKED',
  /** A filesystem call failed (permissions, disk full, not a directory); `cause` is the system error. */
  IO: 'STEER_ERR_STATE_IO',
  /** A snapshot file is not what a checkpoint writes (bad header, length or CRC-32). Never discarded silently. */
  SNAPSHOT_CORRUPT: 'STEER_ERR_STATE_SNAPSHOT_CORRUPT',
  /** A document is not valid JSON. Never discarded silently. */
  DOCUMENT_CORRUPT: 'STEER_ERR_STATE_DOCUMENT_CORRUPT',
  /**
   * Journal damage that a crash cannot explain: a bad frame followed by a good
   * one (acknowledged records were damaged), or a good frame out of sequence.
   * `offset` is the byte offset of the first bad frame.
   */
  JOURNAL_CORRUPT: 'STEER_ERR_STATE_JOURNAL_CORRUPT',
  /** Records between the snapshot and the journal segments are missing (a segment or the snapshot was removed). */
  JOURNAL_GAP: 'STEER_ERR_STATE_JOURNAL_GAP',
  /** A write or fsync failed earlier; the journal accepts nothing more until it is reopened (and replayed). */
  JOURNAL_FAILED: 'STEER_ERR_STATE_JOURNAL_FAILED',
  /** A record or snapshot value that JSON cannot carry (undefined, BigInt, a cycle) or that is too large. */
  BAD_VALUE: 'STEER_ERR_STATE_BAD_VALUE',
  /** The API used out of order: append before replay, replay twice, a journal opened twice, use after close, a bad name. */
  MISUSE: 'STEER_ERR_STATE_MISUSE',
} as const

export type StateErrorCode = (typeof StateErrorCode)[keyof typeof StateErrorCode]

export class StateError extends Error {
  readonly code: StateErrorCode
  /** The file or directory the error is about (absolute when the caller gave an absolute path). */
  readonly file: string
  /** Byte offset in `file`, for corruption. */
  readonly offset: number | undefined
  /** The process holding the lock, for LOCKED. */
  readonly pid: number | undefined

  constructor(code: StateErrorCode, file: string, message: string, options: { cause?: unknown; offset?: number; pid?: number } = {}) {
    super(`${file}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'StateError'
    this.code = code
    this.file = file
    this.offset = options.offset
    this.pid = options.pid
  }
}

/** An IO error for `file` wrapping a system error; the message keeps the errno code (ENOSPC, EACCES). */
export function ioError(file: string, action: string, cause: unknown): StateError {
  const detail = cause instanceof Error ? cause.message : String(cause)
  return new StateError(StateErrorCode.IO, file, `cannot ${action}: ${detail}`, { cause })
}
