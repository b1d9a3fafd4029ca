/**
 * The last few hundred steering decisions, for the status page and the API
 * (`GET /v1/decisions`). The query path writes into preallocated slots,
 * keeping references to objects the decision already made (the qname, the
 * client key, the chosen targets), so recording costs a few stores and no
 * allocation; the text is made only when someone reads.
 */
import { formatPrefix } from '../steering/index.js'
import type { ClientKey, SteeringSetup } from '../steering/index.js'
import { toFqdn } from '../wire/index.js'

class Slot {
  atMs = 0
  qname = ''
  qtype = 0
  key: ClientKey | undefined = undefined
  rule = ''
  targets: readonly number[] = []
  scopePrefixLen = 0
  ttlSec = 0
}

export interface DecisionRecord {
  /** RFC 3339. */
  readonly at: string
  readonly name: string
  readonly type: string
  /** The client key ("198.51.100.0/24") and where it came from. */
  readonly key: string
  readonly keySource: string
  readonly rule: string
  readonly answerTargets: readonly string[]
  readonly scopePrefixLen: number
  readonly ttlSec: number
}

/** One decision as recorded (worker processes send these to the primary). */
export interface RawDecision {
  readonly atMs: number
  readonly qname: string
  readonly qtype: number
  readonly key: ClientKey
  readonly rule: string
  readonly targets: readonly number[]
  readonly scopePrefixLen: number
  readonly ttlSec: number
}

export class RecentDecisions {
  private readonly slots: Slot[]
  private next = 0
  private count = 0
  /** Decisions recorded since construction: a cursor for since(). */
  private total = 0

  constructor(readonly capacity = 256) {
    this.slots = Array.from({ length: capacity }, () => new Slot())
  }

  record(atMs: number, qname: string, qtype: number, key: ClientKey, rule: string, targets: readonly number[], scopePrefixLen: number, ttlSec: number): void {
    const slot = this.slots[this.next] as Slot
    slot.atMs = atMs
    slot.qname = qname
    slot.qtype = qtype
    slot.key = key
    slot.rule = rule
    slot.targets = targets
    slot.scopePrefixLen = scopePrefixLen
    slot.ttlSec = ttlSec
    this.next = (this.next + 1) % this.capacity
    if (this.count < this.capacity) this.count++
    this.total++
  }

  /** A cursor: decisions recorded so far. */
  get recorded(): number {
    return this.total
  }

  /** Decisions recorded after `cursor`, oldest first (at most `capacity`: older ones were overwritten). */
  since(cursor: number): RawDecision[] {
    const n = Math.min(this.total - cursor, this.count)
    const out: RawDecision[] = []
    for (let i = n; i >= 1; i--) {
      const slot = this.slots[(this.next - i + this.capacity) % this.capacity] as Slot
      if (slot.key) out.push({ atMs: slot.atMs, qname: slot.qname, qtype: slot.qtype, key: slot.key, rule: slot.rule, targets: slot.targets, scopePrefixLen: slot.scopePrefixLen, ttlSec: slot.ttlSec })
    }
    return out
  }

  /** Newest first, at most `limit`. Target indices are named from `setup`. */
  list(limit: number, setup: SteeringSetup | undefined): DecisionRecord[] {
    const out: DecisionRecord[] = []
    for (let i = 1; i <= Math.min(limit, this.count); i++) {
      const slot = this.slots[(this.next - i + this.capacity) % this.capacity] as Slot
      out.push({
        at: new Date(slot.atMs).toISOString(),
        name: toFqdn(slot.qname),
        type: slot.qtype === 28 ? 'AAAA' : slot.qtype === 1 ? 'A' : String(slot.qtype),
        key: slot.key ? formatPrefix(slot.key) : '',
        keySource: slot.key?.source ?? '',
        rule: slot.rule,
        answerTargets: slot.targets.map((t) => setup?.targets[t]?.id ?? String(t)),
        scopePrefixLen: slot.scopePrefixLen,
        ttlSec: slot.ttlSec,
      })
    }
    return out
  }
}
