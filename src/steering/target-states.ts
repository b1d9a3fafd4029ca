/**
 * Per-target state for the steering decision (DESIGN.md step 3 and 7): the
 * operator's admin state (up, down, drain; a load-sharing weight; why; until
 * when), health from active checks (unknown, up, down) and passive health
 * (degraded), and the reported load (a fraction of capacity) against the
 * overload watermark. One immutable snapshot in arrays indexed by target,
 * published by the control plane; select() reads it with a few array loads
 * per candidate.
 *
 * New clients go only to serving targets: admin up, health not down, not
 * degraded. Draining and degraded targets keep working for the clients that
 * already have them (resolver caches) and are preferred over down targets
 * when nothing serves (alive()).
 *
 * Admin records expire per decision (a comparison against `nowMs`): from
 * expiresAtMs on, the target is back to up at its configured capacity, and
 * that instant counts as a state change (short TTLs, step 7).
 */
import { checkReason } from './overrides.js'
import { parseRfc3339Ms } from './map-json.js'
import { joinPath, OverrideError, OverrideErrorCode } from './override-error.js'
import type { OverrideProblem } from './override-error.js'
import type { SteeringSetup, Target } from './targets.js'

/** up: serves. down: removed. drain: removed from new decisions, still preferred over down targets when nothing serves (like degraded). */
export type AdminState = 'up' | 'down' | 'drain'

/** unknown (not checked yet) serves, so a restart never answers all-down; down does not. */
export type HealthStatus = 'unknown' | 'up' | 'down'

/** The operator's word on one target (`PATCH /v1/targets/{id}`). */
export interface TargetAdminRecord {
  readonly admin: AdminState
  /** Replaces the configured capacity for load sharing (≥ 0; 0 takes new clients only when no near-equal target serves). */
  readonly weight?: number
  readonly reason: string
  /** ms since the epoch; the record applies while nowMs < expiresAtMs. */
  readonly expiresAtMs?: number
  /** ms since the epoch of the last change of admin state or weight. */
  readonly changedAtMs: number
}

/** What health checks report for one target: the active check's status and the passive verdict. */
export interface TargetHealthRecord {
  readonly status: HealthStatus
  /**
   * Passive health: reported measurements to this target fail past the
   * threshold. Like a drain, the target loses new clients (not serving) but
   * still answers before down targets when nothing serves, and answers that
   * include it carry the service's minimum TTL.
   */
  readonly degraded?: boolean
  /** ms since the epoch of the last change of status or of the degraded verdict (the "just changed" TTL window). */
  readonly changedAtMs?: number
}

/** One target's effective state at a moment (`GET /v1/targets`, traces). */
export interface TargetStatus {
  readonly id: string
  readonly admin: AdminState
  readonly health: HealthStatus
  readonly degraded: boolean
  readonly serving: boolean
  /** Effective load-sharing weight. */
  readonly weight: number
  readonly capacity: number
  /** Reported load, fraction of capacity (1 = full); undefined when never reported. */
  readonly load: number | undefined
  /** Load above the overload watermark: the target sheds new decisions. */
  readonly overloaded: boolean
  readonly reason: string | undefined
  readonly expiresAtMs: number | undefined
  /** Latest admin or health change (an admin record's expiry counts), undefined when none. */
  readonly changedAtMs: number | undefined
}

const ADMIN_CODES: readonly AdminState[] = ['up', 'down', 'drain']
const HEALTH_CODES: readonly HealthStatus[] = ['unknown', 'up', 'down']
const UP = 0
const DOWN = 1
const DRAIN = 2
const HEALTH_DOWN = 2

