/** GET /v1/map's summary of a map: one pass over its entries. Pure. */
import type { MapSummary } from '../control/index.js'
import type { LatencyMap } from '../steering/index.js'

export function summarizeMap(map: LatencyMap, source: MapSummary['source'], nowMs: number, staleAfterSec: number): MapSummary {
  let ipv4Entries = 0
  let staleEntries = 0
  const staleBeforeMs = nowMs - staleAfterSec * 1000
  for (let e = 0; e < map.size; e++) {
    if (map.entryFamily(e) === 4) ipv4Entries++
    const updated = map.entryUpdatedAtMs(e) ?? map.generatedAtMs
    if (updated !== undefined && updated < staleBeforeMs) staleEntries++
  }
  return {
    version: map.version,
    entries: map.size,
    generatedAt: map.generatedAtMs === undefined ? undefined : new Date(map.generatedAtMs).toISOString(),
    ageSec: map.generatedAtMs === undefined ? undefined : Math.max(0, Math.round((nowMs - map.generatedAtMs) / 1000)),
    coverage: { ipv4Entries, ipv6Entries: map.size - ipv4Entries, staleEntries },
    source,
  }
}
