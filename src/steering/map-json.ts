/**
 * The latency map's JSON form, for import (`serve --map FILE`, the control
 * plane, an offline pipeline) and export:
 *
 *   { "version": 7, "generatedAt": "2026-01-02T03:04:05Z",
 *     "entries": [ { "prefix": "198.51.100.0/24", "updatedAt": "…",
 *                    "targets": [ { "id": "sea-1", "score": 12.5, "samples": 40 } ] } ] }
 *
 * A document is checked whole: every problem is reported at once with its
 * JSON path, and nothing is built unless there are none (the caller keeps
 * serving its previous map). Text is read entry by entry: a scanner finds
 * each element of `entries` and JSON.parse reads just that element, so a
 * million-entry file never becomes a million-entry object graph. Anything the
 * scanner does not expect falls back to JSON.parse of the whole text, which
 * stays the judge of what is JSON.
 */
import { readFile } from 'node:fs/promises'
import { formatPrefix, maskAddress, parseAddress } from './client-key.js'
import { LatencyMapBuilder } from './latency-map.js'
import type { LatencyMap } from './latency-map.js'
import { MapError, MapErrorCode } from './map-error.js'
import type { MapProblem } from './map-error.js'

export interface MapJsonTarget {
  readonly id: string
  /** Milliseconds, lower is better. */
  readonly score: number
  readonly samples: number
}

export interface MapJsonEntry {
  /** Canonical prefix text, "198.51.100.0/24" or "2001:db8::/48". */
  readonly prefix: string
  /** Best first. */
  readonly targets: readonly MapJsonTarget[]
  /** RFC 3339, when known. */
  readonly updatedAt?: string
}

export interface MapJson {
  readonly version: number
  /** RFC 3339, when known. */
  readonly generatedAt?: string
  readonly entries: readonly MapJsonEntry[]
}

/** Target id → target index, undefined for an id the configuration does not know. */
export type ResolveTarget = (id: string) => number | undefined

export interface ParseMapOptions {
  /**
   * Problems listed before the rest are only counted (default 1000): a broken
   * million-entry file must not produce a million-line error.
   */
  readonly maxProblems?: number
}

const DEFAULT_MAX_PROBLEMS = 1000

/**
 * Builds a map from its JSON form: `input` is JSON text (a string, always
 * read as text) or an already parsed value (e.g. a request body). Target ids
 * are resolved once here, so the map holds indices only. Throws MapError
 * STEER_ERR_MAP_INVALID listing every problem (up to `maxProblems`).
 */
export function parseMapJson(input: unknown, resolveTarget: ResolveTarget, opts: ParseMapOptions = {}): LatencyMap {
  const maxProblems = opts.maxProblems ?? DEFAULT_MAX_PROBLEMS
  if (typeof input !== 'string') return readMapValue(input, new MapReader(resolveTarget, maxProblems, 16)).finish()
  // JSON.parse rejects a byte-order mark; editors on some systems write one.
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input
  // About 100 bytes per entry in practice: sizes the builder's first arrays.
  const expected = Math.min(1 << 24, Math.ceil(text.length / 100))
  const streamed = new MapReader(resolveTarget, maxProblems, expected)
  if (scanMapText(text, streamed)) return streamed.finish()
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new MapError(MapErrorCode.INVALID, [{ path: '', message: notJsonMessage(text, err) }], { cause: err })
  }
  return readMapValue(value, new MapReader(resolveTarget, maxProblems, expected)).finish()
}

/**
 * Reads and parses a map file. Throws MapError: STEER_ERR_MAP_UNREADABLE when
 * the file cannot be read (missing, permissions, larger than a string can
 * hold: about 512 MiB), STEER_ERR_MAP_INVALID for its content; both carry `file`.
 */
export async function loadMapFile(path: string, resolveTarget: ResolveTarget, opts: ParseMapOptions = {}): Promise<LatencyMap> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new MapError(MapErrorCode.UNREADABLE, [{ path: '', message: `cannot read the map file: ${(err as Error).message}` }], {
      file: path,
      cause: err,
    })
  }
  try {
    return parseMapJson(text, resolveTarget, opts)
  } catch (err) {
    if (err instanceof MapError) throw new MapError(err.code, err.problems, { file: path, cause: err.cause })
    throw err
  }
}

