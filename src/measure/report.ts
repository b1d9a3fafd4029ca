/**
 * Measurement batches (POST /v1/measurements) checked and normalised: each
 * report is judged on its own, so one bad report costs only itself, and its
 * reason names the field by JSON path (`reports[3].rttMs: ...`). Clients are
 * reduced to their configured prefix here, before anything is kept.
 *
 * Two shapes are read, alone or mixed in one `reports` array:
 *
 *   ours     { "client": IP or prefix, "resolver"?: IP, "target": id,
 *              "rttMs": number, "at"?: RFC 3339, "ok"?: boolean }
 *   Probnik  { "name": recipe, "type": "http_get", "ctx": { "client"?: ..., "resolver"?: ... },
 *              "data": [ { "name": target id, "target": URL,
 *                          "data": [ { "start": ms, "d": ms, "sc": status, ... } ] } ] }
 *
 * The Probnik shape is what Netflix Probnik's PulseProbe hands its reporter
 * (github.com/Netflix/probnik, probnik/probe.ts ProbeReport and
 * probnik/probes/pulse_probe.ts handleResult): the recipe's `ctx` echoed,
 * then one entry per recipe target with one sample per pulse. A whole body
 * in that shape (no `reports`) is read as a batch of one. Pure: no state, no
 * I/O; the clock is an argument.
 */
import type { ClientPrefix, PrefixPolicy } from './client-prefix.js'
import { parseResolverAddress, reduceClient } from './client-prefix.js'
import { MeasureErrorCode, measureError } from './measure-error.js'

/** One sample, checked and normalised; what the aggregator folds. */
export interface AcceptedReport {
  /** The client network, already reduced to the configured prefix (or the shorter one reported). */
  readonly client: ClientPrefix
  /** The resolver's full address (4 or 16 bytes), when reported. */
  readonly resolver: Uint8Array | undefined
  /** Target index (resolved from its id). */
  readonly target: number
  /** Round-trip time in ms, 0 < rttMs <= maxRttMs; 0 for a failed probe. */
  readonly rttMs: number
  /** When it was measured, ms since the epoch. */
  readonly atMs: number
  /** False for a failed probe: counted as a failure, its RTT is not folded. */
  readonly ok: boolean
}

export interface RejectedReport {
  /** Position in `reports` (0 for a body that is one Probnik report). */
  readonly index: number
  /** `path: what is wrong`; several problems of one report are joined by "; ". */
  readonly reason: string
}

export interface ValidatedBatch {
  readonly reports: readonly AcceptedReport[]
  readonly rejected: readonly RejectedReport[]
}

export interface BatchContext extends PrefixPolicy {
  /** Target id → index; undefined for an id the configuration does not know. */
  readonly resolveTarget: (id: string) => number | undefined
  /** The receiving clock, ms since the epoch. */
  readonly nowMs: number
  /** Reports measured longer ago than this are refused (measure.maxAgeSec: they could never count). */
  readonly maxAgeSec: number
  /** Most samples in one batch (a Probnik report counts its pulses); default 1000. */
  readonly maxBatchSize?: number
  /** How far in the future `at` may be (clock skew), default 60 s. */
  readonly maxFutureSkewSec?: number
  /** Largest RTT accepted, default 60000 ms. */
  readonly maxRttMs?: number
  /**
   * The client for Probnik reports whose ctx names none: the address the
   * request came from, when the probe posts its own reports. Leave it out
   * when reports come through a collector.
   */
  readonly peerAddress?: string
}

export const DEFAULT_MAX_BATCH_SIZE = 1000
export const DEFAULT_MAX_FUTURE_SKEW_SEC = 60
export const DEFAULT_MAX_RTT_MS = 60_000

/**
 * Checks a batch. Returns the accepted samples (in batch order) and one
 * rejection per bad report (a Probnik report may have several, one per bad
 * target or pulse, all with its index). Throws MeasureError
 * STEER_ERR_MEASURE_BATCH_INVALID when the body is not a batch at all, and
 * STEER_ERR_MEASURE_BATCH_TOO_LARGE (nothing accepted) past maxBatchSize.
 */
