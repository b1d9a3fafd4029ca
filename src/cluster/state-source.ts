/**
 * The primary's published state, for its worker processes: what its own
 * steering snapshot was built from (the serving map, the operator state,
 * health), as the plain JSON a follower applies (services/published-state.ts).
 * Every swap of the primary's snapshot bumps the version and is announced;
 * the map goes over the channel only when it changed since the asker's copy.
 */
import type { PublishedState, RestoredState } from '../services/index.js'
import { emptyOperatorSnapshot, PUBLISHED_FORMAT } from '../services/index.js'
import { mapToJson } from '../steering/index.js'
import type { LatencyMap, MapReader, OverrideSet, SteeringSetup, SteeringState, SteeringView, TargetStates } from '../steering/index.js'
import type { GeoLocator } from '../steering/index.js'

export interface StateSource {
  /** The state now; undefined when `have` says the asker holds this version. */
  current(have?: { readonly version: number; readonly mapVersion: number }): PublishedState | undefined
  readonly version: number
}

/**
 * Wraps `steering` so every published change (map, overrides, target states)
 * bumps the version and calls `onChange` once per turn of the event loop (a
 * change publishes two or three parts in one synchronous step).
 */
export function observeSteering(steering: SteeringState, onChange: () => void): { steering: SteeringState; version: () => number; mapSerial: () => number } {
  let version = 1
  let mapSerial = 1
  let scheduled = false
  const changed = (): void => {
    version++
    if (scheduled) return
    scheduled = true
    setImmediate(() => {
      scheduled = false
      onChange()
    })
  }
  const observed: SteeringState = {
    current: (): SteeringView => steering.current(),
    setMap(map: MapReader) {
      steering.setMap(map)
      mapSerial++
      changed()
    },
    setGeo(geo: GeoLocator | undefined) {
      // Every worker watches the geo file itself.
      steering.setGeo(geo)
    },
    setOverrides(overrides: OverrideSet) {
      steering.setOverrides(overrides)
      changed()
    },
    setTargetStates(states: TargetStates) {
      steering.setTargetStates(states)
      changed()
    },
  }
  return { steering: observed, version: () => version, mapSerial: () => mapSerial }
}

export function createStateSource(d: {
  readonly restored: () => RestoredState | undefined
  readonly setup: SteeringSetup
  readonly version: () => number
  readonly mapSerial: () => number
}): StateSource {
  const targetId = (index: number): string => d.setup.targets[index]?.id ?? `#${index}`
  let mapJson: { serial: number; map: LatencyMap; json: unknown } | undefined
  return {
    get version() {
      return d.version()
    },
    current(have) {
      const restored = d.restored()
      const version = d.version()
      if (have && have.version === version) return undefined
      // mapVersion is the primary's map serial: a re-import of the same version number still reaches workers.
      const mapVersion = d.mapSerial()
      const map = restored?.measurement.currentMap()
      let json: unknown
      if (map && have?.mapVersion !== mapVersion) {
        if (!mapJson || mapJson.map !== map) mapJson = { serial: mapVersion, map, json: mapToJson(map, targetId) }
        json = mapJson.json
      }
      const operator = restored ? { ...restored.operatorSnapshot(), audit: [] } : emptyOperatorSnapshot()
      return {
        format: PUBLISHED_FORMAT,
        version,
        mapVersion,
        ...(json !== undefined ? { map: json } : {}),
        mapSource: restored?.measurement.map.summary().source ?? 'empty',
        operator,
        operatorRev: version,
        health: Object.fromEntries(restored?.health.records() ?? []),
      }
    },
  }
}
