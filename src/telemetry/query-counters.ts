/**
 * Plain counters the data plane increments on every query: cheap integer adds,
 * no labels resolved per query. Exported to metrics and logs by the control
 * plane, which reads them; the query path only writes.
 */

export interface QueryCounters {
  /** Messages received, by transport. */
  received: { udp: number; tcp: number }
  /** Responses sent, by rcode number. */
  responsesByRcode: Map<number, number>
  /** Messages dropped without an answer, by reason (QR=1, runt, oversized...). */
  droppedByReason: Map<string, number>
  /** Responses that carried TC=1. */
  truncated: number
  /** Handler exceptions caught (must stay 0: every one is a bug). */
  internalErrors: number
}

/** A fresh set of counters, all zero. */
export function createQueryCounters(): QueryCounters {
  return {
    received: { udp: 0, tcp: 0 },
    responsesByRcode: new Map(),
    droppedByReason: new Map(),
    truncated: 0,
    internalErrors: 0,
  }
}

/** Adds one to a keyed counter. */
export function bump<K>(counter: Map<K, number>, key: K): void {
  counter.set(key, (counter.get(key) ?? 0) + 1)
}