interface TargetStatesParts {
  readonly setup: SteeringSetup
  readonly version: number
  readonly adminCode: Uint8Array
  /** NaN: configured capacity. */
  readonly adminWeight: Float64Array
  /** Infinity: no expiry; NaN: no record. */
  readonly adminExpiresAtMs: Float64Array
  readonly adminChangedAtMs: Float64Array
  readonly adminRecord: readonly (TargetAdminRecord | undefined)[]
  readonly healthCode: Uint8Array
  readonly degraded: Uint8Array
  /** NaN: never changed. */
  readonly healthChangedAtMs: Float64Array
  /** Reported load, fraction of capacity; NaN: not reported. */
  readonly load: Float64Array
  /** Fraction of capacity (> 0). */
  readonly overloadWatermark: number
  readonly anyOverloaded: boolean
}

/**
 * An immutable state snapshot for one SteeringSetup. Accessors take target
 * indices of that setup, allocate nothing and never throw; an index out of
 * range reads as "up, healthy, capacity 0".
 */
export class TargetStates {
  readonly setup: SteeringSetup
  readonly version: number
  /** Load (fraction of capacity) above which a target sheds new decisions. */
  readonly overloadWatermark: number
  /**
   * Some target's load is above the watermark. select() checks this one
   * field before any shedding work, so a snapshot without overload costs the
   * query path nothing more.
   */
  readonly anyOverloaded: boolean
  private readonly p: TargetStatesParts

  /** Internal: use createTargetStates(). */
  constructor(parts: TargetStatesParts) {
    this.p = parts
    this.setup = parts.setup
    this.version = parts.version
    this.overloadWatermark = parts.overloadWatermark
    this.anyOverloaded = parts.anyOverloaded
  }

  /** Whether the admin record of `target` applies at `nowMs`. */
  private active(target: number, nowMs: number): boolean {
    return nowMs < (this.p.adminExpiresAtMs[target] ?? NaN)
  }

  /** Effective admin state at `nowMs`. */
  admin(target: number, nowMs: number): AdminState {
    return this.active(target, nowMs) ? (ADMIN_CODES[this.p.adminCode[target] as number] as AdminState) : 'up'
  }

  /** Admin up, health not down and not degraded: the target may receive new clients (DESIGN.md step 3). */
  serving(target: number, nowMs: number): boolean {
    const admin = this.active(target, nowMs) ? (this.p.adminCode[target] as number) : UP
    return admin === UP && this.p.healthCode[target] !== HEALTH_DOWN && this.p.degraded[target] !== 1
  }

  /**
   * Admin not down and health not down: the target still works for the
   * clients it has, even while draining or degraded. The all-down fallback
   * prefers these over down targets.
   */
  alive(target: number, nowMs: number): boolean {
    const admin = this.active(target, nowMs) ? (this.p.adminCode[target] as number) : UP
    return admin !== DOWN && this.p.healthCode[target] !== HEALTH_DOWN
  }

  /** Draining by the operator and not down by health. */
  drainingButAlive(target: number, nowMs: number): boolean {
    return this.active(target, nowMs) && this.p.adminCode[target] === DRAIN && this.p.healthCode[target] !== HEALTH_DOWN
  }

  /**
   * Admin up and health not down, but degraded by passive health: out of new
   * answers only because clients report failures. Probes should keep
   * measuring such a target, or its passive verdict could never clear.
   */
  degradedButUp(target: number, nowMs: number): boolean {
    const admin = this.active(target, nowMs) ? (this.p.adminCode[target] as number) : UP
    return admin === UP && this.p.healthCode[target] !== HEALTH_DOWN && this.p.degraded[target] === 1
  }

  health(target: number): HealthStatus {
    return HEALTH_CODES[this.p.healthCode[target] ?? 0] as HealthStatus
  }

  degraded(target: number): boolean {
    return this.p.degraded[target] === 1
  }

  /** Reported load, fraction of capacity (1 = full); undefined when never reported. */
  load(target: number): number | undefined {
    const load = this.p.load[target] ?? NaN
    return Number.isNaN(load) ? undefined : load
  }

