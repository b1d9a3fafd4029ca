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
 * serving its previous map). Text is read entry by entry: a resumable
 * scanner finds each element of `entries` and JSON.parse reads just that
 * element, so a million-entry file is never a million-entry object graph, and
 * a file is read in chunks (never whole in memory) with the event loop free
 * between them. Anything the scanner does not expect falls back to JSON.parse
 * of the whole text, which stays the judge of what is JSON.
 */
import { open, readFile } from 'node:fs/promises'
import { StringDecoder } from 'node:string_decoder'
import { parseIpv4Into, parseIpv6Into } from './address-text.js'
import { formatPrefix, maskAddress } from './client-key.js'
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
 * are resolved once here, so the map holds indices only. Synchronous: a large
 * text holds the thread for its whole parse (loadMapFile does not). Throws
 * MapError STEER_ERR_MAP_INVALID listing every problem (up to `maxProblems`).
 */
export function parseMapJson(input: unknown, resolveTarget: ResolveTarget, opts: ParseMapOptions = {}): LatencyMap {
  const maxProblems = opts.maxProblems ?? DEFAULT_MAX_PROBLEMS
  if (typeof input !== 'string') return readMapValue(input, new MapReader(resolveTarget, maxProblems, 16)).finish()
  // JSON.parse rejects a byte-order mark; editors on some systems write one.
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input
  const streamed = new MapReader(resolveTarget, maxProblems, expectedEntries(text.length))
  const scanner = new MapTextScanner(streamed)
  if (scanner.push(text) && scanner.end()) return streamed.finish()
  return parseWholeText(text, new MapReader(resolveTarget, maxProblems, expectedEntries(text.length)))
}

/** Bytes read per step while loading a file: a few thousand entries, a few milliseconds of work. */
const FILE_CHUNK_BYTES = 512 * 1024

/**
 * Reads and parses a map file in chunks, yielding to the event loop between
 * them; memory holds one chunk of text, not the file. Throws MapError:
 * STEER_ERR_MAP_UNREADABLE when the file cannot be read (missing,
 * permissions, a directory), STEER_ERR_MAP_INVALID for its content; both
 * carry `file`.
 */
export async function loadMapFile(path: string, resolveTarget: ResolveTarget, opts: ParseMapOptions = {}): Promise<LatencyMap> {
  const maxProblems = opts.maxProblems ?? DEFAULT_MAX_PROBLEMS
  const unreadable = (err: unknown) =>
    new MapError(MapErrorCode.UNREADABLE, [{ path: '', message: `cannot read the map file: ${(err as Error).message}` }], { file: path, cause: err })
  const withFile = (err: unknown) => (err instanceof MapError ? new MapError(err.code, err.problems, { file: path, cause: err.cause }) : err)
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw unreadable(err)
  })
  try {
    const size = (await handle.stat()).size
    const reader = new MapReader(resolveTarget, maxProblems, expectedEntries(size))
    const scanner = new MapTextScanner(reader)
    const decoder = new StringDecoder('utf8')
    const chunk = Buffer.allocUnsafe(FILE_CHUNK_BYTES)
    let first = true
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null).catch((err: unknown) => {
        throw unreadable(err)
      })
      let text = bytesRead === 0 ? decoder.end() : decoder.write(chunk.subarray(0, bytesRead))
      if (first && text.length > 0) {
        first = false
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      }
      if (!scanner.push(text)) break
      if (bytesRead === 0) {
        if (scanner.end()) return reader.finish()
        break
      }
    }
  } catch (err) {
    throw withFile(err)
  } finally {
    await handle.close()
  }
  // Not what the scanner expects: JSON.parse of the whole text decides (rare; broken or unusual files only).
  let text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw unreadable(err)
  })
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  try {
    return parseWholeText(text, new MapReader(resolveTarget, maxProblems, expectedEntries(text.length)))
  } catch (err) {
    throw withFile(err)
  }
}

/** The fallback: JSON.parse decides what is JSON, then the parsed value is checked. */
function parseWholeText(text: string, reader: MapReader): LatencyMap {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new MapError(MapErrorCode.INVALID, [{ path: '', message: notJsonMessage(text, err) }], { cause: err })
  }
  return readMapValue(value, reader).finish()
}

