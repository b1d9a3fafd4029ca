/**
 * Operator overrides (DESIGN.md, "override"; decision step 2): pins that send
 * a client prefix to chosen targets, and biases that make a target look
 * slower (or faster) in every map entry. The control plane validates records
 * and compiles them into an immutable OverrideSet; select() reads it with no
 * parsing, no string lookups and no allocation on the DNS path.
 *
 * Expiry is checked per decision (one comparison against `nowMs`), so an
 * expired override stops applying at its instant even if the control plane
 * recompiles late; `nextExpiryMs` tells the control plane when dropping
 * expired records would shrink the set.
 */
import { clientKey, formatPrefix } from './client-key.js'
import type { ClientKey } from './client-key.js'
import { parsePrefix, parseRfc3339Ms } from './map-json.js'
import { joinPath, OverrideError, OverrideErrorCode } from './override-error.js'
import type { OverrideProblem } from './override-error.js'
import { createTrieMatch, PrefixTrieBuilder } from './prefix-trie.js'
import type { PrefixTrie } from './prefix-trie.js'
import type { SteeringSetup } from './targets.js'

/** Pin a client prefix to targets: they answer, in this order, while one of them serves. */
export interface PinOverride {
  readonly id: string
  readonly kind: 'pin'
  /** "198.51.100.0/24" or "2001:db8::/48"; bits past the length are zero. */
  readonly prefix: string
  /** Target ids, preferred first. */
  readonly targets: readonly string[]
  readonly reason: string
  /** ms since the epoch; the pin applies while nowMs < expiresAtMs. */
  readonly expiresAtMs?: number
}

/** Add `biasMs` to a target's latency score in every map entry (negative: look faster). */
export interface BiasOverride {
  readonly id: string
  readonly kind: 'bias'
  readonly target: string
  readonly biasMs: number
  readonly reason: string
  readonly expiresAtMs?: number
}

export type OverrideRecord = PinOverride | BiasOverride

/** Bounds on what an override may say; each exists to catch a typo, not to limit policy. */
export const OverrideLimits = {
  /** A pin answers at most this many targets anyway (service `answers` slices further). */
  maxPinTargets: 16,
  /** 10 s: far beyond any edge RTT, so a larger value is a unit mistake (seconds for ms). */
  maxAbsBiasMs: 10_000,
  maxReasonChars: 500,
} as const

/** Where lookupPin() writes (reused by the caller: lookups never allocate). */
export interface PinMatch {
  /** The most specific pin whose prefix covers the key (expiry not checked), -1 when none. */
  pin: number
  /** Longest pin prefix strictly inside the key's prefix, -1 when none (ECS scope, RFC 7871 section 7.2.1). */
  deepestBelowLen: number
}

/** A fresh PinMatch to reuse across lookups. */
export function createPinMatch(): PinMatch {
  return { pin: -1, deepestBelowLen: -1 }
}

interface OverrideSetParts {
  readonly setup: SteeringSetup
  readonly version: number
  readonly records: readonly OverrideRecord[]
  readonly v4: PrefixTrie
  readonly v6: PrefixTrie
  readonly slotFirstPin: Int32Array
  readonly pinRecord: readonly PinOverride[]
  readonly pinTargets: readonly (readonly number[])[]
  readonly pinPrefixLen: Uint8Array
  readonly pinExpiresAtMs: Float64Array
  readonly pinNext: Int32Array
  readonly biasStart: Uint32Array
  readonly biasValueMs: Float64Array
  readonly biasExpiresAtMs: Float64Array
  readonly biasRecord: readonly BiasOverride[]
}

/**
 * A compiled, immutable set of overrides for one SteeringSetup (target
 * indices are that setup's). Pins live in one prefix trie per family, keyed
 * like client keys (IPv4-mapped IPv6 prefixes are IPv4). Pins form one chain
 * per key: most specific prefix first, and among pins of the same prefix the
 * one listed last (the newest) first; select() walks it past expired pins and
 * pins with no target in the service's pool. Biases are per-target ranges in
 * flat arrays. Accessors take in-range numbers and do not check them.
 */
