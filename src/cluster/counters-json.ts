/**
 * Query counters across processes: a worker sends its totals as JSON, the
 * primary sums every worker's latest totals into one QueryCounters that
 * /metrics reads as if one process had answered everything.
 */
import type { QueryCounters } from '../telemetry/index.js'
import type { CountersJson } from './ipc-messages.js'

export function countersToJson(c: QueryCounters, extra: { tcpConnections: number; rrl?: CountersJson['rrl'] }): CountersJson {
  return {
    received: { ...c.received },
    responsesByRcode: [...c.responsesByRcode],
    droppedByReason: [...c.droppedByReason],
    truncated: c.truncated,
    internalErrors: c.internalErrors,
    queriesByType: [...c.queriesByType],
    decisionsByRule: [...c.decisionsByRule],
    ecsQueries: c.ecsQueries,
    scopeCounts: Array.from(c.scopeCounts),
    handlingCounts: Array.from(c.handlingCounts),
    handlingSumSec: c.handlingSumSec,
    answerCache: { ...c.answerCache },
    tcpConnections: extra.tcpConnections,
    ...(extra.rrl ? { rrl: extra.rrl } : {}),
  }
}

/** Overwrites `into` with the sum of `reports` (each a worker's totals since it started). */
export function sumCountersInto(into: QueryCounters, reports: readonly CountersJson[]): void {
  into.received.udp = 0
  into.received.tcp = 0
  into.responsesByRcode.clear()
  into.droppedByReason.clear()
  into.queriesByType.clear()
  into.decisionsByRule.clear()
  into.truncated = 0
  into.internalErrors = 0
  into.ecsQueries = 0
  into.scopeCounts.fill(0)
  into.handlingCounts.fill(0)
  into.handlingSumSec = 0
  into.answerCache.hits = 0
  into.answerCache.misses = 0
  for (const r of reports) {
    into.received.udp += r.received.udp
    into.received.tcp += r.received.tcp
    addEntries(into.responsesByRcode, r.responsesByRcode)
    addEntries(into.droppedByReason, r.droppedByReason)
    addEntries(into.queriesByType, r.queriesByType)
    addEntries(into.decisionsByRule, r.decisionsByRule)
    into.truncated += r.truncated
    into.internalErrors += r.internalErrors
    into.ecsQueries += r.ecsQueries
    addArray(into.scopeCounts, r.scopeCounts)
    addArray(into.handlingCounts, r.handlingCounts)
    into.handlingSumSec += r.handlingSumSec
    into.answerCache.hits += r.answerCache.hits
    into.answerCache.misses += r.answerCache.misses
  }
}

function addEntries<K>(into: Map<K, number>, entries: readonly (readonly [K, number])[]): void {
  for (const [k, n] of entries) into.set(k, (into.get(k) ?? 0) + n)
}

function addArray(into: Uint32Array, values: readonly number[]): void {
  for (let i = 0; i < into.length && i < values.length; i++) into[i] = (into[i] as number) + (values[i] as number)
}