export function validateMeasurementBatch(body: unknown, ctx: BatchContext): ValidatedBatch {
  const limit = ctx.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
  if (!isObject(body)) throw measureError(MeasureErrorCode.BATCH_INVALID, '', 'the body must be a JSON object with a "reports" array')
  const reader = new BatchReader(ctx)
  if (body.reports === undefined && Array.isArray(body.data)) {
    const samples = probnikSampleCount(body)
    if (samples > limit) throw tooLarge(samples, limit)
    reader.readProbnik(body, 0, '')
    return reader.result()
  }
  if (!Array.isArray(body.reports)) throw measureError(MeasureErrorCode.BATCH_INVALID, 'reports', 'must be an array of reports')
  const reports: unknown[] = body.reports
  let samples = 0
  for (const r of reports) samples += isProbnikReport(r) ? probnikSampleCount(r) : 1
  if (samples > limit) throw tooLarge(samples, limit)
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i]
    const path = `reports[${i}]`
    if (isProbnikReport(r)) reader.readProbnik(r, i, path)
    else reader.readPlain(r, i, path)
  }
  return reader.result()
}

function tooLarge(samples: number, limit: number): Error {
  return measureError(MeasureErrorCode.BATCH_TOO_LARGE, 'reports', `${samples} samples in one batch, at most ${limit} allowed`)
}

type JsonObject = Record<string, unknown>

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A report is Probnik's when it carries a `data` array (ours never does). */
function isProbnikReport(v: unknown): v is JsonObject {
  return isObject(v) && Array.isArray(v.data)
}

function probnikSampleCount(report: JsonObject): number {
  let n = 0
  for (const t of report.data as unknown[]) n += isObject(t) && Array.isArray(t.data) ? Math.max(1, t.data.length) : 1
  return n
}

/** RFC 3339 date-time (section 5.6); a space for the T is allowed, as the RFC's note permits. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/

/** Ms since the epoch of an RFC 3339 time, or undefined when the text is not one (or names no real day). */
export function parseRfc3339Ms(text: string): number | undefined {
  const m = RFC3339.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined
  // A leap second (:60) is read as the last millisecond before the next minute.
  const base = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59))
  if (new Date(base).getUTCDate() !== day) return undefined
  const fraction = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0
  const ms = base + (second === 60 ? 999 : fraction)
  if (m[9] === undefined) return ms
  const offsetMin = Number(m[10]) * 60 + Number(m[11])
  if (Number(m[10]) > 23 || Number(m[11]) > 59) return undefined
  return m[9] === '+' ? ms - offsetMin * 60_000 : ms + offsetMin * 60_000
}

class BatchReader {
  private readonly accepted: AcceptedReport[] = []
  private readonly rejected: RejectedReport[] = []
  private readonly maxRttMs: number
  private readonly oldestMs: number
  private readonly newestMs: number

  constructor(private readonly ctx: BatchContext) {
    this.maxRttMs = ctx.maxRttMs ?? DEFAULT_MAX_RTT_MS
    this.oldestMs = ctx.nowMs - ctx.maxAgeSec * 1000
    this.newestMs = ctx.nowMs + (ctx.maxFutureSkewSec ?? DEFAULT_MAX_FUTURE_SKEW_SEC) * 1000
  }

  result(): ValidatedBatch {
    return { reports: this.accepted, rejected: this.rejected }
  }

  readPlain(r: unknown, index: number, path: string): void {
    if (!isObject(r)) {
      this.reject(index, [`${path}: must be an object`])
      return
    }
    const problems: string[] = []
    const client = reduceClient(r.client, this.ctx)
    if (typeof client === 'string') problems.push(`${path}.client: ${r.client === undefined ? 'is required' : client}`)
    const resolver = this.resolver(r.resolver, `${path}.resolver`, problems)
    const target = this.target(r.target, `${path}.target`, problems)
    let ok = true
    if (r.ok !== undefined && typeof r.ok !== 'boolean') problems.push(`${path}.ok: must be true or false`)
    else if (r.ok === false) ok = false
    // A failed probe has no round trip to fold; whatever it says of rttMs is not read.
    const rttMs = ok ? this.rtt(r.rttMs, `${path}.rttMs`, problems) : 0
    let atMs = this.ctx.nowMs
    if (r.at !== undefined) {
      const t = typeof r.at === 'string' ? parseRfc3339Ms(r.at) : undefined
      if (t === undefined) problems.push(`${path}.at: must be an RFC 3339 time such as "2026-01-02T03:04:05Z"`)
      else if (this.checkTime(t, `${path}.at`, problems)) atMs = t
    }
    if (problems.length > 0 || typeof client === 'string' || target === undefined) {
      this.reject(index, problems)
      return
    }
    this.accepted.push({ client, resolver, target, rttMs, atMs, ok })
  }