/**
 * The JSON form of a map as an object (entries in map order, candidates best
 * first, times as RFC 3339 with millisecond precision). parseMapJson of it
 * gives back an equal map. Allocates an object per entry: for large maps
 * prefer formatMapJson(). `targetId` maps a target index to its id.
 */
export function mapToJson(map: LatencyMap, targetId: (index: number) => string): MapJson {
  const entries: MapJsonEntry[] = new Array(map.size)
  for (let e = 0; e < map.size; e++) {
    const targets: MapJsonTarget[] = []
    for (let i = 0; i < map.candidateCount(e); i++) {
      targets.push({ id: targetId(map.candidateTarget(e, i)), score: map.candidateScoreMs(e, i), samples: map.candidateSamples(e, i) })
    }
    const updatedAtMs = map.entryUpdatedAtMs(e)
    entries[e] =
      updatedAtMs === undefined
        ? { prefix: map.entryPrefix(e), targets }
        : { prefix: map.entryPrefix(e), targets, updatedAt: new Date(updatedAtMs).toISOString() }
  }
  return map.generatedAtMs === undefined
    ? { version: map.version, entries }
    : { version: map.version, generatedAt: new Date(map.generatedAtMs).toISOString(), entries }
}

/**
 * The JSON text of a map, one entry per line (diffable; the same document
 * as JSON.stringify(mapToJson(map, targetId))), written straight from the
 * map's arrays without an object per entry. Ends with a newline.
 */
export function formatMapJson(map: LatencyMap, targetId: (index: number) => string): string {
  const ids = new Map<number, string>()
  const idText = (index: number): string => {
    let text = ids.get(index)
    if (text === undefined) {
      text = JSON.stringify(targetId(index))
      ids.set(index, text)
    }
    return text
  }
  const head = map.generatedAtMs === undefined ? '' : `,"generatedAt":"${new Date(map.generatedAtMs).toISOString()}"`
  const lines: string[] = [`{"version":${map.version}${head},"entries":[`]
  for (let e = 0; e < map.size; e++) {
    let line = `{"prefix":"${map.entryPrefix(e)}","targets":[`
    for (let i = 0; i < map.candidateCount(e); i++) {
      if (i > 0) line += ','
      line += `{"id":${idText(map.candidateTarget(e, i))},"score":${map.candidateScoreMs(e, i)},"samples":${map.candidateSamples(e, i)}}`
    }
    const updatedAtMs = map.entryUpdatedAtMs(e)
    line += updatedAtMs === undefined ? ']}' : `],"updatedAt":"${new Date(updatedAtMs).toISOString()}"}`
    lines.push(e + 1 < map.size ? `${line},` : line)
  }
  lines.push(']}\n')
  return lines.join('\n')
}

const ENTRY_KEYS = new Set(['prefix', 'targets', 'updatedAt'])
const TARGET_KEYS = new Set(['id', 'score', 'samples'])

/**
 * Checks a document piece by piece, in document order, and feeds a builder.
 * The text scanner and the parsed-value walker drive the same reader, so both
 * report the same problems.
 */
class MapReader {
  private readonly problems: MapProblem[] = []
  private unlisted = 0
  private readonly builder: LatencyMapBuilder
  /** Map entry number → index in `entries`, to name the first of two duplicates. */
  private entryJsonIndex: Int32Array
  private readonly seenKeys = new Set<string>()
  private version: number | undefined
  private generatedAtMs: number | undefined
  // One entry's candidates, checked before any reaches the builder.
  private readonly ids: string[] = []
  private readonly targets: number[] = []
  private readonly scores: number[] = []
  private readonly samples: number[] = []

  constructor(
    private readonly resolveTarget: ResolveTarget,
    private readonly maxProblems: number,
    expectedEntries: number,
  ) {
    this.builder = new LatencyMapBuilder({ expectedEntries })
    this.entryJsonIndex = new Int32Array(Math.max(16, expectedEntries))
  }