export class OverrideSet {
  readonly setup: SteeringSetup
  readonly version: number
  /** The records compiled, in the order given. */
  readonly records: readonly OverrideRecord[]
  /** Earliest expiresAtMs of any record; Infinity when none expires. */
  readonly nextExpiryMs: number
  /** False when no record is a bias: select() skips bias arithmetic entirely. */
  readonly hasBias: boolean
  readonly pinCount: number
  private readonly parts: OverrideSetParts
  private readonly scratch = createTrieMatch()

  /** Internal: use compileOverrides() or emptyOverrides(). */
  constructor(parts: OverrideSetParts) {
    this.parts = parts
    this.setup = parts.setup
    this.version = parts.version
    this.records = parts.records
    this.pinCount = parts.pinRecord.length
    this.hasBias = parts.biasRecord.length > 0
    let next = Infinity
    for (const r of parts.records) if (r.expiresAtMs !== undefined && r.expiresAtMs < next) next = r.expiresAtMs
    this.nextExpiryMs = next
  }

  /** The most specific pin covering `key`, and the deepest pin inside it; allocates nothing, never throws. */
  lookupPin(key: ClientKey, out: PinMatch): void {
    const m = this.scratch
    ;(key.family === 4 ? this.parts.v4 : this.parts.v6).lookup(key.address, key.prefixLen, m)
    out.pin = m.value < 0 ? -1 : (this.parts.slotFirstPin[m.value] as number)
    out.deepestBelowLen = m.deepestBelowLen
  }

  /** The next pin to try after `pin` (same prefix, older; then the next shorter prefix), -1 at the end. */
  nextPin(pin: number): number {
    return this.parts.pinNext[pin] as number
  }

  /** True while `pin` has not expired at `nowMs`. */
  isPinActive(pin: number, nowMs: number): boolean {
    return nowMs < (this.parts.pinExpiresAtMs[pin] as number)
  }

  pinPrefixLen(pin: number): number {
    return this.parts.pinPrefixLen[pin] as number
  }

  /** Target indices of `pin`, preferred first. */
  pinTargets(pin: number): readonly number[] {
    return this.parts.pinTargets[pin] as readonly number[]
  }

  pinRecord(pin: number): PinOverride {
    return this.parts.pinRecord[pin] as PinOverride
  }

  /** Sum of the active biases on `target` at `nowMs` (ms; 0 when none). Allocates nothing. */
  biasMs(target: number, nowMs: number): number {
    const p = this.parts
    const end = p.biasStart[target + 1]
    if (end === undefined) return 0
    let sum = 0
    for (let i = p.biasStart[target] as number; i < end; i++) if (nowMs < (p.biasExpiresAtMs[i] as number)) sum += p.biasValueMs[i] as number
    return sum
  }

  /** The active bias records on `target` (allocates: traces and the API). */
  activeBiases(target: number, nowMs: number): BiasOverride[] {
    const p = this.parts
    const end = p.biasStart[target + 1]
    const out: BiasOverride[] = []
    if (end === undefined) return out
    for (let i = p.biasStart[target] as number; i < end; i++) if (nowMs < (p.biasExpiresAtMs[i] as number)) out.push(p.biasRecord[i] as BiasOverride)
    return out
  }

  /** Records that apply at `nowMs` (not expired), in the order given. */
  active(nowMs: number): OverrideRecord[] {
    return this.records.filter((r) => r.expiresAtMs === undefined || nowMs < r.expiresAtMs)
  }
}

/** An override set with nothing in it. */
export function emptyOverrides(setup: SteeringSetup): OverrideSet {
  return compileOverrides([], setup)
}

/**
 * Compiles validated records for `setup`. Throws STEER_ERR_OVERRIDE_INVALID
 * listing every problem (paths like `[2].targets[0]`), e.g. a record naming a
 * target the configuration no longer has, or two records with one id.
 * Expired records compile (they never apply); drop them to save space.
 */
