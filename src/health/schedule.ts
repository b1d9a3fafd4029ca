/**
 * When the next check of a target starts. Pure arithmetic over an injected
 * random source in [0, 1), so tests pin the jitter.
 *
 * Jitter is a factor in [0.9, 1.0) of the interval, never above it: with the
 * next check starting at most one interval after the previous one started,
 * the fall-th failure of a target that died is known within
 * fall × intervalMs + timeoutMs (issue 5 asks for fall × interval + 1 s; a
 * factor up to 1.1 would add 0.1 × fall × interval, 300 ms at the defaults
 * and several seconds at longer intervals). The cost is up to 11 % more
 * checks than the interval says.
 */

const MIN_FACTOR = 0.9

/** Delay before a target's first periodic check, ms: a random offset in [0, intervalMs) so many targets' checks do not align. */
export function firstDelayMs(intervalMs: number, random: () => number): number {
  return clampUnit(random()) * intervalMs
}

/** Start-to-start gap between two checks of one target, ms: intervalMs × [0.9, 1.0). */
export function nextIntervalMs(intervalMs: number, random: () => number): number {
  return intervalMs * (MIN_FACTOR + (1 - MIN_FACTOR) * clampUnit(random()))
}

/** A random source that strays outside [0, 1) (a bad test double) must not stretch the interval past the bound. */
function clampUnit(x: number): number {
  if (!(x >= 0)) return 0
  return x >= 1 ? 0.999999 : x
}