  /** Reported load strictly above the watermark (a target exactly at it sheds nothing). */
  overloaded(target: number): boolean {
    // NaN (not reported) compares false.
    return (this.p.load[target] as number) > this.overloadWatermark
  }

  /**
   * Room left below the watermark, in weight units: weight × max(0,
   * watermark − load), with an unreported load counting as 0. Rendezvous
   * weights for shed clients, so a target takes shed clients in proportion
   * to how much it can take before it would shed too. Says nothing about
   * serving (select() checks that).
   */
  spareCapacity(target: number, nowMs: number): number {
    const load = this.p.load[target] ?? NaN
    const room = this.overloadWatermark - (Number.isNaN(load) ? 0 : load)
    return room > 0 ? this.weight(target, nowMs) * room : 0
  }

  /** Load-sharing weight at `nowMs`: the admin record's, else the configured capacity. */
  weight(target: number, nowMs: number): number {
    const w = this.active(target, nowMs) ? (this.p.adminWeight[target] as number) : NaN
    return Number.isNaN(w) ? (this.setup.targets[target]?.capacity ?? 0) : w
  }

  /**
   * Latest change of admin state, weight or health as of `nowMs`, ms since
   * the epoch; an admin record that expired changed the state at its expiry.
   * NaN when nothing ever changed.
   */
  changedAtMs(target: number, nowMs: number): number {
    const p = this.p
    const expires = p.adminExpiresAtMs[target] ?? NaN
    let admin = NaN
    if (!Number.isNaN(expires)) admin = nowMs < expires ? (p.adminChangedAtMs[target] as number) : expires
    const health = p.healthChangedAtMs[target] ?? NaN
    if (Number.isNaN(admin)) return health
    return Number.isNaN(health) || admin > health ? admin : health
  }

  /** The admin record in force at `nowMs`, undefined when none (or it expired). */
  adminRecord(target: number, nowMs: number): TargetAdminRecord | undefined {
    return this.active(target, nowMs) ? this.p.adminRecord[target] : undefined
  }

  /** Everything known about `target` at `nowMs` (allocates: API and traces). */
  describe(target: number, nowMs: number): TargetStatus {
    const t = this.setup.targets[target] as Target
    const record = this.adminRecord(target, nowMs)
    const changed = this.changedAtMs(target, nowMs)
    return {
      id: t.id,
      admin: this.admin(target, nowMs),
      health: this.health(target),
      degraded: this.degraded(target),
      serving: this.serving(target, nowMs),
      weight: this.weight(target, nowMs),
      capacity: t.capacity,
      load: this.load(target),
      overloaded: this.overloaded(target),
      reason: record?.reason,
      expiresAtMs: record?.expiresAtMs,
      changedAtMs: Number.isNaN(changed) ? undefined : changed,
    }
  }
}

export interface TargetStatesOptions {
  /** Health per target id; targets not listed are unknown (serving). */
  readonly health?: ReadonlyMap<string, TargetHealthRecord>
  readonly version?: number
  /** Reported load per target id, fraction of capacity (0 to 100, 1 = full); targets not listed have none. */
  readonly load?: ReadonlyMap<string, number>
  /** Fraction of capacity above which a target sheds (config health.overloadWatermark; default 0.9). */
  readonly overloadWatermark?: number
}

/** config/schema.ts's default for health.overloadWatermark. */
export const DEFAULT_OVERLOAD_WATERMARK = 0.9
/** Upper bound on a load or watermark, as the API and config schemas allow. */
const MAX_LOAD = 100

/**
 * Compiles admin records (by target id) and health for `setup`. Throws
 * STEER_ERR_OVERRIDE_TARGET_STATE_INVALID listing every problem, paths by
 * target id as JSON keys (`["sea-1"].weight`, `["sea-9"]` for an unknown id,
 * `health["sea-9"].status`, `load["sea-1"]`, `overloadWatermark`).
 */
