/**
 * The registry of health/ error codes and the error class they travel in.
 * Codes are stable (tests and callers match on them) and never reused.
 * Raised when the checker is built or misused, never for a failing target:
 * a failed check is a value (HealthState.lastError), not an exception.
 * Must not import anything outside health/.
 */

/** Every code a health/ error can carry. */
export const HealthErrorCode = {
  /** Check specs break a rule (both or neither of http/tcp, bad URL, rise < 1, duplicate target); see `problems`. */
  SPEC_INVALID: 'STEER_ERR_HEALTH_SPEC_INVALID',
  /** checkNow() for a target that has no check. */
  UNKNOWN_TARGET: 'STEER_ERR_HEALTH_UNKNOWN_TARGET',
  /** start(), firstRound() or checkNow() after stop(). */
  STOPPED: 'STEER_ERR_HEALTH_STOPPED',
} as const

export type HealthErrorCode = (typeof HealthErrorCode)[keyof typeof HealthErrorCode]

export interface HealthProblem {
  /** Path in the checked specs, e.g. `[2].tcp`. */
  readonly path: string
  readonly message: string
}

export class HealthError extends Error {
  readonly code: HealthErrorCode
  readonly problems: readonly HealthProblem[]

  constructor(code: HealthErrorCode, message: string, problems: readonly HealthProblem[] = []) {
    super(problems.length === 0 ? message : `${message}\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`)
    this.name = 'HealthError'
    this.code = code
    this.problems = problems
  }
}
