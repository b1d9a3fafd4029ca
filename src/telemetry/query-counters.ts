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
  /** Questions answered, by QTYPE number. */
  queriesByType: Map<number, number>
  /** Steering decisions, by rule (map, geo, default, override, all-down, no-address). */
  decisionsByRule: Map<string, number>
  /** Queries that carried a valid ECS option. */
  ecsQueries: number
  /** ECS scope returned, by prefix length (index 0..128), for queries with ECS. */
  scopeCounts: Uint32Array
  /** Query handling time: counts per bucket of HANDLING_BUCKETS_SEC (last: +Inf), and the sum. */
  handlingCounts: Uint32Array
  handlingSumSec: number
  /** Answer cache lookups (query/answer-cache.ts): a stored answer reused, or none usable (the pipeline answered). */
  answerCache: { hits: number; misses: number }
}

/**
 * Upper bounds (seconds) of the handling-time histogram: 2 µs to 10 ms. A
 * static answer takes about 5-30 µs of CPU; a slow bucket catches GC pauses.
 */
export const HANDLING_BUCKETS_SEC = [0.000002, 0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.01] as const

/** Adds one handling time, in seconds. */
export function observeHandling(counters: QueryCounters, seconds: number): void {
  let i = 0
  while (i < HANDLING_BUCKETS_SEC.length && seconds > (HANDLING_BUCKETS_SEC[i] as number)) i++
  counters.handlingCounts[i] = (counters.handlingCounts[i] as number) + 1
  counters.handlingSumSec += seconds
}

/** A fresh set of counters, all zero. */
export function createQueryCounters(): QueryCounters {
  return {
    received: { udp: 0, tcp: 0 },
    responsesByRcode: new Map(),
    droppedByReason: new Map(),
    truncated: 0,
    internalErrors: 0,
    queriesByType: new Map(),
    decisionsByRule: new Map(),
    ecsQueries: 0,
    scopeCounts: new Uint32Array(129),
    handlingCounts: new Uint32Array(HANDLING_BUCKETS_SEC.length + 1),
    handlingSumSec: 0,
    answerCache: { hits: 0, misses: 0 },
  }
}

/** Adds one to a keyed counter. */
export function bump<K>(counter: Map<K, number>, key: K): void {
  counter.set(key, (counter.get(key) ?? 0) + 1)
}
