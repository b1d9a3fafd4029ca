/**
 * The error a latency map raises: a JSON map that cannot be read or is
 * invalid (every problem at once, each with its JSON path, e.g.
 * `entries[3].targets[1].id`), or a builder fed input its caller should have
 * checked. The previous map keeps serving; nothing here touches it.
 */

/** Stable codes, never reused. */
export const MapErrorCode = {
  /** The map document is not valid JSON or breaks a rule; see `problems`. */
  INVALID: 'STEER_ERR_MAP_INVALID',
  /** The map file could not be read (missing, permissions, too large for a string). */
  UNREADABLE: 'STEER_ERR_MAP_UNREADABLE',
  /** A builder was given out-of-range input (a caller's bug, not a document's). */
  BUILD_INPUT: 'STEER_ERR_MAP_BUILD_INPUT',
} as const

export type MapErrorCode = (typeof MapErrorCode)[keyof typeof MapErrorCode]

export interface MapProblem {
  /** JSON path in the document, e.g. `entries[3].prefix`; "" for the whole document. */
  readonly path: string
  readonly message: string
}

export class MapError extends Error {
  readonly code: MapErrorCode
  readonly problems: readonly MapProblem[]
  /** The file the map came from, when it came from one. */
  readonly file: string | undefined

  constructor(code: MapErrorCode, problems: readonly MapProblem[], options: { file?: string; cause?: unknown } = {}) {
    const where = options.file ? `${options.file}: ` : ''
    super(problems.map((p) => where + formatMapProblem(p)).join('\n'), { cause: options.cause })
    this.name = 'MapError'
    this.code = code
    this.problems = problems
    this.file = options.file
  }
}

/** `path: message`, or just the message for the whole document. */
export function formatMapProblem(p: MapProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message
}

/** A BUILD_INPUT error with one problem; for builders rejecting a caller's bad arguments. */
export function buildInputError(message: string): MapError {
  return new MapError(MapErrorCode.BUILD_INPUT, [{ path: '', message }])
}