export function createTargetStates(
  setup: SteeringSetup,
  admin: ReadonlyMap<string, TargetAdminRecord> = new Map(),
  opts: TargetStatesOptions = {},
): TargetStates {
  const n = setup.targets.length
  const problems: OverrideProblem[] = []
  const adminCode = new Uint8Array(n)
  const adminWeight = new Float64Array(n).fill(NaN)
  const adminExpiresAtMs = new Float64Array(n).fill(NaN)
  const adminChangedAtMs = new Float64Array(n).fill(NaN)
  const adminRecord: (TargetAdminRecord | undefined)[] = new Array<TargetAdminRecord | undefined>(n).fill(undefined)
  for (const [id, record] of admin) {
    const path = joinPath('', id)
    const t = setup.targetIndex.get(id)
    if (t === undefined) {
      problems.push({ path, message: 'unknown target' })
      continue
    }
    const before = problems.length
    checkAdminRecord(record, path, problems)
    if (problems.length > before) continue
    adminCode[t] = ADMIN_CODES.indexOf(record.admin)
    adminWeight[t] = record.weight ?? NaN
    adminExpiresAtMs[t] = record.expiresAtMs ?? Infinity
    adminChangedAtMs[t] = record.changedAtMs
    adminRecord[t] = record
  }
  const healthCode = new Uint8Array(n)
  const degraded = new Uint8Array(n)
  const healthChangedAtMs = new Float64Array(n).fill(NaN)
  for (const [id, h] of opts.health ?? new Map<string, TargetHealthRecord>()) {
    const path = joinPath('health', id)
    const t = setup.targetIndex.get(id)
    if (t === undefined) problems.push({ path, message: 'unknown target' })
    else if (!HEALTH_CODES.includes(h.status)) problems.push({ path: `${path}.status`, message: 'must be "unknown", "up" or "down"' })
    else if (h.changedAtMs !== undefined && !Number.isFinite(h.changedAtMs)) problems.push({ path: `${path}.changedAtMs`, message: 'must be a finite number (ms since the epoch)' })
    else {
      healthCode[t] = HEALTH_CODES.indexOf(h.status)
      degraded[t] = h.degraded === true ? 1 : 0
      healthChangedAtMs[t] = h.changedAtMs ?? NaN
    }
  }
  const load = new Float64Array(n).fill(NaN)
  const overloadWatermark = opts.overloadWatermark ?? DEFAULT_OVERLOAD_WATERMARK
  const watermarkOk = typeof overloadWatermark === 'number' && overloadWatermark > 0 && overloadWatermark <= MAX_LOAD
  if (!watermarkOk) problems.push({ path: 'overloadWatermark', message: `must be a number above 0 and at most ${MAX_LOAD} (fraction of capacity)` })
  let anyOverloaded = false
  for (const [id, value] of opts.load ?? new Map<string, number>()) {
    const path = joinPath('load', id)
    const t = setup.targetIndex.get(id)
    if (t === undefined) problems.push({ path, message: 'unknown target' })
    else if (typeof value !== 'number' || !(value >= 0 && value <= MAX_LOAD)) problems.push({ path, message: `must be a number from 0 to ${MAX_LOAD} (fraction of capacity)` })
    else {
      load[t] = value
      if (value > overloadWatermark) anyOverloaded = true
    }
  }
  const version = opts.version ?? 0
  if (!Number.isSafeInteger(version) || version < 0) problems.push({ path: '', message: `version ${version} is not a non-negative integer` })
  if (problems.length > 0) throw new OverrideError(OverrideErrorCode.TARGET_STATE_INVALID, problems)
  return new TargetStates({ setup, version, adminCode, adminWeight, adminExpiresAtMs, adminChangedAtMs, adminRecord, healthCode, degraded, healthChangedAtMs, load, overloadWatermark, anyOverloaded })
}

/** Upper bound on a weight: capacities are relative, so a larger number is a typo. */
const MAX_WEIGHT = 1_000_000

