/**
 * The active health checker (issue 5): one probe per target, run once for
 * the whole fleet before the server answers (firstRound), then periodically
 * with jitter; results go through the rise/fall state machine
 * (health-state.ts). It owns timers and sockets and nothing else: it does not
 * publish steering snapshots or persist states; the caller reads current()
 * or listens to onChange and does both.
 *
 * Control plane only: it awaits sockets and must never be read from the
 * query path except through a snapshot built from current().
 */
import { performance } from 'node:perf_hooks'
import { HealthError, HealthErrorCode } from './health-error.js'
import type { HealthProblem } from './health-error.js'
import { nextHealthState, seededState, UNKNOWN_STATE } from './health-state.js'
import type { HealthState } from './health-state.js'
import { parseHostPort, probe } from './probe.js'
import type { ProbeTarget } from './probe.js'
import { firstDelayMs, nextIntervalMs } from './schedule.js'

/** One target's active check: the config's HealthCheckConfig plus the target id. Exactly one of http and tcp. */
export interface HealthCheckSpec {
  readonly target: string
  /** http:// or https:// URL; GET succeeds iff the status is expectStatus. */
  readonly http?: string | undefined
  /** HOST:PORT or [IPv6]:PORT; succeeds when the connection is accepted. */
  readonly tcp?: string | undefined
  readonly expectStatus: number
  /** Start-to-start gap between checks, ms (jittered down by up to 10 %). */
  readonly intervalMs: number
  /** Bound on one check (connect, TLS, headers and body), ms. */
  readonly timeoutMs: number
  /** Consecutive successes that make a down target up. */
  readonly rise: number
  /** Consecutive failures that make an up target down. */
  readonly fall: number
}

