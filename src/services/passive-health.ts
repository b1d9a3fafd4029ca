/**
 * Passive health: what the measurements say about a target. Probes that
 * fail (`ok: false`) are counted per target in one-second buckets over a
 * sliding window; a target is degraded while, within the window, at least
 * `minReports` reports of it arrived and `failurePct` % or more of them
 * failed. A degraded target loses new clients (steering treats it like a
 * drain) until the window shows it healthy again, so one bad minute from
 * real clients moves traffic even when the active check still passes
 * (the check sees the node, clients see the path).
 */

export interface PassiveHealthOptions {
  readonly failurePct: number
  readonly minReports: number
  readonly windowSec: number
}

export interface PassiveVerdict {
  readonly degraded: boolean
  readonly reports: number
  readonly failures: number
  /** When the verdict last changed, ms since the epoch. */
  readonly changedAtMs: number | undefined
}

export class PassiveHealth {
  private readonly windowSec: number
  /** Per target: ring of per-second [total, failed] counts, and the second each slot holds. */
  private readonly totals: Uint32Array[]
  private readonly failures: Uint32Array[]
  private readonly slotSecond: Float64Array[]
  private readonly verdict: boolean[]
  private readonly changedAtMs: (number | undefined)[]

  constructor(
    private readonly opts: PassiveHealthOptions,
    targetCount: number,
  ) {
    this.windowSec = Math.max(1, Math.floor(opts.windowSec))
    this.totals = Array.from({ length: targetCount }, () => new Uint32Array(this.windowSec))
    this.failures = Array.from({ length: targetCount }, () => new Uint32Array(this.windowSec))
    this.slotSecond = Array.from({ length: targetCount }, () => new Float64Array(this.windowSec).fill(-1))
    this.verdict = new Array<boolean>(targetCount).fill(false)
    this.changedAtMs = new Array<number | undefined>(targetCount).fill(undefined)
  }

  /** Counts one report of `target` made at `nowMs` (its own time; reports older than the window count for nothing). */
  record(target: number, ok: boolean, nowMs: number): void {
    const totals = this.totals[target]
    const failures = this.failures[target]
    const seconds = this.slotSecond[target]
    if (!totals || !failures || !seconds) return
    const second = Math.floor(nowMs / 1000)
    const slot = second % this.windowSec
    // Older than what the slot holds now: outside the window already (a replayed report).
    if ((seconds[slot] as number) > second) return
    if (seconds[slot] !== second) {
      seconds[slot] = second
      totals[slot] = 0
      failures[slot] = 0
    }
    totals[slot] = (totals[slot] as number) + 1
    if (!ok) failures[slot] = (failures[slot] as number) + 1
  }

  /**
   * Re-evaluates every target at `nowMs`; returns the indices whose verdict
   * changed (empty when none), so the caller publishes only on change.
   */
  evaluate(nowMs: number): number[] {
    const changed: number[] = []
    for (let target = 0; target < this.totals.length; target++) {
      const { reports, failures } = this.counts(target, nowMs)
      const degraded = reports >= this.opts.minReports && failures * 100 >= this.opts.failurePct * reports
      if (degraded !== this.verdict[target]) {
        this.verdict[target] = degraded
        this.changedAtMs[target] = nowMs
        changed.push(target)
      }
    }
    return changed
  }

  verdictOf(target: number, nowMs: number): PassiveVerdict {
    const { reports, failures } = this.counts(target, nowMs)
    return { degraded: this.verdict[target] === true, reports, failures, changedAtMs: this.changedAtMs[target] }
  }

  private counts(target: number, nowMs: number): { reports: number; failures: number } {
    const totals = this.totals[target]
    const fails = this.failures[target]
    const seconds = this.slotSecond[target]
    if (!totals || !fails || !seconds) return { reports: 0, failures: 0 }
    const oldest = Math.floor(nowMs / 1000) - this.windowSec + 1
    let reports = 0
    let failures = 0
    for (let slot = 0; slot < this.windowSec; slot++) {
      if ((seconds[slot] as number) >= oldest) {
        reports += totals[slot] as number
        failures += fails[slot] as number
      }
    }
    return { reports, failures }
  }
}
