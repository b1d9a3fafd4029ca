/**
 * Probe recipes (GET /v1/probe/recipe?client=IP): which targets a client
 * should measure next, in Netflix Probnik's recipe form (github.com/Netflix/
 * probnik: probnik/probe.ts ProbeRecipe, checked field by field in
 * probnik/recipe_providers/http_recipe_provider.ts):
 *
 *   { "name": "steerdns", "type": "http_get", "next": 0, "pulses": 3,
 *     "pulse_delay": 1000, "pulse_timeout": 5000,
 *     "ctx": { "client": "198.51.100.0/24", "ts": 1767322245000, "seed": 7 },
 *     "targets": [ { "name": "sea-1", "target": "http://192.0.2.11/probe",
 *                    "ctx": { "role": "best", "site": "seattle" } } ] }
 *
 * Probnik echoes the recipe's ctx in its report, so `ctx.client` tells
 * report.ts which prefix the samples belong to. The choice: the prefix's
 * published best, its nearest challengers (then targets with too few
 * samples to count yet), and a little random exploration; a prefix nothing
 * is known of measures a few targets, hinted ones (e.g. geo nearest) first.
 * Pure: the same request and seed give the same recipe.
 */
import { fnv1a32, formatAddress } from '../steering/index.js'
import type { ClientPrefix } from './client-prefix.js'
import { formatClientPrefix } from './client-prefix.js'
import type { KeyEstimates, TargetEstimate } from './aggregator.js'
import { MeasureError, MeasureErrorCode } from './measure-error.js'
import type { MeasureProblem } from './measure-error.js'

/** What a recipe needs of a target (steering's Target has it). */
export interface RecipeTarget {
  readonly index: number
  readonly id: string
  readonly site: string
  readonly ipv4: readonly Uint8Array[]
  readonly ipv6: readonly Uint8Array[]
}

export interface ProbeRecipeOptions {
  /**
   * The probe URL on a target: `{address}` (its first address of the client's
   * family, IPv6 in brackets), `{id}`, `{site}`. Default "http://{address}/probe".
   */
  readonly urlTemplate?: string
  /** Targets measured besides the best (default 2). */
  readonly challengers?: number
  /** Targets picked at random among the rest (default 1). */
  readonly explore?: number
  /** Targets measured for a prefix with no counting estimate (default 4). */
  readonly coldStart?: number
  /** Probnik `pulses`: samples per target per run (default 3). */
  readonly pulses?: number
  /** Probnik `pulse_delay` in ms (default 1000). */
  readonly pulseDelayMs?: number
  /** Probnik `pulse_timeout` in ms (default 5000). */
  readonly pulseTimeoutMs?: number
  /** Probnik `next`: ms until the probe asks for the next recipe; 0 runs once (default 0). */
  readonly nextMs?: number
  /** Probnik recipe `name` (default "steerdns"). */
  readonly name?: string
}

export interface ProbeRecipeRequest {
  /** The client's prefix (reduceClient() of the query's `client`). */
  readonly client: ClientPrefix
  /** Aggregator.prefixEstimates() of that prefix; undefined when nothing is known. */
  readonly estimates: KeyEstimates | undefined
  /** All configured targets, by index. */
  readonly targets: readonly RecipeTarget[]
  readonly nowMs: number
  /** Exploration is random but seeded: the same seed and client give the same recipe. */
  readonly seed: number
  /** Targets that may be probed (e.g. not down or drained); default all. */
  readonly eligible?: (target: number) => boolean
  /** Target indices to try first when the prefix is new (e.g. nearest by geo). */
  readonly hint?: readonly number[]
}

export type ProbeRole = 'best' | 'challenger' | 'explore'

export interface ProbnikRecipeTarget {
  /** The target id: Probnik reports it back as the pulse report's `name`. */
  readonly name: string
  /** URL probed. */
  readonly target: string
  readonly ctx: { readonly role: ProbeRole; readonly site: string }
}

export interface ProbnikRecipe {
  readonly name: string
  readonly type: 'http_get'
  readonly next: number
  readonly pulses: number
  readonly pulse_delay: number
  readonly pulse_timeout: number
  /** Echoed in the report: `client` is what the samples will be folded under. */
  readonly ctx: { readonly client: string; readonly ts: number; readonly seed: number }
  readonly targets: readonly ProbnikRecipeTarget[]
}

export type RecipeMaker = (req: ProbeRecipeRequest) => ProbnikRecipe