/** What the checker logs to; a pino logger fits. */
export interface HealthLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface HealthCheckerOptions {
  /** Wall clock for changedAtMs and lastCheckMs, ms since the epoch; default Date.now. */
  readonly nowMs?: () => number
  /** Uniform in [0, 1) for jitter; default Math.random. */
  readonly random?: () => number
  readonly log?: HealthLogger
  /** Called after every status change (not on every check, not for seed()). A throw is logged and ignored. */
  readonly onChange?: (target: string, state: HealthState) => void
  /** Trusted roots for https checks, replacing Node's bundled roots (a private CA for health endpoints). Default: Node's roots plus NODE_EXTRA_CA_CERTS; certificates are always verified. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[]
}

/** A persisted state from before a restart. */
export interface SeedState {
  readonly status: 'up' | 'down'
  /** ms since the epoch of that state's last change. */
  readonly changedAtMs: number
}

export interface HealthChecker {
  /**
   * Starts targets that have no result yet from persisted states (ids
   * without a check are ignored and logged). Counters start at zero, so a
   * seeded state changes only after `rise` successes or `fall` failures.
   * Does not call onChange. Never throws.
   */
  seed(states: ReadonlyMap<string, SeedState>): void
  /**
   * Checks every target now, concurrently; resolves when all finished or
   * after maxWaitMs, whichever is first. Checks still running go on and count
   * when they finish. Rejects with STEER_ERR_HEALTH_STOPPED after stop().
   */
  firstRound(maxWaitMs: number): Promise<void>
  /**
   * Starts periodic checks: each target's first at a random offset in
   * [0, intervalMs) after its latest check started, then every
   * intervalMs × [0.9, 1.0) start to start. A check never overlaps the
   * previous one of its target. A second call does nothing; throws
   * STEER_ERR_HEALTH_STOPPED after stop().
   */
  start(): void
  /**
   * Checks `target` now (or joins its check in flight) and resolves with the
   * state after it. Rejects with STEER_ERR_HEALTH_UNKNOWN_TARGET or
   * STEER_ERR_HEALTH_STOPPED. For tests and an operator's "check now".
   */
  checkNow(target: string): Promise<HealthState>
  /** A copy: every target with a check, by id. */
  current(): ReadonlyMap<string, HealthState>
  /** Clears timers and aborts checks in flight; resolves when their sockets are closed. Idempotent. */
  stop(): Promise<void>
}

interface Slot {
  readonly id: string
  readonly spec: HealthCheckSpec
  readonly probe: ProbeTarget
  state: HealthState
  /** A result arrived (a seed no longer applies). */
  checked: boolean
  inFlight: Promise<HealthState> | undefined
  abort: AbortController | undefined
  timer: NodeJS.Timeout | undefined
  /** performance.now() when the latest check started; NaN before the first. */
  lastStartMono: number
}

/**
 * Builds a checker for `specs`; nothing runs until firstRound(), start() or
 * checkNow(). Throws STEER_ERR_HEALTH_SPEC_INVALID listing every problem.
 */
export function createHealthChecker(specs: readonly HealthCheckSpec[], opts: HealthCheckerOptions = {}): HealthChecker {
  const slots = new Map<string, Slot>()
  const problems: HealthProblem[] = []
  specs.forEach((spec, i) => {
    const target = checkSpec(spec, `[${i}]`, problems)
    if (target === undefined) return
    if (slots.has(spec.target)) {
      problems.push({ path: `[${i}].target`, message: `target ${spec.target} has a check already` })
      return
    }
    slots.set(spec.target, { id: spec.target, spec, probe: target, state: UNKNOWN_STATE, checked: false, inFlight: undefined, abort: undefined, timer: undefined, lastStartMono: NaN })
  })
  if (problems.length > 0) throw new HealthError(HealthErrorCode.SPEC_INVALID, 'invalid health checks', problems)

  const nowMs = opts.nowMs ?? Date.now
  const random = opts.random ?? Math.random
  const log = opts.log
  let started = false
  let stopping: Promise<void> | undefined

  const stoppedError = (): HealthError => new HealthError(HealthErrorCode.STOPPED, 'the health checker is stopped')

  function record(slot: Slot, next: HealthState): void {
    const prev = slot.state
    slot.state = next
    if (next.status === prev.status) return
    const fields = { target: slot.id, from: prev.status, to: next.status, error: next.lastError, consecutiveOk: next.consecutiveOk, consecutiveFail: next.consecutiveFail }
    if (next.status === 'down') log?.warn(fields, 'target health down')
    else log?.info(fields, `target health ${next.status}`)
    try {
      opts.onChange?.(slot.id, next)
    } catch (err) {
      log?.warn({ target: slot.id, err }, 'health onChange listener threw')
    }
  }

  function runCheck(slot: Slot): Promise<HealthState> {
    if (slot.inFlight !== undefined) return slot.inFlight
    const abort = new AbortController()
    const startMono = performance.now()
    slot.abort = abort
    slot.lastStartMono = startMono
    const done = probe(slot.probe, { timeoutMs: slot.spec.timeoutMs, signal: abort.signal, ca: opts.ca }).then((result) => {
      slot.inFlight = undefined
      slot.abort = undefined
      // A result that arrives after stop() describes nothing the caller will publish.
      if (stopping === undefined) {
        slot.checked = true
        record(slot, nextHealthState(slot.state, result, slot.spec, nowMs(), performance.now() - startMono))
      }
      return slot.state
    })
    slot.inFlight = done
    return done
  }

  function schedule(slot: Slot, delayMs: number): void {
    slot.timer = setTimeout(() => {
      slot.timer = undefined
      if (stopping !== undefined) return
      void runCheck(slot).then(() => {
        if (stopping !== undefined) return
        // Start to start, so the gap never exceeds the interval; a check that ran longer than the gap is followed at once.
        schedule(slot, Math.max(0, slot.lastStartMono + nextIntervalMs(slot.spec.intervalMs, random) - performance.now()))
      })
    }, delayMs)
  }

  return {
    seed(states) {
      for (const [id, s] of states) {
        const slot = slots.get(id)
        if (slot === undefined) {
          log?.info({ target: id }, 'persisted health state for a target without a check ignored')
          continue
        }
        if (slot.checked || (s.status !== 'up' && s.status !== 'down')) continue
        slot.state = seededState(s.status, s.changedAtMs)
      }
    },

    async firstRound(maxWaitMs) {
      if (stopping !== undefined) throw stoppedError()
      let timer: NodeJS.Timeout | undefined
      const all = Promise.all([...slots.values()].map(runCheck))
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, maxWaitMs))
      })
      await Promise.race([all, deadline])
      clearTimeout(timer)
      const counts = { up: 0, down: 0, unknown: 0, pending: 0 }
      for (const slot of slots.values()) {
        counts[slot.state.status]++
        if (slot.inFlight !== undefined) counts.pending++
      }
      log?.info(counts, 'first health round')
    },

    start() {
      if (stopping !== undefined) throw stoppedError()
      if (started) return
      started = true
      const now = performance.now()
      for (const slot of slots.values()) {
        const offset = firstDelayMs(slot.spec.intervalMs, random)
        // Counted from the latest check (the first round), so start() late after it does not add a whole interval.
        schedule(slot, Number.isNaN(slot.lastStartMono) ? offset : Math.max(0, slot.lastStartMono + offset - now))
      }
    },

    checkNow(target) {
      if (stopping !== undefined) return Promise.reject(stoppedError())
      const slot = slots.get(target)
      if (slot === undefined) return Promise.reject(new HealthError(HealthErrorCode.UNKNOWN_TARGET, `no health check for target ${target}`))
      return runCheck(slot)
    },

    current() {
      const out = new Map<string, HealthState>()
      for (const slot of slots.values()) out.set(slot.id, slot.state)
      return out
    },

    stop() {
      if (stopping !== undefined) return stopping
      const inFlight: Promise<HealthState>[] = []
      for (const slot of slots.values()) {
        clearTimeout(slot.timer)
        slot.timer = undefined
        slot.abort?.abort()
        if (slot.inFlight !== undefined) inFlight.push(slot.inFlight)
      }
      stopping = Promise.all(inFlight).then(() => undefined)
      return stopping
    },
  }
}

