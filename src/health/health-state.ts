/**
 * The per-target health state machine, pure: a state and one check result
 * give the next state. No timers, no sockets, the clock is an argument.
 *
 * - unknown (never checked, no seed): the first result decides, success → up,
 *   failure → down, so one round of checks leaves nothing unknown.
 * - up → down only after `fall` consecutive failures; down → up only after
 *   `rise` consecutive successes. A result never flips a decided state on its
 *   own (unless rise or fall is 1), so an endpoint alternating ok/fail keeps
 *   its state and answers do not alternate.
 * - A seeded state (persisted before a restart) is a decided state with both
 *   counters at zero: the same hysteresis applies to it (README.md says why).
 */

/** unknown: not checked yet (serves); up: serves; down: removed from answers. */
export type HealthCheckStatus = 'unknown' | 'up' | 'down'

/** One target's health as the checker knows it. Immutable: every result makes a new object. */
export interface HealthState {
  readonly status: HealthCheckStatus
  /** ms since the epoch of the last status change (a seed keeps its own), undefined while unknown. */
  readonly changedAtMs: number | undefined
  /** Successes in a row up to the latest result (0 after a failure). */
  readonly consecutiveOk: number
  /** Failures in a row up to the latest result (0 after a success). */
  readonly consecutiveFail: number
  /** Why the latest check failed (`ECONNREFUSED`, `timeout after 500 ms`, `status 503`); absent when it passed. */
  readonly lastError?: string
  /** ms since the epoch when the latest check finished. */
  readonly lastCheckMs?: number
  /** How long the latest check took, ms (monotonic clock). */
  readonly lastDurationMs?: number
}

/** The outcome of one probe. */
export interface ProbeResult {
  readonly ok: boolean
  /** A short reason when not ok. */
  readonly error?: string
}

export interface Thresholds {
  /** Consecutive successes that make a down target up (≥ 1). */
  readonly rise: number
  /** Consecutive failures that make an up target down (≥ 1). */
  readonly fall: number
}

/** The state of a target before any result or seed. */
export const UNKNOWN_STATE: HealthState = Object.freeze({ status: 'unknown', changedAtMs: undefined, consecutiveOk: 0, consecutiveFail: 0 })

/** A persisted state to start from: decided, counters at zero. A non-finite changedAtMs becomes undefined. */
export function seededState(status: 'up' | 'down', changedAtMs: number): HealthState {
  return Object.freeze({ status, changedAtMs: Number.isFinite(changedAtMs) ? changedAtMs : undefined, consecutiveOk: 0, consecutiveFail: 0 })
}

/**
 * The state after `result`, finished at `nowMs` (ms since the epoch) after
 * `durationMs`. Pure; never throws.
 */
export function nextHealthState(prev: HealthState, result: ProbeResult, t: Thresholds, nowMs: number, durationMs: number): HealthState {
  const consecutiveOk = result.ok ? prev.consecutiveOk + 1 : 0
  const consecutiveFail = result.ok ? 0 : prev.consecutiveFail + 1
  let status = prev.status
  if (status === 'unknown') status = result.ok ? 'up' : 'down'
  else if (status === 'up' && consecutiveFail >= t.fall) status = 'down'
  else if (status === 'down' && consecutiveOk >= t.rise) status = 'up'
  const changedAtMs = status === prev.status ? prev.changedAtMs : nowMs
  const base = { status, changedAtMs, consecutiveOk, consecutiveFail, lastCheckMs: nowMs, lastDurationMs: durationMs }
  return Object.freeze(result.ok ? base : { ...base, lastError: result.error ?? 'failed' })
}