/** A first guess at the entry count from the text size (about 200 bytes an entry); only sizes first allocations. */
function expectedEntries(textLength: number): number {
  return Math.min(1 << 22, Math.max(16, Math.ceil(textLength / 200)))
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
  private readonly problemOrder: number[] = []
  /** Where the reader is: -1 before the entries, the entry index within them, Infinity after them. */
  private documentOrder = -1
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
  /** The entry's prefix address: `v4` or `v6`, reused for every entry (the builder copies it). */
  private readonly parsed = { address: new Uint8Array(4) }
  private readonly v4 = new Uint8Array(4)
  private readonly v6 = new Uint8Array(16)

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
    if (this.documentOrder >= 0) this.documentOrder = Infinity
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
        this.documentOrder = Infinity
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
    this.documentOrder = index
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.problem(entryPath(index, ''), 'must be an object with prefix and targets')
      return
    }
    const entry = value as Record<string, unknown>
    this.unknownKeys(entry, index, -1, ENTRY_KEYS)

    let prefixLen = -1
    const prefix = entry.prefix
    if (prefix === undefined) this.problem(entryPath(index, '.prefix'), 'is required')
    else if (typeof prefix !== 'string') this.problem(entryPath(index, '.prefix'), 'must be a string like "198.51.100.0/24"')
    else {
      const parsed = parsePrefix(prefix, this.parsed, this.v4, this.v6)
      if (typeof parsed === 'string') this.problem(entryPath(index, '.prefix'), parsed)
      else prefixLen = parsed
    }

    let updatedAtMs: number | undefined
    if (entry.updatedAt !== undefined) {
      updatedAtMs = typeof entry.updatedAt === 'string' ? parseRfc3339Ms(entry.updatedAt) : undefined
      if (updatedAtMs === undefined) this.problem(entryPath(index, '.updatedAt'), 'must be an RFC 3339 time, e.g. "2026-01-02T03:04:05Z"')
    }

    this.readTargets(entry.targets, index)

    if (prefixLen < 0) return
    // Entries with other problems are still added, so later duplicates of them are found.
    const e = this.builder.addEntry(this.parsed.address, prefixLen, updatedAtMs)
    if (e === this.entryJsonIndex.length) {
      const grown = new Int32Array(e * 2)
      grown.set(this.entryJsonIndex)
      this.entryJsonIndex = grown
    }
    this.entryJsonIndex[e] = index
    // Once anything is wrong nothing gets built: candidates would be wasted work.
    if (this.problemCount > 0) return
    for (let i = 0; i < this.targets.length; i++) {
      this.builder.addCandidate(this.targets[i] as number, this.scores[i] as number, this.samples[i] as number)
    }
  }

  /** The map, or MapError with every problem (missing top-level keys first, then in document order). */
  finish(): LatencyMap {
    for (const [first, later] of this.builder.duplicates()) {
      const index = this.entryJsonIndex[later] as number
      this.problem(entryPath(index, '.prefix'), `duplicate: the same prefix as entries[${this.entryJsonIndex[first] as number}].prefix`, index)
    }
    const missing: MapProblem[] = []
    if (!this.seenKeys.has('version')) missing.push({ path: 'version', message: 'is required' })
    if (!this.seenKeys.has('entries')) missing.push({ path: 'entries', message: 'is required' })
    if (missing.length > 0 || this.problemCount > 0) {
      // Duplicates are found last but belong with their entry; the sort is stable.
      const listed = this.problems.map((p, i) => ({ p, order: this.problemOrder[i] as number }))
      listed.sort((a, b) => a.order - b.order)
      const problems = [...missing, ...listed.map((x) => x.p)]
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

  private readTargets(value: unknown, index: number): void {
    this.ids.length = 0
    this.targets.length = 0
    this.scores.length = 0
    this.samples.length = 0
    if (value === undefined) return this.problem(entryPath(index, '.targets'), 'is required')
    if (!Array.isArray(value)) return this.problem(entryPath(index, '.targets'), 'must be an array of { id, score, samples }')
    if (value.length === 0) return this.problem(entryPath(index, '.targets'), 'must list at least one target')
    for (let j = 0; j < value.length; j++) {
      const item: unknown = value[j]
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        this.problem(targetPath(index, j, ''), 'must be an object with id, score and samples')
        continue
      }
      const target = item as Record<string, unknown>
      this.unknownKeys(target, index, j, TARGET_KEYS)
      const { id, score, samples } = target
      let targetIndex: number | undefined
      if (id === undefined) this.problem(targetPath(index, j, '.id'), 'is required')
      else if (typeof id !== 'string') this.problem(targetPath(index, j, '.id'), 'must be a string')
      else {
        const earlier = this.ids.indexOf(id)
        if (earlier >= 0) this.problem(targetPath(index, j, '.id'), `target "${id}" is already listed at ${targetPath(index, earlier, '')}`)
        else if ((targetIndex = this.resolveTarget(id)) === undefined) this.problem(targetPath(index, j, '.id'), `unknown target "${id}"`)
      }
      if (score === undefined) this.problem(targetPath(index, j, '.score'), 'is required')
      else if (typeof score !== 'number' || !Number.isFinite(score) || score < 0) this.problem(targetPath(index, j, '.score'), 'must be a number ≥ 0 (milliseconds)')
      if (samples === undefined) this.problem(targetPath(index, j, '.samples'), 'is required')
      else if (typeof samples !== 'number' || !Number.isInteger(samples) || samples < 0 || samples > 0xffffffff) {
        this.problem(targetPath(index, j, '.samples'), 'must be an integer from 0 to 4294967295')
      }
      // Keep positions aligned with j for "already listed at" (a non-string id holds a slot).
      this.ids.push(typeof id === 'string' ? id : '\u0000')
      this.targets.push(targetIndex ?? -1)
      this.scores.push(score as number)
      this.samples.push(samples as number)
    }
  }

  /** Reports keys outside `allowed` of entry `index` (target `j` when ≥ 0); counts first so the common case allocates nothing. */
  private unknownKeys(value: Record<string, unknown>, index: number, j: number, allowed: ReadonlySet<string>): void {
    let count = 0
    let known = 0
    for (const key in value) {
      count++
      if (allowed.has(key)) known++
    }
    if (count === known) return
    const base = j < 0 ? entryPath(index, '') : targetPath(index, j, '')
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

  /** `order`: where in the document (-1 before entries, the entry's index, Infinity after them). */
  private problem(path: string, message: string, order = this.documentOrder): void {
    if (this.problems.length < this.maxProblems) {
      this.problems.push({ path, message })
      this.problemOrder.push(order)
    } else this.unlisted++
  }
}

/** Walks an already parsed document. */
function readMapValue(value: unknown, reader: MapReader): MapReader {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) reader.notAnObject()
  else for (const [key, v] of Object.entries(value)) reader.property(key, v)
  return reader
}