/**
 * The checks of configured targets: one spec per target with a `health`
 * block, in config order. Structural, so config/ types fit without an import.
 */
export function healthCheckSpecs(targets: readonly { readonly id: string; readonly health: Omit<HealthCheckSpec, 'target'> | undefined }[]): HealthCheckSpec[] {
  const out: HealthCheckSpec[] = []
  for (const t of targets) if (t.health !== undefined) out.push({ target: t.id, ...t.health })
  return out
}

function checkSpec(spec: HealthCheckSpec, path: string, problems: HealthProblem[]): ProbeTarget | undefined {
  const before = problems.length
  if (typeof spec.target !== 'string' || spec.target === '') problems.push({ path: `${path}.target`, message: 'must be a target id' })
  const integer = (key: 'expectStatus' | 'intervalMs' | 'timeoutMs' | 'rise' | 'fall', min: number, max: number): void => {
    const v = spec[key]
    if (!Number.isInteger(v) || v < min || v > max) problems.push({ path: `${path}.${key}`, message: `must be an integer from ${min} to ${max}` })
  }
  integer('expectStatus', 100, 599)
  // setTimeout's ceiling (2^31 - 1 ms): a longer delay fires at once.
  integer('intervalMs', 1, 2_147_483_647)
  integer('timeoutMs', 1, 2_147_483_647)
  integer('rise', 1, 1000)
  integer('fall', 1, 1000)
  let target: ProbeTarget | undefined
  if ((spec.http === undefined) === (spec.tcp === undefined)) {
    problems.push({ path, message: 'needs exactly one of http (a URL) or tcp (HOST:PORT)' })
  } else if (spec.http !== undefined) {
    const url = URL.canParse(spec.http) ? new URL(spec.http) : undefined
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) problems.push({ path: `${path}.http`, message: 'must be an http:// or https:// URL' })
    else target = { kind: 'http', url, expectStatus: spec.expectStatus }
  } else if (spec.tcp !== undefined) {
    const hp = parseHostPort(spec.tcp)
    if (hp === undefined) problems.push({ path: `${path}.tcp`, message: 'must be HOST:PORT or [IPv6]:PORT with a port from 1 to 65535' })
    else target = { kind: 'tcp', ...hp }
  }
  return problems.length === before ? target : undefined
}