  /** A top-level property, other than the elements of an `entries` array the scanner streams. */
  property(key: string, value: unknown): void {
    if (!this.firstTime(key)) return
    switch (key) {
      case 'version':
        if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) this.problem('version', 'must be a non-negative integer')
        else this.version = value
        return
      case 'generatedAt': {
        const ms = typeof value === 'string' ? parseRfc3339Ms(value) : undefined
        if (ms === undefined) this.problem('generatedAt', 'must be an RFC 3339 time, e.g. "2026-01-02T03:04:05Z"')
        else this.generatedAtMs = ms
        return
      }
      case 'entries':
        if (!Array.isArray(value)) {
          this.problem('entries', 'must be an array')
          return
        }
        for (let i = 0; i < value.length; i++) this.entry(i, value[i])
        return
      default:
        this.problem(childPath('', key), 'unknown property (expected version, generatedAt, entries)')
    }
  }

  /** The scanner found `"entries": [`; false when it is a repeat whose elements must be skipped. */
  beginEntries(): boolean {
    return this.firstTime('entries')
  }

  /** Element `index` of `entries`. */
  entry(index: number, value: unknown): void {
    const base = `entries[${index}]`
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.problem(base, 'must be an object with prefix and targets')
      return
    }
    const entry = value as Record<string, unknown>
    this.unknownKeys(entry, base, ENTRY_KEYS, 3)

    let address: Uint8Array | undefined
    let prefixLen = 0
    const prefix = entry.prefix
    if (prefix === undefined) this.problem(`${base}.prefix`, 'is required')
    else if (typeof prefix !== 'string') this.problem(`${base}.prefix`, 'must be a string like "198.51.100.0/24"')
    else {
      const parsed = parsePrefix(prefix)
      if (typeof parsed === 'string') this.problem(`${base}.prefix`, parsed)
      else {
        address = parsed.address
        prefixLen = parsed.prefixLen
      }
    }

    let updatedAtMs: number | undefined
    if (entry.updatedAt !== undefined) {
      updatedAtMs = typeof entry.updatedAt === 'string' ? parseRfc3339Ms(entry.updatedAt) : undefined
      if (updatedAtMs === undefined) this.problem(`${base}.updatedAt`, 'must be an RFC 3339 time, e.g. "2026-01-02T03:04:05Z"')
    }

    this.readTargets(entry.targets, base)

    if (address === undefined) return
    const e = this.builder.addEntry(address, prefixLen, updatedAtMs)
    if (e < 0) {
      this.problem(`${base}.prefix`, `duplicate: the same prefix as entries[${this.entryJsonIndex[~e] as number}].prefix`)
      return
    }
    if (e === this.entryJsonIndex.length) {
      const grown = new Int32Array(e * 2)
      grown.set(this.entryJsonIndex)
      this.entryJsonIndex = grown
    }
    this.entryJsonIndex[e] = index
    // Once anything is wrong nothing gets built; entries are still added so later duplicates are found.
    if (this.problemCount > 0) return
    for (let i = 0; i < this.targets.length; i++) {
      this.builder.addCandidate(this.targets[i] as number, this.scores[i] as number, this.samples[i] as number)
    }
  }

  /** The map, or MapError with every problem (missing top-level keys first). */
  finish(): LatencyMap {
    const missing: MapProblem[] = []
    if (!this.seenKeys.has('version')) missing.push({ path: 'version', message: 'is required' })
    if (!this.seenKeys.has('entries')) missing.push({ path: 'entries', message: 'is required' })
    if (missing.length > 0 || this.problemCount > 0) {
      const problems = [...missing, ...this.problems]
      if (this.unlisted > 0) problems.push({ path: '', message: `${this.unlisted} more problems not listed` })
      throw new MapError(MapErrorCode.INVALID, problems)
    }
    return this.builder.build(this.version as number, this.generatedAtMs)
  }

  /** Reports the whole document is not an object. */
  notAnObject(): void {
    this.seenKeys.add('version').add('entries')
    this.problem('', 'must be a JSON object with version and entries')
  }

  private get problemCount(): number {
    return this.problems.length + this.unlisted
  }

  private readTargets(value: unknown, base: string): void {
    this.ids.length = 0
    this.targets.length = 0
    this.scores.length = 0
    this.samples.length = 0
    const path = `${base}.targets`
    if (value === undefined) return this.problem(path, 'is required')
    if (!Array.isArray(value)) return this.problem(path, 'must be an array of { id, score, samples }')
    if (value.length === 0) return this.problem(path, 'must list at least one target')
    for (let j = 0; j < value.length; j++) {
      const item: unknown = value[j]
      const at = `${path}[${j}]`
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        this.problem(at, 'must be an object with id, score and samples')
        continue
      }
      const target = item as Record<string, unknown>
      this.unknownKeys(target, at, TARGET_KEYS, 3)
      const { id, score, samples } = target
      let index: number | undefined
      if (id === undefined) this.problem(`${at}.id`, 'is required')
      else if (typeof id !== 'string') this.problem(`${at}.id`, 'must be a string')
      else {
        const earlier = this.ids.indexOf(id)
        if (earlier >= 0) this.problem(`${at}.id`, `target "${id}" is already listed at ${path}[${earlier}]`)
        else if ((index = this.resolveTarget(id)) === undefined) this.problem(`${at}.id`, `unknown target "${id}"`)
      }
      if (score === undefined) this.problem(`${at}.score`, 'is required')
      else if (typeof score !== 'number' || !Number.isFinite(score) || score < 0) this.problem(`${at}.score`, 'must be a number ≥ 0 (milliseconds)')
      if (samples === undefined) this.problem(`${at}.samples`, 'is required')
      else if (typeof samples !== 'number' || !Number.isInteger(samples) || samples < 0 || samples > 0xffffffff) {
        this.problem(`${at}.samples`, 'must be an integer from 0 to 4294967295')
      }
      // Keep positions aligned with j for "already listed at" (a non-string id holds a slot).
      this.ids.push(typeof id === 'string' ? id : '\u0000')
      this.targets.push(index ?? -1)
      this.scores.push(score as number)
      this.samples.push(samples as number)
    }
  }

  /** Reports keys outside `allowed`; counts first so the common case allocates nothing. */
  private unknownKeys(value: Record<string, unknown>, base: string, allowed: ReadonlySet<string>, max: number): void {
    let count = 0
    let known = 0
    for (const key in value) {
      count++
      if (allowed.has(key)) known++
      if (count > max) break
    }
    if (count === known) return
    for (const key of Object.keys(value)) if (!allowed.has(key)) this.problem(childPath(base, key), 'unknown property')
  }

  private firstTime(key: string): boolean {
    if (!this.seenKeys.has(key)) {
      this.seenKeys.add(key)
      return true
    }
    this.problem(childPath('', key), 'duplicate property')
    return false
  }

  private problem(path: string, message: string): void {
    if (this.problems.length < this.maxProblems) this.problems.push({ path, message })
    else this.unlisted++
  }
}