/** Validates options once and returns the recipe function. Throws MeasureError STEER_ERR_MEASURE_BAD_OPTIONS. */
export function createRecipeMaker(opts: ProbeRecipeOptions = {}): RecipeMaker {
  const o = {
    urlTemplate: opts.urlTemplate ?? 'http://{address}/probe',
    challengers: opts.challengers ?? 2,
    explore: opts.explore ?? 1,
    coldStart: opts.coldStart ?? 4,
    pulses: opts.pulses ?? 3,
    pulseDelayMs: opts.pulseDelayMs ?? 1000,
    pulseTimeoutMs: opts.pulseTimeoutMs ?? 5000,
    nextMs: opts.nextMs ?? 0,
    name: opts.name ?? 'steerdns',
  }
  const problems: MeasureProblem[] = []
  const int = (name: keyof typeof o, min: number, max: number): void => {
    const v = o[name]
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) problems.push({ path: name, message: `must be an integer ${min}-${max}` })
  }
  int('challengers', 0, 64)
  int('explore', 0, 64)
  int('coldStart', 1, 64)
  int('pulses', 1, 100)
  int('pulseDelayMs', 0, 600_000)
  int('pulseTimeoutMs', 1, 600_000)
  int('nextMs', 0, 86_400_000)
  if (!o.urlTemplate.includes('{address}')) problems.push({ path: 'urlTemplate', message: 'must contain {address}' })
  if (problems.length > 0) throw new MeasureError(MeasureErrorCode.BAD_OPTIONS, problems)
  return (req) => makeRecipe(req, o)
}

function makeRecipe(req: ProbeRecipeRequest, o: Required<ProbeRecipeOptions>): ProbnikRecipe {
  const family = req.client.family
  const probeable = (i: number): boolean => {
    const t = req.targets[i]
    return t !== undefined && (family === 4 ? t.ipv4 : t.ipv6).length > 0 && (req.eligible?.(i) ?? true)
  }
  const chosen: [number, ProbeRole][] = []
  const taken = new Set<number>()
  const take = (i: number, role: ProbeRole): void => {
    if (!taken.has(i) && probeable(i)) {
      taken.add(i)
      chosen.push([i, role])
    }
  }
  const known = (req.estimates?.targets ?? []).filter((e) => probeable(e.target))
  const counting = known.filter((e) => e.counting).sort(byScore)
  const bestIndex = req.estimates?.best
  const best = counting.find((e) => e.target === bestIndex) ?? counting[0]
  const random = seededRandom((req.seed ^ fnv1a32(formatClientPrefix(req.client))) >>> 0)
  if (best) {
    take(best.target, 'best')
    // Challengers: the next best that count, then those still gathering samples (most promising first).
    const waiting = known.filter((e) => !e.counting).sort(byScore)
    for (const e of [...counting, ...waiting]) if (chosen.length < 1 + o.challengers) take(e.target, 'challenger')
    exploreFrom(req, random, taken, chosen.length + o.explore, take, probeable)
  } else {
    // Nothing counts yet: hinted targets, then those already measured a little, then random ones.
    for (const i of req.hint ?? []) if (chosen.length < o.coldStart) take(i, 'challenger')
    for (const e of [...known].sort(byScore)) if (chosen.length < o.coldStart) take(e.target, 'challenger')
    exploreFrom(req, random, taken, Math.max(o.coldStart, chosen.length + o.explore), take, probeable)
  }
  return {
    name: o.name,
    type: 'http_get',
    next: o.nextMs,
    pulses: o.pulses,
    pulse_delay: o.pulseDelayMs,
    pulse_timeout: o.pulseTimeoutMs,
    ctx: { client: formatClientPrefix(req.client), ts: req.nowMs, seed: req.seed },
    targets: chosen.map(([i, role]) => {
      const t = req.targets[i] as RecipeTarget
      return { name: t.id, target: probeUrl(o.urlTemplate, t, family), ctx: { role, site: t.site } }
    }),
  }
}

/** Adds random probeable targets not yet taken until `total` are chosen (partial Fisher-Yates over the rest). */
function exploreFrom(
  req: ProbeRecipeRequest,
  random: () => number,
  taken: ReadonlySet<number>,
  total: number,
  take: (i: number, role: ProbeRole) => void,
  probeable: (i: number) => boolean,
): void {
  const rest: number[] = []
  for (let i = 0; i < req.targets.length; i++) if (!taken.has(i) && probeable(i)) rest.push(i)
  for (let k = 0; k < rest.length && taken.size < total; k++) {
    const j = k + Math.floor(random() * (rest.length - k))
    const pick = rest[j] as number
    rest[j] = rest[k] as number
    rest[k] = pick
    take(pick, 'explore')
  }
}

/** Lower mean first; then more samples; then lower index. Estimators with failures only (no mean) last. */
function byScore(a: TargetEstimate, b: TargetEstimate): number {
  const ma = Number.isNaN(a.meanMs) ? Infinity : a.meanMs
  const mb = Number.isNaN(b.meanMs) ? Infinity : b.meanMs
  if (ma !== mb) return ma < mb ? -1 : 1
  if (a.count !== b.count) return b.count - a.count
  return a.target - b.target
}

function probeUrl(template: string, t: RecipeTarget, family: 4 | 6): string {
  const address = family === 4 ? formatAddress(t.ipv4[0] as Uint8Array) : `[${formatAddress(t.ipv6[0] as Uint8Array)}]`
  return template.replaceAll('{address}', address).replaceAll('{id}', encodeURIComponent(t.id)).replaceAll('{site}', encodeURIComponent(t.site))
}

/** mulberry32: small, seeded, the same sequence everywhere (not for secrets). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
