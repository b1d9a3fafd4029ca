/**
 * Overrides, target admin state and load, and the audit log, behind the API.
 * Each change is validated, appended to the `operator` journal (fsynced),
 * applied, and published to the data plane before the call resolves: an
 * acknowledged change survives kill -9, and the next DNS answer sees it.
 * Changes run one at a time, so journal order is publish order.
 */
import { ApiProblem } from '../control/index.js'
import type { AuditService, Caller, OverridesService, OverrideView, TargetPatch, TargetsService, TargetView } from '../control/index.js'
import type { Journal } from '../state/index.js'
import { compileOverrides, createTargetStates, OverrideError, validateOverride, validateTargetPatch } from '../steering/index.js'
import type { OverrideProblem, SteeringSetup, SteeringState, TargetHealthRecord } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import type { OperatorState } from './operator-events.js'
import type { OperatorEvent, OperatorSnapshot, StoredOverride } from './operator-events.js'
import { describeAudit, describeOverride, describeTarget } from './operator-views.js'

export interface OperatorServiceDeps {
  /** Replayed already; its records applied to `state`. */
  readonly journal: Journal<OperatorEvent, OperatorSnapshot>
  readonly state: OperatorState
  readonly setup: SteeringSetup
  readonly steering: SteeringState
  readonly nowMs: () => number
  readonly log: Logger
  /** Health check results (issue 5); none yet means every target "unknown". */
  readonly health?: () => ReadonlyMap<string, TargetHealthRecord>
  /** health.overloadWatermark: reported load above it sheds new decisions. */
  readonly overloadWatermark?: number
  /** Events between checkpoints (default 1000): bounds replay time at start. */
  readonly checkpointEvery?: number
}

export interface OperatorService {
  readonly overrides: OverridesService
  readonly targets: TargetsService
  readonly audit: AuditService
  /** Journals a map import for the audit log. */
  recordMapImport(caller: Caller, version: number, entries: number): Promise<void>
  /** Compiles and publishes overrides and target states from the current state (start). */
  publish(): void
  /** Publishes target states only (health changed). */
  publishTargetStates(): void
  /** Checkpoints and closes the journal. */
  close(): Promise<void>
}

