/**
 * Overrides, target admin state and load, and the audit log, when the state
 * lives in the shared store. Any control node takes a change: it reads the
 * operator state and its revision, validates and compiles the change exactly
 * as the local service does, and writes the new state, its audit entry, a
 * new version and the announcement in one script that succeeds only if the
 * revision is still the one read (optimistic concurrency; a collision reads
 * again, a few times). The call resolves once Redis has the change and this
 * node applied it. Reads come from the state this node applied.
 */
import { ApiProblem } from '../control/index.js'
import type { AuditService, Caller, OverridesService, OverrideView, TargetPatch, TargetsService, TargetView } from '../control/index.js'
import type { SharedStore } from '../store/index.js'
import { StoreError, StoreErrorCode } from '../store/index.js'
import { compileOverrides, createTargetStates, OverrideError, validateOverride, validateTargetPatch } from '../steering/index.js'
import type { SteeringSetup, SteeringState } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { operatorFacts } from './apply-published.js'
import type { Follower } from './follower.js'
import { OperatorState } from './operator-events.js'
import type { AuditRecord, OperatorEvent, OperatorSnapshot, StoredOverride } from './operator-events.js'
import { problemsToApi } from './operator-service.js'
import { describeAudit, describeOverride, describeTarget } from './operator-views.js'
import { emptyOperatorSnapshot } from './published-state.js'
import { settleWithin, toApiProblem } from './store-problem.js'

/** Collisions with other nodes' writes before giving up with 503. */
const MAX_ATTEMPTS = 8

export interface SharedOperatorServiceDeps {
  readonly store: SharedStore
  readonly setup: SteeringSetup
  readonly steering: SteeringState
  readonly follower: Follower
  readonly overloadWatermark: number
  readonly timeoutMs: number
  readonly nowMs: () => number
  readonly log: Logger
}

export interface SharedOperatorService {
  readonly overrides: OverridesService
  readonly targets: TargetsService
  readonly audit: AuditService
  /** Re-reads the audit log (after a change this node applied). */
  refreshAudit(): Promise<void>
}

export function createSharedOperatorService(deps: SharedOperatorServiceDeps): SharedOperatorService {
  const { store, setup, steering, follower, nowMs, log } = deps
  let audit: AuditRecord[] = []

  const applied = (): OperatorSnapshot => follower.applied()?.operator ?? emptyOperatorSnapshot()

  /**
   * Reads, changes and writes the operator state until the write wins.
   * `change` validates against the state read (throwing ApiProblem for the
   * caller's mistakes) and returns the event, or undefined for "nothing to do".
   */
  async function commit(change: (state: OperatorState, at: number) => OperatorEvent | undefined): Promise<OperatorState | undefined> {
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const read = await store.readOperator()
        const state = OperatorState.restore(read.json === undefined ? undefined : (JSON.parse(read.json) as OperatorSnapshot))
        state.audit = []
        const at = nowMs()
        const event = change(state, at)
        if (event === undefined) return undefined
        state.apply(event)
        const entries = state.audit.map((e) => JSON.stringify(e))
        const written = await store.writeOperator(read.rev, JSON.stringify({ ...state.snapshot(at), audit: [] }), entries)
        if (written.ok) {
          // This node answers with the change applied; the others apply it on the announcement.
          await settleWithin(follower.sync(), deps.timeoutMs)
          await settleWithin(refreshAudit(), deps.timeoutMs)
          return state
        }
      }
      throw new StoreError(StoreErrorCode.CONTENDED, `operator state changed under this write ${MAX_ATTEMPTS} times in a row`)
    } catch (err) {
      throw toApiProblem(err)
    }
  }

  function knownRecords(overrides: Iterable<StoredOverride>) {
    return [...overrides].map((o) => o.record).filter((r) => (r.kind === 'pin' ? r.targets.every((id) => setup.targetIndex.has(id)) : setup.targetIndex.has(r.target)))
  }

  async function refreshAudit(): Promise<void> {
    const lines = await store.readAudit(AUDIT_READ)
    const next: AuditRecord[] = []
    for (const line of lines) {
      try {
        next.push(JSON.parse(line) as AuditRecord)
      } catch {
        log.warn('an audit entry in the shared store is not JSON: skipped')
      }
    }
    audit = next
  }

  const targetView = (index: number): TargetView => describeTarget(setup, steering.current(), operatorFacts(applied()), index, nowMs())

  const overrides: OverridesService = {
    list() {
      const now = nowMs()
      return applied()
        .overrides.filter((o) => o.record.expiresAtMs === undefined || o.record.expiresAtMs > now)
        .map(describeOverride)
    },
    async create(body, caller) {
      let id = ''
      const state = await commit((state, at) => {
        const checked = validateOverride(body, setup, { id: `ovr-${state.nextOverrideNumber}`, nowMs: at })
        if (!checked.record) throw problemsToApi(checked.problems, 400)
        const record = checked.record
        const next = new Map(state.overrides)
        next.set(record.id, { record, createdAtMs: at, createdBy: caller.name })
        try {
          compileOverrides(knownRecords(next.values()), setup)
        } catch (err) {
          if (err instanceof OverrideError) throw new ApiProblem(409, 'body', `conflicts with the overrides in force: ${err.message}`)
          throw err
        }
        id = record.id
        return { type: 'override-add', at, by: caller.name, address: caller.address, record }
      })
      const stored = state?.overrides.get(id)
      if (!stored) throw new ApiProblem(503, undefined, 'the override was written but could not be read back; list the overrides')
      log.info({ id, kind: stored.record.kind, by: caller.name, reason: stored.record.reason }, 'override created')
      return describeOverride(stored) as OverrideView
    },
    async remove(id, caller) {
      let found = false
      await commit((state, at) => {
        found = state.overrides.has(id)
        return found ? { type: 'override-remove', at, by: caller.name, address: caller.address, id } : undefined
      })
      if (found) log.info({ id, by: caller.name }, 'override deleted')
      return found
    },
  }

  const targets: TargetsService = {
    list: () => setup.targets.map((_, i) => targetView(i)),
    async patch(id, patch: TargetPatch, caller: Caller) {
      const index = setup.targetIndex.get(id)
      if (index === undefined) return undefined
      await commit((state, at) => {
        const { load, ...adminPatch } = patch
        let admin
        if (Object.keys(adminPatch).length > 0) {
          const checked = validateTargetPatch(adminPatch, state.admin.get(id), at)
          if (!checked.record) throw problemsToApi(checked.problems, 400)
          admin = checked.record
          const nextAdmin = new Map([...state.admin].filter(([t]) => setup.targetIndex.has(t)))
          nextAdmin.set(id, admin)
          // Refused here, not by every DNS node later.
          createTargetStates(setup, nextAdmin, { overloadWatermark: deps.overloadWatermark })
          log.info({ target: id, state: admin.admin, weight: admin.weight, by: caller.name, reason: admin.reason }, 'target admin state changed')
        }
        return { type: 'target-patch', at, by: caller.name, address: caller.address, id, ...(admin ? { admin } : {}), ...(load !== undefined ? { load } : {}) }
      })
      return targetView(index)
    },
  }

  return {
    overrides,
    targets,
    audit: { list: ({ limit, since }) => describeAudit(audit, limit, since) },
    refreshAudit,
  }
}

/** The capped list holds at most AUDIT_KEEP entries; reading them all keeps `since` exact. */
const AUDIT_READ = 10_000