// Paths are made only when a problem is reported: most entries have none.
function entryPath(index: number, rest: string): string {
  return `entries[${index}]${rest}`
}

function targetPath(index: number, j: number, rest: string): string {
  return `entries[${index}].targets[${j}]${rest}`
}

/** `base.key`, or `base["odd key"]` when the key is not an identifier. */
function childPath(base: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return base === '' ? key : `${base}.${key}`
  return `${base}[${JSON.stringify(key)}]`
}

/**
 * Reads "address/length" into `out` (`v4` or `v6`, reused: no allocation
 * per entry) and returns the length,
 * or a message saying what is wrong. Bits past the length must be zero: a map
 * that says 198.51.100.7/24 most likely has a bug upstream, so it is reported
 * rather than masked.
 */
export function parsePrefix(text: string, out: { address: Uint8Array }, v4: Uint8Array, v6: Uint8Array): number | string {
  const slash = text.indexOf('/')
  if (slash < 0) return `"${text}" must be address/length, e.g. "198.51.100.0/24"`
  let address = v4
  if (!parseIpv4Into(text, 0, slash, v4)) {
    if (!parseIpv6Into(text, 0, slash, v6)) return `"${text.slice(0, slash)}" is not an IPv4 or IPv6 address`
    address = v6
  }
  const maxLen = address.length * 8
  let prefixLen = 0
  const digits = text.length - slash - 1
  for (let i = slash + 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    prefixLen = c >= 0x30 && c <= 0x39 ? prefixLen * 10 + c - 0x30 : NaN
  }
  const leadingZero = digits > 1 && text.charCodeAt(slash + 1) === 0x30
  if (digits === 0 || digits > 3 || leadingZero || !(prefixLen <= maxLen)) return `prefix length "${text.slice(slash + 1)}" must be 0-${maxLen}`
  const full = prefixLen >> 3
  let hostBits = full < address.length ? (address[full] as number) & (0xff >> (prefixLen & 7)) : 0
  for (let i = full + 1; i < address.length; i++) hostBits |= address[i] as number
  if (hostBits !== 0) {
    return `"${text}" has bits set past /${prefixLen}; the network is ${formatPrefix({ address: maskAddress(address, prefixLen), prefixLen })}`
  }
  out.address = address
  return prefixLen
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const

/** An RFC 3339 date-time → ms since the epoch, undefined when malformed or out of range (leap seconds included). */
export function parseRfc3339Ms(text: string): number | undefined {
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
// and the caller falls back to JSON.parse of the whole text. Text arrives in
// pieces; a value cut by a piece's end waits for the next.

const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const LBRACE = 0x7b
const RBRACE = 0x7d
const FAIL: unique symbol = Symbol('not JSON')

/** What the scanner expects next. */
const Expect = {
  OPEN: 0,
  FIRST_KEY: 1,
  KEY: 2,
  COLON: 3,
  VALUE: 4,
  AFTER_VALUE: 5,
  FIRST_ENTRY: 6,
  ENTRY: 7,
  AFTER_ENTRY: 8,
  DONE: 9,
} as const

class MapTextScanner {
  /** Text not consumed yet starts at `pos`. */
  private text = ''
  private pos = 0
  private expect: number = Expect.OPEN
  private key = ''
  private entryIndex = 0
  private feedEntries = true
  /** After a value was cut short: rescan only once this much text is pending (no quadratic rescans of a huge value). */
  private retryLength = 0

  constructor(private readonly reader: MapReader) {}

  /** More text. False when it cannot be read as a map document this way (fall back). */
  push(piece: string): boolean {
    this.text = this.pos < this.text.length ? this.text.slice(this.pos) + piece : piece
    this.pos = 0
    if (this.text.length < this.retryLength) return true
    return this.run(false)
  }

  /** No more text. True when the whole document was read. */
  end(): boolean {
    return this.run(true) && this.expect === Expect.DONE
  }

  private run(atEnd: boolean): boolean {
    const text = this.text
    for (;;) {
      const i = skipSpace(text, this.pos)
      this.pos = i
      if (i >= text.length) return true
      const c = text.charCodeAt(i)
      switch (this.expect) {
        case Expect.OPEN:
          if (c !== LBRACE) return false
          this.pos = i + 1
          this.expect = Expect.FIRST_KEY
          break
        case Expect.FIRST_KEY:
        case Expect.KEY: {
          if (c === RBRACE && this.expect === Expect.FIRST_KEY) {
            this.pos = i + 1
            this.expect = Expect.DONE
            break
          }
          if (c !== QUOTE) return false
          const end = stringEnd(text, i)
          if (end < 0) return this.cut(atEnd)
          const key = parseSlice(text, i, end)
          if (typeof key !== 'string') return false
          this.key = key
          this.pos = end
          this.expect = Expect.COLON
          break
        }
        case Expect.COLON:
          if (c !== COLON) return false
          this.pos = i + 1
          this.expect = Expect.VALUE
          break
        case Expect.VALUE: {
          if (this.key === 'entries' && c === LBRACKET) {
            this.feedEntries = this.reader.beginEntries()
            this.entryIndex = 0
            this.pos = i + 1
            this.expect = Expect.FIRST_ENTRY
            break
          }
          const end = valueEnd(text, i, atEnd)
          if (end < 0) return this.cut(atEnd)
          const value = parseSlice(text, i, end)
          if (value === FAIL) return false
          this.reader.property(this.key, value)
          this.pos = end
          this.expect = Expect.AFTER_VALUE
          break
        }
        case Expect.AFTER_VALUE:
          if (c !== COMMA && c !== RBRACE) return false
          this.pos = i + 1
          this.expect = c === COMMA ? Expect.KEY : Expect.DONE
          break
        case Expect.FIRST_ENTRY:
        case Expect.ENTRY: {
          if (c === RBRACKET && this.expect === Expect.FIRST_ENTRY) {
            this.pos = i + 1
            this.expect = Expect.AFTER_VALUE
            break
          }
          // The common shape is read directly; anything else goes through JSON.parse.
          let end = c === LBRACE ? readPlainEntry(text, i) : -1
          let value: unknown = plainEntry
          if (end < 0) {
            end = valueEnd(text, i, atEnd)
            if (end < 0) return this.cut(atEnd)
            value = parseSlice(text, i, end)
            if (value === FAIL) return false
          }
          if (this.feedEntries) this.reader.entry(this.entryIndex, value)
          plainEntry = NO_ENTRY
          this.entryIndex++
          this.pos = end
          this.expect = Expect.AFTER_ENTRY
          break
        }
        case Expect.AFTER_ENTRY:
          if (c !== COMMA && c !== RBRACKET) return false
          this.pos = i + 1
          this.expect = c === COMMA ? Expect.ENTRY : Expect.AFTER_VALUE
          break
        default:
          // Anything but whitespace after the document.
          return false
      }
      this.retryLength = 0
    }
  }

  /** A token runs past the text so far: wait for more, or fail at the end. */
  private cut(atEnd: boolean): boolean {
    if (atEnd) return false
    this.retryLength = 2 * (this.text.length - this.pos)
    return true
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

/** Index just past the string starting at the quote at i; -1 when it does not end in the text. */
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

/**
 * Index just past the value starting at i (JSON.parse then checks it); -1
 * when it does not end in the text (a number at the very end ends there only
 * when no more text follows).
 */
function valueEnd(text: string, i: number, atEnd: boolean): number {
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
    if (d === COMMA || d === RBRACKET || d === RBRACE || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) return j
  }
  return atEnd ? j : -1
}

// The plain-entry reader: JSON.parse of each entry was the largest cost of
// loading a large map (about 3 µs an entry, measured on 200k entries), so
// entries of the usual shape are read here without it: keys prefix, targets
// (objects with id, score, samples) and updatedAt, each at most once, strings
// without escapes or control characters, numbers in JSON's grammar. It builds
// the same value JSON.parse would; on anything else it returns -1 and the
// element goes through JSON.parse, so its acceptance is never wider.

interface PlainTarget {
  id: string
  score: number
  samples: number
}
interface PlainEntry {
  prefix?: string
  targets?: PlainTarget[]
  updatedAt?: string
}

const NO_ENTRY: PlainEntry = {}
/** The entry readPlainEntry() last read (one at a time: the reader consumes it at once). */
let plainEntry: PlainEntry = NO_ENTRY
/** The string or number a read*() helper last read. */
let plainString = ''
let plainNumber = 0

/** Index just past the plain entry at i (a `{`), its value in `plainEntry`; -1 when it is not plain. */
function readPlainEntry(text: string, i: number): number {
  const entry: PlainEntry = {}
  let p = skipSpace(text, i + 1)
  if (text.charCodeAt(p) === RBRACE) {
    plainEntry = entry
    return p + 1
  }
  for (;;) {
    p = readPlainString(text, p)
    if (p < 0) return -1
    const key = plainString
    p = skipSpace(text, p)
    if (text.charCodeAt(p) !== COLON) return -1
    p = skipSpace(text, p + 1)
    if (key === 'prefix' && entry.prefix === undefined) {
      p = readPlainString(text, p)
      entry.prefix = plainString
    } else if (key === 'updatedAt' && entry.updatedAt === undefined) {
      p = readPlainString(text, p)
      entry.updatedAt = plainString
    } else if (key === 'targets' && entry.targets === undefined) {
      const targets: PlainTarget[] = []
      p = readPlainTargets(text, p, targets)
      entry.targets = targets
    } else return -1
    if (p < 0) return -1
    p = skipSpace(text, p)
    const c = text.charCodeAt(p)
    if (c === RBRACE) {
      plainEntry = entry
      return p + 1
    }
    if (c !== COMMA) return -1
    p = skipSpace(text, p + 1)
  }
}

/** Reads `[ {id, score, samples}, … ]` at p into `out`; index past it, or -1. */
function readPlainTargets(text: string, p: number, out: PlainTarget[]): number {
  if (text.charCodeAt(p) !== LBRACKET) return -1
  p = skipSpace(text, p + 1)
  if (text.charCodeAt(p) === RBRACKET) return p + 1
  for (;;) {
    if (text.charCodeAt(p) !== LBRACE) return -1
    p = skipSpace(text, p + 1)
    let id: string | undefined
    let score: number | undefined
    let samples: number | undefined
    for (;;) {
      p = readPlainString(text, p)
      if (p < 0) return -1
      const key = plainString
      p = skipSpace(text, p)
      if (text.charCodeAt(p) !== COLON) return -1
      p = skipSpace(text, p + 1)
      if (key === 'id' && id === undefined) {
        p = readPlainString(text, p)
        id = plainString
      } else if (key === 'score' && score === undefined) {
        p = readPlainNumber(text, p)
        score = plainNumber
      } else if (key === 'samples' && samples === undefined) {
        p = readPlainNumber(text, p)
        samples = plainNumber
      } else return -1
      if (p < 0) return -1
      p = skipSpace(text, p)
      const c = text.charCodeAt(p)
      if (c === RBRACE) break
      if (c !== COMMA) return -1
      p = skipSpace(text, p + 1)
    }
    // A target missing a key is not plain: the reader reports it from JSON.parse's value.
    if (id === undefined || score === undefined || samples === undefined) return -1
    out.push({ id, score, samples })
    p = skipSpace(text, p + 1)
    const c = text.charCodeAt(p)
    if (c === RBRACKET) return p + 1
    if (c !== COMMA) return -1
    p = skipSpace(text, p + 1)
  }
}

/** A string at p without escapes or control characters into `plainString`; index past it, or -1. */
function readPlainString(text: string, p: number): number {
  if (text.charCodeAt(p) !== QUOTE) return -1
  for (let j = p + 1; j < text.length; j++) {
    const c = text.charCodeAt(j)
    if (c === QUOTE) {
      plainString = text.slice(p + 1, j)
      return j + 1
    }
    if (c === 0x5c || c < 0x20) return -1
  }
  return -1
}

const POWERS_OF_TEN = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15] as const

/**
 * A number at p in JSON's grammar into `plainNumber`; index past it, or -1.
 * Up to 15 significant digits without an exponent it is digits / 10^k, which
 * is exact before one correctly rounded division (both operands are exact
 * doubles), so it equals JSON.parse's result; otherwise Number() of the text.
 */
function readPlainNumber(text: string, p: number): number {
  let j = p
  const negative = text.charCodeAt(j) === 0x2d
  if (negative) j++
  const intStart = j
  let mantissa = 0
  while (isDigit(text.charCodeAt(j))) {
    mantissa = mantissa * 10 + text.charCodeAt(j) - 0x30
    j++
  }
  const intDigits = j - intStart
  if (intDigits === 0 || (intDigits > 1 && text.charCodeAt(intStart) === 0x30)) return -1
  let digits = intDigits
  let fractionDigits = 0
  if (text.charCodeAt(j) === 0x2e) {
    j++
    while (isDigit(text.charCodeAt(j))) {
      mantissa = mantissa * 10 + text.charCodeAt(j) - 0x30
      j++
      fractionDigits++
    }
    if (fractionDigits === 0) return -1
    digits += fractionDigits
  }
  let exponent = false
  const e = text.charCodeAt(j)
  if (e === 0x65 || e === 0x45) {
    exponent = true
    j++
    const sign = text.charCodeAt(j)
    if (sign === 0x2b || sign === 0x2d) j++
    const expStart = j
    while (isDigit(text.charCodeAt(j))) j++
    if (j === expStart) return -1
  }
  // The number must end here: JSON.parse would reject "12x" within a value.
  const after = text.charCodeAt(j)
  if (after !== COMMA && after !== RBRACE && after !== RBRACKET && after !== 0x20 && after !== 0x0a && after !== 0x0d && after !== 0x09) return -1
  if (!exponent && digits <= 15) {
    const value = mantissa / (POWERS_OF_TEN[fractionDigits] as number)
    plainNumber = negative ? -value : value
  } else plainNumber = Number(text.slice(p, j))
  return j
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}