/** Walks an already parsed document. */
function readMapValue(value: unknown, reader: MapReader): MapReader {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) reader.notAnObject()
  else for (const [key, v] of Object.entries(value)) reader.property(key, v)
  return reader
}

/** `base.key`, or `base["odd key"]` when the key is not an identifier. */
function childPath(base: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return base === '' ? key : `${base}.${key}`
  return `${base}[${JSON.stringify(key)}]`
}

/**
 * "address/length" → bytes and length, or a message saying what is wrong.
 * Bits past the length must be zero: a map that says 198.51.100.7/24 most
 * likely has a bug upstream, so it is reported rather than masked.
 */
function parsePrefix(text: string): { address: Uint8Array; prefixLen: number } | string {
  const slash = text.indexOf('/')
  if (slash < 0) return `"${text}" must be address/length, e.g. "198.51.100.0/24"`
  const ip = text.slice(0, slash)
  const lenText = text.slice(slash + 1)
  // Zone ids (fe80::1%eth0) name an interface, not a network.
  const address = ip.includes('%') ? undefined : parseAddress(ip)
  if (!address) return `"${ip}" is not an IPv4 or IPv6 address`
  const maxLen = address.length * 8
  if (!/^(0|[1-9]\d{0,2})$/.test(lenText) || Number(lenText) > maxLen) return `prefix length "${lenText}" must be 0-${maxLen}`
  const prefixLen = Number(lenText)
  const masked = maskAddress(address, prefixLen)
  for (let i = 0; i < address.length; i++) {
    if (masked[i] !== address[i]) return `"${text}" has bits set past /${prefixLen}; the network is ${formatPrefix({ address: masked, prefixLen })}`
  }
  return { address, prefixLen }
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const

/** An RFC 3339 date-time → ms since the epoch, undefined when malformed or out of range (leap seconds included). */
function parseRfc3339Ms(text: string): number | undefined {
  const m = RFC3339.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number]
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0)
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return undefined
  let offsetMin = 0
  if (m[8] !== undefined) {
    const offH = Number(m[9])
    const offM = Number(m[10])
    if (offH > 23 || offM > 59) return undefined
    offsetMin = (m[8] === '-' ? -1 : 1) * (offH * 60 + offM)
  }
  let ms = Date.UTC(year, month - 1, day, hour, minute, second)
  if (year < 100) {
    // Date.UTC reads years 0-99 as 1900-1999.
    const d = new Date(ms)
    d.setUTCFullYear(year)
    ms = d.getTime()
  }
  return ms + (m[7] ? Number(m[7]) * 1000 : 0) - offsetMin * 60_000
}