export function compileOverrides(records: readonly OverrideRecord[], setup: SteeringSetup, opts: { version?: number } = {}): OverrideSet {
  const problems: OverrideProblem[] = []
  const ids = new Map<string, number>()
  records.forEach((r, i) => {
    for (const p of validateOverrideRecord(r, setup)) problems.push({ path: `[${i}]${p.path === '' || p.path.startsWith('[') ? '' : '.'}${p.path}`, message: p.message })
    if (typeof r?.id === 'string') {
      const first = ids.get(r.id)
      if (first !== undefined) problems.push({ path: `[${i}].id`, message: `repeats the id of [${first}]` })
      else ids.set(r.id, i)
    }
  })
  const version = opts.version ?? 0
  if (!Number.isSafeInteger(version) || version < 0) problems.push({ path: '', message: `version ${version} is not a non-negative integer` })
  if (problems.length > 0) throw new OverrideError(OverrideErrorCode.INVALID, problems)

  // Pins: one trie slot per distinct prefix; the slot's pins newest (last listed) first.
  const pins = records.filter((r): r is PinOverride => r.kind === 'pin')
  const slotOf = new Map<string, number>()
  const slotKeys: ClientKey[] = []
  const slotPins: number[][] = []
  const pinKeys = pins.map((p) => parsePinPrefix(p.prefix) as ClientKey)
  pinKeys.forEach((key, pin) => {
    const text = `${key.family}|${formatPrefix(key)}`
    let slot = slotOf.get(text)
    if (slot === undefined) {
      slot = slotKeys.length
      slotOf.set(text, slot)
      slotKeys.push(key)
      slotPins.push([])
    }
    ;(slotPins[slot] as number[]).unshift(pin)
  })
  const v4 = new PrefixTrieBuilder(32, slotKeys.length)
  const v6 = new PrefixTrieBuilder(128, slotKeys.length)
  slotKeys.forEach((key, slot) => (key.family === 4 ? v4 : v6).insert(key.address, key.prefixLen, slot))
  const tries = { v4: v4.freeze(), v6: v6.freeze() }
  const slotFirstPin = new Int32Array(slotKeys.length)
  slotPins.forEach((list, slot) => (slotFirstPin[slot] = list[0] as number))
  // Each slot's last pin continues with the next shorter covering prefix's first pin.
  const pinNext = new Int32Array(pins.length).fill(-1)
  const m = createTrieMatch()
  slotKeys.forEach((key, slot) => {
    const list = slotPins[slot] as number[]
    for (let i = 0; i + 1 < list.length; i++) pinNext[list[i] as number] = list[i + 1] as number
    if (key.prefixLen === 0) return
    ;(key.family === 4 ? tries.v4 : tries.v6).lookup(key.address, key.prefixLen - 1, m)
    if (m.value >= 0) pinNext[list[list.length - 1] as number] = slotFirstPin[m.value] as number
  })

  // Biases: grouped by target into contiguous ranges.
  const biases = records.filter((r): r is BiasOverride => r.kind === 'bias')
  const count = setup.targets.length
  const biasStart = new Uint32Array(count + 1)
  const biasTargets = biases.map((b) => setup.targetIndex.get(b.target) as number)
  for (const t of biasTargets) biasStart[t + 1] = (biasStart[t + 1] as number) + 1
  for (let t = 0; t < count; t++) biasStart[t + 1] = (biasStart[t + 1] as number) + (biasStart[t] as number)
  const fill = biasStart.slice(0, count)
  const biasValueMs = new Float64Array(biases.length)
  const biasExpiresAtMs = new Float64Array(biases.length)
  const biasRecord: BiasOverride[] = new Array<BiasOverride>(biases.length)
  biases.forEach((b, i) => {
    const t = biasTargets[i] as number
    const at = fill[t] as number
    fill[t] = at + 1
    biasValueMs[at] = b.biasMs
    biasExpiresAtMs[at] = b.expiresAtMs ?? Infinity
    biasRecord[at] = b
  })

  return new OverrideSet({
    setup,
    version,
    records: [...records],
    ...tries,
    slotFirstPin,
    pinRecord: pins,
    pinTargets: pins.map((p) => Object.freeze(p.targets.map((id) => setup.targetIndex.get(id) as number))),
    pinPrefixLen: Uint8Array.from(pinKeys, (k) => k.prefixLen),
    pinExpiresAtMs: Float64Array.from(pins, (p) => p.expiresAtMs ?? Infinity),
    pinNext,
    biasStart,
    biasValueMs,
    biasExpiresAtMs,
    biasRecord,
  })
}

