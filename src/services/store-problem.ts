/**
 * Shared-store failures as the API reports them: Redis unreachable or slow
 * is a 503 that says so (never a 500, never a hang: every store call is
 * bounded by store.timeoutMs).
 */
import { ApiProblem } from '../control/index.js'
import { isStoreError, StoreErrorCode } from '../store/index.js'

/** Runs `call`; a StoreError becomes ApiProblem 503 naming the store. Anything else passes through. */
export async function withStore<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw toApiProblem(err)
  }
}

export function toApiProblem(err: unknown): unknown {
  if (isStoreError(err, StoreErrorCode.UNAVAILABLE)) {
    return new ApiProblem(503, undefined, `shared state unavailable (${err.message}); the change was not acknowledged: retry, another control node cannot help while the store is down`)
  }
  if (isStoreError(err, StoreErrorCode.CONTENDED)) return new ApiProblem(503, undefined, `${err.message}; retry`)
  return err
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
export function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    promise.then(
      () => {
        clearTimeout(timer)
        resolve()
      },
      () => {
        clearTimeout(timer)
        resolve()
      },
    )
  })
}
