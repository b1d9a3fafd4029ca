/**
 * Compiles a published state into the steering snapshot's parts with the
 * same functions the local operator service uses (compileOverrides,
 * createTargetStates, parseMapJson), for this node's configuration. State
 * naming targets this configuration lacks is left out, not fatal: nodes are
 * upgraded one at a time. Pure apart from the log.
 */
import { compileOverrides, createTargetStates, parseMapJson } from '../steering/index.js'
import type { LatencyMap, OverrideSet, SteeringSetup, TargetAdminRecord, TargetHealthRecord, TargetStates } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import type { OperatorSnapshot } from './operator-events.js'
import type { PublishedState } from './published-state.js'

export interface CompiledState {
  /** Undefined when the state carries no map (unchanged, or none published). */
  readonly map: LatencyMap | undefined
  readonly overrides: OverrideSet
  readonly targetStates: TargetStates
}

/**
 * Throws MapError (a map this configuration cannot read) or OverrideError
 * (records createTargetStates refuses); the caller keeps what it serves.
 */
export function compilePublished(state: PublishedState, setup: SteeringSetup, opts: { readonly overloadWatermark: number; readonly log: Logger }): CompiledState {
  const map = state.map === undefined ? undefined : parseMapJson(state.map, (id) => setup.targetIndex.get(id))
  const operator = state.operator
  const records = operator.overrides
    .map((o) => o.record)
    .filter((r) => {
      const fits = r.kind === 'pin' ? r.targets.every((id) => setup.targetIndex.has(id)) : setup.targetIndex.has(r.target)
      if (!fits) opts.log.warn({ id: r.id }, 'published override names a target this configuration lacks: not applied')
      return fits
    })
  const version = state.version
  const overrides = compileOverrides(records, setup, { version })
  const targetStates = createTargetStates(setup, known(operator.admin, setup), {
    version,
    load: new Map(Object.entries(operator.load).filter(([id]) => setup.targetIndex.has(id)).map(([id, l]) => [id, l.value])),
    overloadWatermark: opts.overloadWatermark,
    health: known(state.health, setup) as ReadonlyMap<string, TargetHealthRecord>,
  })
  return { map, overrides, targetStates }
}

function known<T>(record: Readonly<Record<string, T>>, setup: SteeringSetup): Map<string, T> {
  return new Map(Object.entries(record).filter(([id]) => setup.targetIndex.has(id)))
}

/** The facts the target view reads, from a published operator snapshot. */
export function operatorFacts(operator: OperatorSnapshot): { admin: Map<string, TargetAdminRecord>; adminBy: Map<string, string>; load: Map<string, { value: number; atMs: number }> } {
  return { admin: new Map(Object.entries(operator.admin)), adminBy: new Map(Object.entries(operator.adminBy)), load: new Map(Object.entries(operator.load)) }
}