/** JSON.parse's complaint, with line and column when it gives a position. */
function notJsonMessage(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const at = /at position (\d+)/.exec(message)
  if (!at) return `not valid JSON: ${message}`
  const position = Number(at[1])
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i >= 0 && i < position; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return `not valid JSON at line ${line} column ${position - lineStart + 1}: ${message}`
}

// The scanner: finds the document's top-level properties and each element of
// `entries`, and hands each to JSON.parse. It checks the structure between
// them (whitespace, colons, commas, brackets); on anything else it gives up
// and the caller falls back to JSON.parse of the whole text.

const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const LBRACE = 0x7b
const RBRACE = 0x7d
const FAIL: unique symbol = Symbol('not JSON')

/** True when the text was read to the end; false means "fall back to JSON.parse". */
function scanMapText(text: string, reader: MapReader): boolean {
  let i = skipSpace(text, 0)
  if (text.charCodeAt(i) !== LBRACE) return false
  i = skipSpace(text, i + 1)
  if (text.charCodeAt(i) === RBRACE) return skipSpace(text, i + 1) === text.length
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return false
    const keyEnd = stringEnd(text, i)
    const key = keyEnd < 0 ? FAIL : parseSlice(text, i, keyEnd)
    if (typeof key !== 'string') return false
    i = skipSpace(text, keyEnd)
    if (text.charCodeAt(i) !== COLON) return false
    i = skipSpace(text, i + 1)
    if (key === 'entries' && text.charCodeAt(i) === LBRACKET) {
      const feed = reader.beginEntries()
      i = skipSpace(text, i + 1)
      if (text.charCodeAt(i) === RBRACKET) i++
      else {
        for (let index = 0; ; index++) {
          const end = valueEnd(text, i)
          const value = end < 0 ? FAIL : parseSlice(text, i, end)
          if (value === FAIL) return false
          if (feed) reader.entry(index, value)
          i = skipSpace(text, end)
          const c = text.charCodeAt(i)
          if (c === RBRACKET) {
            i++
            break
          }
          if (c !== COMMA) return false
          i = skipSpace(text, i + 1)
        }
      }
    } else {
      const end = valueEnd(text, i)
      const value = end < 0 ? FAIL : parseSlice(text, i, end)
      if (value === FAIL) return false
      reader.property(key, value)
      i = end
    }
    i = skipSpace(text, i)
    const c = text.charCodeAt(i)
    if (c === RBRACE) return skipSpace(text, i + 1) === text.length
    if (c !== COMMA) return false
    i = skipSpace(text, i + 1)
  }
}

function parseSlice(text: string, from: number, to: number): unknown {
  try {
    return JSON.parse(text.slice(from, to))
  } catch {
    return FAIL
  }
}

/** Index of the first non-whitespace character (JSON whitespace only) at or after i. */
function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i)
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
}

/** Index just past the string starting at the quote at i; -1 when unterminated. */
function stringEnd(text: string, i: number): number {
  let from = i + 1
  for (;;) {
    const q = text.indexOf('"', from)
    if (q < 0) return -1
    let backslashes = 0
    for (let k = q - 1; text.charCodeAt(k) === 0x5c; k--) backslashes++
    if ((backslashes & 1) === 0) return q + 1
    from = q + 1
  }
}

/** Index just past the value starting at i (JSON.parse then checks it); -1 when there is none. */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i)
  if (c === QUOTE) return stringEnd(text, i)
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0
    for (let j = i; j < text.length; j++) {
      const d = text.charCodeAt(j)
      if (d === QUOTE) {
        const end = stringEnd(text, j)
        if (end < 0) return -1
        j = end - 1
      } else if (d === LBRACE || d === LBRACKET) depth++
      else if ((d === RBRACE || d === RBRACKET) && --depth === 0) return j + 1
    }
    return -1
  }
  let j = i
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j)
    if (d === COMMA || d === RBRACKET || d === RBRACE || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break
  }
  return j > i ? j : -1
}