export function createOperatorService(deps: OperatorServiceDeps): OperatorService {
  const { journal, state, setup, steering, nowMs } = deps
  const checkpointEvery = deps.checkpointEvery ?? 1000
  let sinceCheckpoint = 0
  let version = 0
  let queue: Promise<unknown> = Promise.resolve()

  /** Runs changes one at a time; a failed one does not block the next. */
  function serialize<T>(change: () => Promise<T>): Promise<T> {
    const run = queue.then(change)
    queue = run.catch(() => undefined)
    return run
  }

  function compileAll(overrides: Iterable<StoredOverride>, admin: ReadonlyMap<string, unknown>): { overrides: ReturnType<typeof compileOverrides>; states: ReturnType<typeof createTargetStates> } {
    version++
    return {
      overrides: compileOverrides([...overrides].map((o) => o.record), setup, { version }),
      states: targetStates(admin as Parameters<typeof createTargetStates>[1]),
    }
  }

  /** Admin records, health, reported loads and the watermark, as one snapshot (call after version++). */
  function targetStates(admin: Parameters<typeof createTargetStates>[1]): ReturnType<typeof createTargetStates> {
    const load = new Map([...state.load].map(([id, l]) => [id, l.value]))
    return createTargetStates(setup, admin, {
      version,
      load,
      ...(deps.overloadWatermark !== undefined ? { overloadWatermark: deps.overloadWatermark } : {}),
      ...(deps.health ? { health: deps.health() } : {}),
    })
  }

  function publish(): void {
    const compiled = compileAll(state.overrides.values(), state.admin)
    steering.setOverrides(compiled.overrides)
    steering.setTargetStates(compiled.states)
  }

  async function commit(event: OperatorEvent): Promise<void> {
    await journal.append([event])
    state.apply(event)
    if (++sinceCheckpoint >= checkpointEvery) {
      sinceCheckpoint = 0
      journal.checkpoint(state.snapshot(nowMs())).catch((err: unknown) => deps.log.error({ err }, 'operator state checkpoint failed; the journal still holds every change'))
    }
  }

  const overrideView = (o: StoredOverride): OverrideView => describeOverride(o)
  const targetView = (index: number): TargetView => describeTarget(setup, steering.current(), state, index, nowMs())

  const overrides: OverridesService = {
    list() {
      const now = nowMs()
      return [...state.overrides.values()].filter((o) => o.record.expiresAtMs === undefined || o.record.expiresAtMs > now).map(overrideView)
    },
    create(body, caller) {
      return serialize(async () => {
        const at = nowMs()
        const checked = validateOverride(body, setup, { id: `ovr-${state.nextOverrideNumber}`, nowMs: at })
        if (!checked.record) throw problemsToApi(checked.problems, 400)
        const record = checked.record
        // Compile before journaling: a change the data plane cannot take is refused, not stored.
        const next = new Map(state.overrides)
        next.set(record.id, { record, createdAtMs: at, createdBy: caller.name })
        let compiled
        try {
          compiled = compileAll(next.values(), state.admin)
        } catch (err) {
          if (err instanceof OverrideError) throw new ApiProblem(409, 'body', `conflicts with the overrides in force: ${err.message}`)
          throw err
        }
        await commit({ type: 'override-add', at, by: caller.name, address: caller.address, record })
        steering.setOverrides(compiled.overrides)
        deps.log.info({ id: record.id, kind: record.kind, by: caller.name, reason: record.reason }, 'override created')
        return overrideView(state.overrides.get(record.id) as StoredOverride)
      })
    },
    remove(id, caller) {
      return serialize(async () => {
        if (!state.overrides.has(id)) return false
        const next = new Map(state.overrides)
        next.delete(id)
        const compiled = compileAll(next.values(), state.admin)
        await commit({ type: 'override-remove', at: nowMs(), by: caller.name, address: caller.address, id })
        steering.setOverrides(compiled.overrides)
        deps.log.info({ id, by: caller.name }, 'override deleted')
        return true
      })
    },
  }

  const targets: TargetsService = {
    list: () => setup.targets.map((_, i) => targetView(i)),
    patch(id, patch: TargetPatch, caller) {
      return serialize(async () => {
        const index = setup.targetIndex.get(id)
        if (index === undefined) return undefined
        const at = nowMs()
        const { load, ...adminPatch } = patch
        let admin
        if (Object.keys(adminPatch).length > 0) {
          const checked = validateTargetPatch(adminPatch, state.admin.get(id), at)
          if (!checked.record) throw problemsToApi(checked.problems, 400)
          admin = checked.record
        }
        const nextAdmin = new Map(state.admin)
        if (admin) nextAdmin.set(id, admin)
        // Validated before journaling (a record createTargetStates refuses is not stored); published after.
        if (admin) compileAll(state.overrides.values(), nextAdmin)
        await commit({ type: 'target-patch', at, by: caller.name, address: caller.address, id, ...(admin ? { admin } : {}), ...(load !== undefined ? { load } : {}) })
        // After commit: the snapshot includes the new load too.
        version++
        steering.setTargetStates(targetStates(state.admin))
        if (admin) deps.log.info({ target: id, state: admin.admin, weight: admin.weight, by: caller.name, reason: admin.reason }, 'target admin state changed')
        return targetView(index)
      })
    },
  }

  const audit: AuditService = {
    list({ limit, since }) {
      return describeAudit(state.audit, limit, since)
    },
  }

  return {
    overrides,
    targets,
    audit,
    publishTargetStates() {
      version++
      steering.setTargetStates(targetStates(state.admin))
    },
    recordMapImport: (caller, mapVersion, entries) =>
      serialize(() => commit({ type: 'map-import', at: nowMs(), by: caller.name, address: caller.address, version: mapVersion, entries })),
    publish,
    async close() {
      await queue
      try {
        await journal.checkpoint(state.snapshot(nowMs()))
      } catch (err) {
        deps.log.error({ err }, 'operator state checkpoint at shutdown failed; the journal still holds every change')
      }
      await journal.close()
    },
  }
}

/** Validation problems (paths relative to the body) as a 400 naming the first field and listing all. */
export function problemsToApi(problems: readonly OverrideProblem[], status: number, base = 'body'): ApiProblem {
  const fields = problems.map((p) => ({ field: p.path === '' ? base : p.path.startsWith('[') ? `${base}${p.path}` : `${base}.${p.path}`, message: p.message }))
  const first = fields[0] ?? { field: base, message: 'is invalid' }
  return new ApiProblem(status, first.field, first.message, fields)
}