/** What validateOverride() returns: a record, or every problem found. */
export type OverrideValidation = { readonly record: OverrideRecord; readonly problems: readonly [] } | { readonly record: undefined; readonly problems: readonly OverrideProblem[] }

/**
 * Checks an API request body (`POST /v1/overrides`) and turns it into a
 * record with id `opts.id`:
 * `{ prefix, targets, reason, expiresAt? }` (a pin) or
 * `{ target, biasMs, reason, expiresAt? }` (a bias); `kind` may be given and
 * must agree. `expiresAt` is RFC 3339 text and must be after `opts.nowMs`.
 * Problems carry paths in the body (`targets[1]`, `prefix`). Never throws.
 */
export function validateOverride(input: unknown, setup: SteeringSetup, opts: { readonly id: string; readonly nowMs: number }): OverrideValidation {
  const problems: OverrideProblem[] = []
  if (!isPlainObject(input)) return { record: undefined, problems: [{ path: '', message: 'must be a JSON object' }] }
  const isPin = 'prefix' in input || 'targets' in input
  const isBias = 'target' in input || 'biasMs' in input
  let kind: 'pin' | 'bias' | undefined
  if (isPin && isBias) problems.push({ path: '', message: 'give prefix and targets (a pin) or target and biasMs (a bias), not both' })
  else if (isPin) kind = 'pin'
  else if (isBias) kind = 'bias'
  else problems.push({ path: '', message: 'an override needs prefix and targets (a pin) or target and biasMs (a bias)' })
  if ('kind' in input && input.kind !== 'pin' && input.kind !== 'bias') problems.push({ path: 'kind', message: 'must be "pin" or "bias"' })
  else if ('kind' in input && kind !== undefined && input.kind !== kind) problems.push({ path: 'kind', message: `is "${String(input.kind)}" but the fields given make a ${kind}` })
  const allowed = kind === 'bias' ? BIAS_INPUT_FIELDS : PIN_INPUT_FIELDS
  if (kind !== undefined) for (const k of Object.keys(input)) if (!allowed.includes(k)) problems.push({ path: joinPath('', k), message: 'unknown field' })
  checkReason(input.reason, 'reason', problems)
  let expiresAtMs: number | undefined
  if (input.expiresAt !== undefined) {
    const ms = typeof input.expiresAt === 'string' ? parseRfc3339Ms(input.expiresAt) : undefined
    if (ms === undefined) problems.push({ path: 'expiresAt', message: 'must be an RFC 3339 time, e.g. "2026-01-02T03:04:05Z"' })
    else if (ms <= opts.nowMs) problems.push({ path: 'expiresAt', message: 'is not in the future' })
    else expiresAtMs = ms
  }
  if (kind === 'pin') {
    checkPrefix(input.prefix, 'prefix', problems)
    checkTargetList(input.targets, 'targets', setup, problems)
  } else if (kind === 'bias') {
    checkTarget(input.target, 'target', setup, problems)
    checkBias(input.biasMs, 'biasMs', problems)
  }
  if (problems.length > 0 || kind === undefined) return { record: undefined, problems }
  const expiry = expiresAtMs === undefined ? {} : { expiresAtMs }
  const record: OverrideRecord =
    kind === 'pin'
      ? { id: opts.id, kind, prefix: input.prefix as string, targets: [...(input.targets as string[])], reason: input.reason as string, ...expiry }
      : { id: opts.id, kind, target: input.target as string, biasMs: input.biasMs as number, reason: input.reason as string, ...expiry }
  return { record, problems: [] }
}

/**
 * Checks a stored record against `setup` (e.g. after a restart with a changed
 * configuration). Returns every problem with its path in the record; empty
 * when the record compiles. Never throws.
 */
