/**
 * The registry of geo/ error codes and the one helper that makes a coded
 * error. Codes are stable (tests and the control plane match on them) and are
 * never reused or renamed. Must not import anything outside geo/.
 */

/** Every code a geo/ error or list problem can carry. */
export const GEO_ERROR = {
  /** A network that is not "ADDRESS/LEN", has host bits set, repeats, or lies in an aliased range. */
  BAD_NETWORK: 'STEER_ERR_GEO_BAD_NETWORK',
  /** A record value the MaxMind DB data section cannot hold (undefined, function, out-of-range integer). */
  BAD_RECORD: 'STEER_ERR_GEO_BAD_RECORD',
  /** A network list line whose fields are wrong (coordinates, country, continent, column count). */
  BAD_LIST_LINE: 'STEER_ERR_GEO_BAD_LIST_LINE',
  /** A file that could not be read (missing, permissions). */
  UNREADABLE: 'STEER_ERR_GEO_UNREADABLE',
  /** A file that was read but is not a usable MaxMind DB (truncated, corrupt, wrong layout). */
  INVALID: 'STEER_ERR_GEO_INVALID',
  /** A database file that could not be written (directory missing, permissions, disk full). */
  WRITE_FAILED: 'STEER_ERR_GEO_WRITE_FAILED',
} as const

export type GeoErrorCode = (typeof GEO_ERROR)[keyof typeof GEO_ERROR]

/** An Error carrying a geo code; `cause` is the underlying error when there is one. */
export interface GeoError extends Error {
  readonly code: GeoErrorCode
}

/** Builds a coded error (never throws itself). */
export function geoError(code: GeoErrorCode, message: string, cause?: unknown): GeoError {
  const err = cause === undefined ? new Error(message) : new Error(message, { cause })
  return Object.assign(err, { code })
}