function checkAdminRecord(r: TargetAdminRecord, path: string, problems: OverrideProblem[]): void {
  if (!ADMIN_CODES.includes(r.admin)) problems.push({ path: `${path}.admin`, message: 'must be "up", "down" or "drain"' })
  if (r.weight !== undefined) checkWeight(r.weight, `${path}.weight`, problems)
  checkReason(r.reason, `${path}.reason`, problems)
  if (r.expiresAtMs !== undefined && !Number.isFinite(r.expiresAtMs)) problems.push({ path: `${path}.expiresAtMs`, message: 'must be a finite number (ms since the epoch)' })
  if (!Number.isFinite(r.changedAtMs)) problems.push({ path: `${path}.changedAtMs`, message: 'must be a finite number (ms since the epoch)' })
}

function checkWeight(v: unknown, path: string, problems: OverrideProblem[]): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_WEIGHT) problems.push({ path, message: `must be a number from 0 to ${MAX_WEIGHT}` })
}

export type TargetPatchValidation =
  | { readonly record: TargetAdminRecord; readonly problems: readonly [] }
  | { readonly record: undefined; readonly problems: readonly OverrideProblem[] }

const PATCH_FIELDS: readonly string[] = ['state', 'weight', 'reason', 'expiresAt']

/**
 * Applies an API request body (`PATCH /v1/targets/{id}`:
 * `{ state?: up|down|drain, weight?: number|null, reason, expiresAt?: RFC 3339|null }`)
 * to the target's `previous` record (ignored once expired at `nowMs`). Absent
 * fields keep their previous value; null clears weight (back to capacity) or
 * expiresAt (no expiry). `reason` is required: every change says why.
 * changedAtMs becomes `nowMs` when state or weight changes. Problems carry
 * paths in the body. Never throws.
 */
export function validateTargetPatch(input: unknown, previous: TargetAdminRecord | undefined, nowMs: number): TargetPatchValidation {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { record: undefined, problems: [{ path: '', message: 'must be a JSON object' }] }
  const body = input as Record<string, unknown>
  const problems: OverrideProblem[] = []
  for (const k of Object.keys(body)) if (!PATCH_FIELDS.includes(k)) problems.push({ path: joinPath('', k), message: 'unknown field' })
  const prev = previous && (previous.expiresAtMs === undefined || nowMs < previous.expiresAtMs) ? previous : undefined
  if (body.state !== undefined && !ADMIN_CODES.includes(body.state as AdminState)) problems.push({ path: 'state', message: 'must be "up", "down" or "drain"' })
  if (body.weight !== undefined && body.weight !== null) checkWeight(body.weight, 'weight', problems)
  checkReason(body.reason, 'reason', problems)
  let expiresAtMs = prev?.expiresAtMs
  if (body.expiresAt === null) expiresAtMs = undefined
  else if (body.expiresAt !== undefined) {
    const ms = typeof body.expiresAt === 'string' ? parseRfc3339Ms(body.expiresAt) : undefined
    if (ms === undefined) problems.push({ path: 'expiresAt', message: 'must be an RFC 3339 time, e.g. "2026-01-02T03:04:05Z", or null' })
    else if (ms <= nowMs) problems.push({ path: 'expiresAt', message: 'is not in the future' })
    else expiresAtMs = ms
  }
  if (problems.length > 0) return { record: undefined, problems }
  const admin = (body.state as AdminState | undefined) ?? prev?.admin ?? 'up'
  const weight = body.weight === null ? undefined : ((body.weight as number | undefined) ?? prev?.weight)
  const changed = admin !== (prev?.admin ?? 'up') || weight !== prev?.weight
  const record: TargetAdminRecord = {
    admin,
    ...(weight === undefined ? {} : { weight }),
    reason: body.reason as string,
    ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
    changedAtMs: changed || prev === undefined ? nowMs : prev.changedAtMs,
  }
  return { record, problems: [] }
}