export function validateOverrideRecord(record: unknown, setup: SteeringSetup): OverrideProblem[] {
  const problems: OverrideProblem[] = []
  if (!isPlainObject(record)) return [{ path: '', message: 'must be an object' }]
  if (typeof record.id !== 'string' || record.id === '') problems.push({ path: 'id', message: 'must be a non-empty string' })
  if (record.kind !== 'pin' && record.kind !== 'bias') {
    problems.push({ path: 'kind', message: 'must be "pin" or "bias"' })
    return problems
  }
  const allowed = record.kind === 'pin' ? PIN_RECORD_FIELDS : BIAS_RECORD_FIELDS
  for (const k of Object.keys(record)) if (!allowed.includes(k)) problems.push({ path: joinPath('', k), message: 'unknown field' })
  checkReason(record.reason, 'reason', problems)
  if (record.expiresAtMs !== undefined && !Number.isFinite(record.expiresAtMs)) problems.push({ path: 'expiresAtMs', message: 'must be a finite number (ms since the epoch)' })
  if (record.kind === 'pin') {
    checkPrefix(record.prefix, 'prefix', problems)
    checkTargetList(record.targets, 'targets', setup, problems)
  } else {
    checkTarget(record.target, 'target', setup, problems)
    checkBias(record.biasMs, 'biasMs', problems)
  }
  return problems
}

const PIN_INPUT_FIELDS: readonly string[] = ['kind', 'prefix', 'targets', 'reason', 'expiresAt']
const BIAS_INPUT_FIELDS: readonly string[] = ['kind', 'target', 'biasMs', 'reason', 'expiresAt']
const PIN_RECORD_FIELDS: readonly string[] = ['id', 'kind', 'prefix', 'targets', 'reason', 'expiresAtMs']
const BIAS_RECORD_FIELDS: readonly string[] = ['id', 'kind', 'target', 'biasMs', 'reason', 'expiresAtMs']

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The client key a pin prefix text stands for (IPv4-mapped IPv6 becomes IPv4), or a message. */
function parsePinPrefix(text: string): ClientKey | string {
  const out = { address: new Uint8Array(0) }
  const len = parsePrefix(text, out, new Uint8Array(4), new Uint8Array(16))
  return typeof len === 'string' ? len : clientKey(out.address, len, 'ecs')
}

function checkPrefix(v: unknown, path: string, problems: OverrideProblem[]): void {
  if (typeof v !== 'string') {
    problems.push({ path, message: 'not a CIDR: must be address/length text, e.g. "198.51.100.0/24"' })
    return
  }
  const key = parsePinPrefix(v)
  if (typeof key === 'string') problems.push({ path, message: `not a CIDR: ${key}` })
}

function checkTargetList(v: unknown, path: string, setup: SteeringSetup, problems: OverrideProblem[]): void {
  if (!Array.isArray(v) || v.length === 0 || v.length > OverrideLimits.maxPinTargets) {
    problems.push({ path, message: `must be a list of 1-${OverrideLimits.maxPinTargets} target ids` })
    return
  }
  const seen = new Set<string>()
  v.forEach((id: unknown, i) => {
    checkTarget(id, `${path}[${i}]`, setup, problems)
    if (typeof id === 'string' && seen.has(id)) problems.push({ path: `${path}[${i}]`, message: `repeats target "${id}"` })
    if (typeof id === 'string') seen.add(id)
  })
}

function checkTarget(v: unknown, path: string, setup: SteeringSetup, problems: OverrideProblem[]): void {
  if (typeof v !== 'string') problems.push({ path, message: 'must be a target id' })
  else if (!setup.targetIndex.has(v)) problems.push({ path, message: `unknown target "${v}"` })
}

function checkBias(v: unknown, path: string, problems: OverrideProblem[]): void {
  const max = OverrideLimits.maxAbsBiasMs
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > max) problems.push({ path, message: `must be a number of ms from -${max} to ${max}` })
}

/** Exported for target-states.ts: one rule for every operator reason. */
export function checkReason(v: unknown, path: string, problems: OverrideProblem[]): void {
  if (typeof v !== 'string' || v.trim() === '') problems.push({ path, message: 'must be a non-empty string saying why' })
  else if (v.length > OverrideLimits.maxReasonChars) problems.push({ path, message: `must be at most ${OverrideLimits.maxReasonChars} characters` })
}
