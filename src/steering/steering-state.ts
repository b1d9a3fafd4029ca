/**
 * Holds the current steering snapshot and swaps it by reference when the map
 * or the geo database changes. The query path calls current() once per query
 * and reads an object that is never mutated afterwards.
 */
import type { GeoLocator, MapReader, SteeringView } from './select.js'
import type { SteeringSetup } from './targets.js'

export interface SteeringState {
  /** The snapshot to decide from. Cheap: returns a reference. */
  current(): SteeringView
  /** Publishes a new map (the previous one keeps serving until this call). */
  setMap(map: MapReader): void
  setGeo(geo: GeoLocator | undefined): void
}

export interface SteeringStateInit {
  readonly setup: SteeringSetup
  readonly map: MapReader
  readonly geo: GeoLocator | undefined
  readonly distanceKm: SteeringView['distanceKm']
  /** Health and admin state; every target serves until health checks exist. */
  readonly isServing?: SteeringView['isServing']
}

/** Creates the holder with its first snapshot. Never throws. */
export function createSteeringState(init: SteeringStateInit): SteeringState {
  const isServing = init.isServing ?? (() => true)
  let view: SteeringView = { setup: init.setup, map: init.map, geo: init.geo, isServing, distanceKm: init.distanceKm }
  return {
    current: () => view,
    setMap(map) {
      view = { ...view, map }
    },
    setGeo(geo) {
      view = { ...view, geo }
    },
  }
}
