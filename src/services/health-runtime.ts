/**
 * Target health for the data plane: active checks (health/) plus passive
 * health from measurements, combined into the TargetHealthRecords that
 * steering's TargetStates snapshot carries. Every change is published at
 * once (the caller republishes target states) and persisted, so a restart
 * starts from the last known states: a target that was down stays out of
 * answers from the first query until `rise` checks pass.
 *
 * Start order: seed from the state directory, run one round of checks
 * (bounded by health.startupWaitMs), then the listeners open.
 */
import type { SteerdnsConfig } from '../config/index.js'
import { createHealthChecker, healthCheckSpecs } from '../health/index.js'
import type { HealthChecker, HealthState, SeedState } from '../health/index.js'
import type { AcceptedReport } from '../measure/index.js'
import type { StateDocument } from '../state/index.js'
import type { SteeringSetup, TargetHealthRecord } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { PassiveHealth } from './passive-health.js'

/** What the state directory keeps: the last decided status per checked target. */
export type PersistedHealth = Record<string, { readonly status: 'up' | 'down'; readonly changedAtMs: number }>

export interface HealthRuntime {
  /** Health per target id, for createTargetStates (targets without a check and without passive data are absent). */
  records(): ReadonlyMap<string, TargetHealthRecord>
  /** The checker's view of one target (API, explain), undefined without a check. */
  check(id: string): HealthState | undefined
  /** Counts reports for passive health; republishes when a verdict changes. */
  onReports(reports: readonly AcceptedReport[], nowMs: number): void
  /** Seeds from the state directory and runs the first round; resolves before the listeners should open. */
  begin(): Promise<void>
  /** Starts periodic checks and the passive-health timer. */
  start(): void
  close(): Promise<void>
}

export interface HealthRuntimeDeps {
  readonly config: Pick<SteerdnsConfig, 'targets' | 'health'>
  readonly setup: SteeringSetup
  readonly document: StateDocument<PersistedHealth>
  readonly nowMs: () => number
  readonly log: Logger
  /** Called after any change in records(): republish target states. */
  readonly onChange: () => void
}

export function createHealthRuntime(deps: HealthRuntimeDeps): HealthRuntime {
  const { setup, log, nowMs } = deps
  const passive = new PassiveHealth(deps.config.health.passive, setup.targets.length)
  const specs = healthCheckSpecs(deps.config.targets.map((t) => ({ id: t.id, health: t.health ? { ...t.health } : undefined })))
  let checker: HealthChecker | undefined
  let records: ReadonlyMap<string, TargetHealthRecord> = new Map()
  let passiveTimer: NodeJS.Timeout | undefined
  let persisting: Promise<unknown> = Promise.resolve()

  const rebuild = (): void => {
    const now = nowMs()
    const next = new Map<string, TargetHealthRecord>()
    const states = checker?.current() ?? new Map<string, HealthState>()
    setup.targets.forEach((target, index) => {
      const state = states.get(target.id)
      const verdict = passive.verdictOf(index, now)
      if (!state && !verdict.degraded && verdict.changedAtMs === undefined) return
      const changes = [state?.changedAtMs, verdict.changedAtMs].filter((ms): ms is number => ms !== undefined)
      next.set(target.id, {
        status: state?.status ?? 'unknown',
        ...(verdict.degraded ? { degraded: true } : {}),
        ...(changes.length > 0 ? { changedAtMs: Math.max(...changes) } : {}),
      })
    })
    records = next
  }

  const persist = (): void => {
    const snapshot: PersistedHealth = {}
    for (const [id, state] of checker?.current() ?? []) {
      if (state.status !== 'unknown') snapshot[id] = { status: state.status, changedAtMs: state.changedAtMs ?? nowMs() }
    }
    persisting = persisting
      .then(() => deps.document.write(snapshot))
      .catch((err: unknown) => log.error({ err }, 'health states could not be saved; the next restart starts from older ones'))
  }

  const changed = (): void => {
    rebuild()
    deps.onChange()
  }

  return {
    records: () => records,
    check: (id) => checker?.current().get(id),
    onReports(reports, now) {
      // Filed under the report's own time: a new compile leader replaying the stream must not count old failures as new.
      for (const r of reports) passive.record(r.target, r.ok, Math.min(r.atMs, now))
      const flipped = passive.evaluate(now)
      if (flipped.length > 0) {
        for (const t of flipped) log.warn({ target: setup.targets[t]?.id, ...passive.verdictOf(t, now) }, 'passive health changed')
        changed()
      }
    },
    async begin() {
      if (specs.length === 0) return
      checker = createHealthChecker(specs, {
        nowMs,
        log,
        onChange: (target, state) => {
          log.warn({ target, status: state.status, error: state.lastError }, 'target health changed')
          changed()
          persist()
        },
      })
      const saved = await deps.document.read()
      if (saved) {
        const seed = new Map<string, SeedState>()
        for (const [id, s] of Object.entries(saved)) if (setup.targetIndex.has(id)) seed.set(id, s)
        checker.seed(seed)
        log.info({ targets: seed.size }, 'health states restored')
      }
      await checker.firstRound(deps.config.health.startupWaitMs)
      rebuild()
      persist()
      log.info({ states: Object.fromEntries([...checker.current()].map(([id, s]) => [id, s.status])) }, 'first health check round done')
    },
    start() {
      checker?.start()
      // The passive window slides even without reports: a degraded target recovers when its failures age out.
      passiveTimer = setInterval(() => {
        if (passive.evaluate(nowMs()).length > 0) changed()
      }, 1000)
      passiveTimer.unref()
    },
    async close() {
      if (passiveTimer) clearInterval(passiveTimer)
      await checker?.stop()
      await persisting
    },
  }
}
