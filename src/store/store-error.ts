/**
 * Coded errors of the shared store (STEER_ERR_STORE_*). The control plane
 * maps UNAVAILABLE to HTTP 503: Redis did not answer in time or is not
 * connected, and the change may or may not have been applied.
 */

export const StoreErrorCode = {
  /** Not connected, or no reply within store.timeoutMs. */
  UNAVAILABLE: 'STEER_ERR_STORE_UNAVAILABLE',
  /** A value in Redis is not what this version of steerdns writes (hand edits, another program). */
  CORRUPT: 'STEER_ERR_STORE_CORRUPT',
  /** Optimistic writes kept colliding with other nodes' writes. */
  CONTENDED: 'STEER_ERR_STORE_CONTENDED',
} as const
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode]

export class StoreError extends Error {
  readonly code: StoreErrorCode

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreError'
    this.code = code
  }
}

/** True for a StoreError with that code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code)
}
