/**
 * The errors measure/ raises: a batch that cannot be read at all (each report
 * of a readable batch is judged on its own and never throws), a snapshot that
 * cannot be restored, and options a factory refuses. Codes are stable and
 * never reused; the control plane maps them to HTTP status codes.
 */

export const MeasureErrorCode = {
  /** The body is not a batch: not an object, or `reports` is not an array. See `problems`. */
  BATCH_INVALID: 'STEER_ERR_MEASURE_BATCH_INVALID',
  /** The batch holds more samples than the limit allows. */
  BATCH_TOO_LARGE: 'STEER_ERR_MEASURE_BATCH_TOO_LARGE',
  /** An aggregator snapshot is malformed or of an unknown format; nothing was restored. */
  SNAPSHOT_INVALID: 'STEER_ERR_MEASURE_SNAPSHOT_INVALID',
  /** compile() or compileAsync() was called while a compileAsync() was under way. */
  COMPILE_BUSY: 'STEER_ERR_MEASURE_COMPILE_BUSY',
  /** A factory was given options out of range (a caller's bug or an unchecked config). */
  BAD_OPTIONS: 'STEER_ERR_MEASURE_BAD_OPTIONS',
} as const

export type MeasureErrorCode = (typeof MeasureErrorCode)[keyof typeof MeasureErrorCode]

export interface MeasureProblem {
  /** JSON path, e.g. `reports` or `keys[3].e[0]`; "" for the whole value. */
  readonly path: string
  readonly message: string
}

export class MeasureError extends Error {
  readonly code: MeasureErrorCode
  readonly problems: readonly MeasureProblem[]

  constructor(code: MeasureErrorCode, problems: readonly MeasureProblem[], options: { cause?: unknown } = {}) {
    super(problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n'), { cause: options.cause })
    this.name = 'MeasureError'
    this.code = code
    this.problems = problems
  }
}

/** A MeasureError with one problem. */
export function measureError(code: MeasureErrorCode, path: string, message: string): MeasureError {
  return new MeasureError(code, [{ path, message }])
}