  readProbnik(r: JsonObject, index: number, path: string): void {
    const at = (field: string): string => (path ? `${path}.${field}` : field)
    const problems: string[] = []
    const reportCtx = r.ctx
    if (reportCtx !== undefined && !isObject(reportCtx)) problems.push(`${at('ctx')}: must be an object`)
    const c = isObject(reportCtx) ? reportCtx : {}
    const clientText = c.client ?? this.ctx.peerAddress
    const client = reduceClient(clientText, this.ctx)
    if (typeof client === 'string') {
      problems.push(`${at('ctx.client')}: ${clientText === undefined ? 'is required (the recipe ctx carries it)' : client}`)
    }
    const resolver = this.resolver(c.resolver, at('ctx.resolver'), problems)
    if (typeof client === 'string' || problems.length > 0) {
      this.reject(index, problems)
      return
    }
    // Probnik's `start` is performance.now() on the client (ms since page
    // load, probnik/requesters/xhr_requester.ts), not a wall-clock time, so
    // a Probnik sample is dated when it arrives.
    const atMs = this.ctx.nowMs
    const targets = r.data as unknown[]
    if (targets.length === 0) this.reject(index, [`${at('data')}: has no targets`])
    for (let ti = 0; ti < targets.length; ti++) {
      const t = targets[ti]
      const tPath = at(`data[${ti}]`)
      if (!isObject(t)) {
        this.reject(index, [`${tPath}: must be an object`])
        continue
      }
      const tProblems: string[] = []
      const target = this.target(t.name, `${tPath}.name`, tProblems)
      if (!Array.isArray(t.data)) tProblems.push(`${tPath}.data: must be an array of pulse samples`)
      if (target === undefined || !Array.isArray(t.data)) {
        this.reject(index, tProblems)
        continue
      }
      const pulses: unknown[] = t.data
      if (pulses.length === 0) this.reject(index, [`${tPath}.data: has no pulse samples`])
      for (let pi = 0; pi < pulses.length; pi++) {
        const p = pulses[pi]
        const pPath = `${tPath}.data[${pi}]`
        if (!isObject(p)) {
          this.reject(index, [`${pPath}: must be an object`])
          continue
        }
        const pProblems: string[] = []
        const sc = p.sc
        if (typeof sc !== 'number' || !Number.isInteger(sc) || sc < 0 || sc > 999) {
          pProblems.push(`${pPath}.sc: must be an HTTP status code (0 when the request failed)`)
          this.reject(index, pProblems)
          continue
        }
        // Status 0: no response (timeout, network error, CORS); 4xx/5xx: the target answered but is broken.
        const ok = sc >= 200 && sc < 400
        const rttMs = ok ? this.rtt(p.d, `${pPath}.d`, pProblems) : 0
        if (pProblems.length > 0) this.reject(index, pProblems)
        else this.accepted.push({ client, resolver, target, rttMs, atMs, ok })
      }
    }
  }

  private reject(index: number, problems: readonly string[]): void {
    this.rejected.push({ index, reason: problems.join('; ') })
  }

  private resolver(v: unknown, path: string, problems: string[]): Uint8Array | undefined {
    if (v === undefined) return undefined
    const r = parseResolverAddress(v)
    if (typeof r === 'string') {
      problems.push(`${path}: ${r}`)
      return undefined
    }
    return r
  }

  private target(v: unknown, path: string, problems: string[]): number | undefined {
    if (typeof v !== 'string' || v === '') {
      problems.push(`${path}: ${v === undefined ? 'is required' : 'must be a target id (a string)'}`)
      return undefined
    }
    const index = this.ctx.resolveTarget(v)
    if (index === undefined) problems.push(`${path}: unknown target ${JSON.stringify(v.length > 64 ? `${v.slice(0, 61)}...` : v)}`)
    return index
  }

  private rtt(v: unknown, path: string, problems: string[]): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > this.maxRttMs) {
      problems.push(`${path}: must be a number > 0 and <= ${this.maxRttMs}`)
      return 0
    }
    return v
  }

  private checkTime(t: number, path: string, problems: string[]): boolean {
    if (t > this.newestMs) {
      problems.push(`${path}: more than ${(this.newestMs - this.ctx.nowMs) / 1000} s in the future`)
      return false
    }
    if (t < this.oldestMs) {
      problems.push(`${path}: older than maxAgeSec (${this.ctx.maxAgeSec} s); it could never count`)
      return false
    }
    return true
  }
}
