/**
 * Holds the current steering snapshot and swaps it by reference when the map,
 * the geo database, the overrides or the target states change. The query path
 * calls current() once per query and reads an object that is never mutated
 * afterwards: a view held across a swap keeps answering as it did.
 */
import { OverrideError, OverrideErrorCode } from './override-error.js'
import { emptyOverrides } from './overrides.js'
import type { OverrideSet } from './overrides.js'
import type { GeoLocator, MapReader, SteeringView } from './select.js'
import { createTargetStates } from './target-states.js'
import type { TargetStates } from './target-states.js'
import type { SteeringSetup } from './targets.js'

export interface SteeringState {
  /** The snapshot to decide from. Cheap: returns a reference. */
  current(): SteeringView
  /** Publishes a new map (the previous one keeps serving until this call). */
  setMap(map: MapReader): void
  setGeo(geo: GeoLocator | undefined): void
  /** Publishes compiled overrides. Throws STEER_ERR_OVERRIDE_SETUP_MISMATCH when compiled for another setup. */
  setOverrides(overrides: OverrideSet): void
  /** Publishes target admin state and health. Throws STEER_ERR_OVERRIDE_SETUP_MISMATCH when built for another setup. */
  setTargetStates(states: TargetStates): void
}

export interface SteeringStateInit {
  readonly setup: SteeringSetup
  readonly map: MapReader
  readonly geo: GeoLocator | undefined
  readonly distanceKm: SteeringView['distanceKm']
  /** Health from outside TargetStates; every target serves when absent. */
  readonly isServing?: SteeringView['isServing']
  /** None when absent. */
  readonly overrides?: OverrideSet
  /** Every target up at its capacity when absent. */
  readonly targetStates?: TargetStates
}

/** Creates the holder with its first snapshot. Throws STEER_ERR_OVERRIDE_SETUP_MISMATCH like the setters. */
export function createSteeringState(init: SteeringStateInit): SteeringState {
  const isServing = init.isServing ?? (() => true)
  const overrides = init.overrides ?? emptyOverrides(init.setup)
  const targetStates = init.targetStates ?? createTargetStates(init.setup)
  sameSetup(init.setup, overrides.setup, 'overrides')
  sameSetup(init.setup, targetStates.setup, 'target states')
  let view: SteeringView = Object.freeze({ setup: init.setup, map: init.map, geo: init.geo, isServing, distanceKm: init.distanceKm, overrides, targetStates })
  return {
    current: () => view,
    setMap(map) {
      view = Object.freeze({ ...view, map })
    },
    setGeo(geo) {
      view = Object.freeze({ ...view, geo })
    },
    setOverrides(next) {
      sameSetup(view.setup, next.setup, 'overrides')
      view = Object.freeze({ ...view, overrides: next })
    },
    setTargetStates(next) {
      sameSetup(view.setup, next.setup, 'target states')
      view = Object.freeze({ ...view, targetStates: next })
    },
  }
}

/** Target indices are per setup: a snapshot from another one would steer to the wrong targets. */
function sameSetup(expected: SteeringSetup, actual: SteeringSetup, what: string): void {
  if (expected !== actual) {
    throw new OverrideError(OverrideErrorCode.SETUP_MISMATCH, [{ path: '', message: `${what} were compiled for a different steering setup` }])
  }
}
