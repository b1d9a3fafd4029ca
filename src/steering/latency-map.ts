/**
 * The latency map (DESIGN.md, "From measurements to the map"): an immutable,
 * versioned longest-prefix-match table from client prefix to targets ranked
 * by score (milliseconds, lower is better) with sample counts. One prefix
 * trie per family; IPv4-mapped IPv6 prefixes are stored as IPv4. Entry data
 * lives in parallel typed arrays (no object per entry or candidate), so a
 * million-prefix map is a few dozen arrays and a lookup allocates nothing.
 * Knows target indices only; ids and JSON are map-json.ts's business.
 */
import { formatPrefix, isIpv4Mapped } from './client-key.js'
import type { ClientKey } from './client-key.js'
import { buildInputError } from './map-error.js'
import { createTrieMatch, PrefixTrieBuilder } from './prefix-trie.js'
import type { PrefixTrie } from './prefix-trie.js'

/** Where LatencyMap.lookup writes its answer (reused: lookups never allocate). */
export interface MapMatch {
  /** Entry number of the longest matching prefix, -1 when none covers the key. */
  entry: number
  /** That entry's prefix length, -1 when none. */
  matchedLen: number
  /**
   * Longest prefix length of any entry strictly inside the key's prefix, -1
   * when none: the scope a resolver must send to get a specific answer when its
   * source prefix is shorter than the entries below it (RFC 7871 section 7.2.1).
   */
  deepestBelowLen: number
}

/** A fresh MapMatch to reuse across lookups. */
export function createMapMatch(): MapMatch {
  return { entry: -1, matchedLen: -1, deepestBelowLen: -1 }
}

/** Bytes reserved per entry for its prefix address (IPv4 uses the first 4). */
const ADDRESS_SLOT = 16

interface LatencyMapParts {
  readonly version: number
  readonly generatedAtMs: number | undefined
  readonly v4: PrefixTrie
  readonly v6: PrefixTrie
  readonly entryAddress: Uint8Array
  readonly entryPrefixLen: Uint8Array
  readonly entryFamily: Uint8Array
  readonly entryUpdatedAtMs: Float64Array | undefined
  readonly candidateStart: Uint32Array
  readonly candidateTarget: Uint16Array | Uint32Array
  readonly candidateScoreMs: Float64Array
  readonly candidateSamples: Uint32Array
}

/**
 * An immutable map snapshot. Entries are numbered 0..size-1 in the order they
 * were added; candidate i of entry e is the i-th best (score ascending, then
 * more samples, then lower target index). Accessors take in-range numbers and
 * do not check them (the query path calls them); out of range is unspecified.
 */
export class LatencyMap {
  readonly version: number
  /** Number of entries (prefixes). */
  readonly size: number
  /** When the map was computed (ms since the epoch), if its producer said. */
  readonly generatedAtMs: number | undefined
  private readonly parts: LatencyMapParts
  private readonly scratch = createTrieMatch()

  /** Internal: use LatencyMapBuilder, parseMapJson() or emptyLatencyMap(). */
  constructor(parts: LatencyMapParts) {
    this.parts = parts
    this.version = parts.version
    this.generatedAtMs = parts.generatedAtMs
    this.size = parts.entryPrefixLen.length
  }

  /** Total candidates over all entries. */
  get candidateTotal(): number {
    return this.parts.candidateScoreMs.length
  }

  /** Bytes held by the typed arrays (tries included); for memory accounting. */
  get byteLength(): number {
    const p = this.parts
    return (
      p.v4.byteLength +
      p.v6.byteLength +
      p.entryAddress.byteLength +
      p.entryPrefixLen.byteLength +
      p.entryFamily.byteLength +
      (p.entryUpdatedAtMs?.byteLength ?? 0) +
      p.candidateStart.byteLength +
      p.candidateTarget.byteLength +
      p.candidateScoreMs.byteLength +
      p.candidateSamples.byteLength
    )
  }

  /**
   * Longest-prefix match for a client key, written to `out`. Allocates nothing,
   * never throws; cost is one trie walk, independent of the map's size.
   */
  lookup(key: ClientKey, out: MapMatch): void {
    const m = this.scratch
    ;(key.family === 4 ? this.parts.v4 : this.parts.v6).lookup(key.address, key.prefixLen, m)
    out.entry = m.value
    out.matchedLen = m.matchedLen
    out.deepestBelowLen = m.deepestBelowLen
  }

  /** Number of ranked candidates of `entry` (at least one). */
  candidateCount(entry: number): number {
    const start = this.parts.candidateStart
    return (start[entry + 1] as number) - (start[entry] as number)
  }

  /** Target index of the i-th best candidate of `entry`. */
  candidateTarget(entry: number, i: number): number {
    return this.parts.candidateTarget[(this.parts.candidateStart[entry] as number) + i] as number
  }

  /** Score (ms, lower is better) of the i-th best candidate of `entry`. */
  candidateScoreMs(entry: number, i: number): number {
    return this.parts.candidateScoreMs[(this.parts.candidateStart[entry] as number) + i] as number
  }

  /** Samples behind the i-th best candidate's score. */
  candidateSamples(entry: number, i: number): number {
    return this.parts.candidateSamples[(this.parts.candidateStart[entry] as number) + i] as number
  }

  /** Address family of `entry`'s prefix (IPv4-mapped prefixes are 4). */
  entryFamily(entry: number): 4 | 6 {
    return this.parts.entryFamily[entry] === 4 ? 4 : 6
  }

  /** Prefix length of `entry`, in bits of its family. */
  entryPrefixLen(entry: number): number {
    return this.parts.entryPrefixLen[entry] as number
  }

  /** Canonical text of `entry`'s prefix ("198.51.100.0/24", "2001:db8::/48"); allocates (traces, export). */
  entryPrefix(entry: number): string {
    const p = this.parts
    const bytes = p.entryFamily[entry] === 4 ? 4 : 16
    return formatPrefix({
      address: p.entryAddress.subarray(entry * ADDRESS_SLOT, entry * ADDRESS_SLOT + bytes),
      prefixLen: p.entryPrefixLen[entry] as number,
    })
  }

  /** When `entry`'s scores were last updated (ms since the epoch), undefined when not known. */
  entryUpdatedAtMs(entry: number): number | undefined {
    const t = this.parts.entryUpdatedAtMs?.[entry]
    return t === undefined || Number.isNaN(t) ? undefined : t
  }
}

/** A map with no entries: every lookup misses. */
export function emptyLatencyMap(version = 0): LatencyMap {
  return new LatencyMapBuilder().build(version)
}

/**
 * Accumulates entries, then build()s a LatencyMap. Add an entry, then its
 * candidates; candidates are ranked at build(). Input is checked (a caller's
 * bug throws STEER_ERR_MAP_BUILD_INPUT) but documents are validated upstream
 * (map-json.ts) where problems can be reported with their JSON path.
 *
 * Prefixes go into the tries only at the end, sorted by their first 32 bits:
 * consecutive inserts then share most of their path, which stays in cache
 * (inserting a million random /24s in file order was cache-miss bound: about
 * 2.6 s of a 12 s load, measured on the 2-core bench machine).
 */
export class LatencyMapBuilder {
  private tries: { v4: PrefixTrie; v6: PrefixTrie; duplicates: (readonly [number, number])[] } | undefined
  private entryCount = 0
  private entryAddress: Uint8Array
  private entryPrefixLen: Uint8Array
  private entryFamily: Uint8Array
  private entryUpdatedAtMs: Float64Array | undefined
  /** candidateStart[e]: first candidate of entry e; one past the last entry is `candidateCount`. */
  private candidateStart: Uint32Array
  private candidateCount = 0
  private candidateTarget: Uint32Array
  private candidateScoreMs: Float64Array
  private candidateSamples: Uint32Array
  private current = -1
  private built = false

  /** `expectedEntries` only sizes the first allocations. */
  constructor(opts: { expectedEntries?: number } = {}) {
    const entries = Math.max(16, opts.expectedEntries ?? 16)
    this.entryAddress = new Uint8Array(entries * ADDRESS_SLOT)
    this.entryPrefixLen = new Uint8Array(entries)
    this.entryFamily = new Uint8Array(entries)
    this.candidateStart = new Uint32Array(entries + 1)
    this.candidateTarget = new Uint32Array(entries * 4)
    this.candidateScoreMs = new Float64Array(entries * 4)
    this.candidateSamples = new Uint32Array(entries * 4)
  }

  /** Entries added so far. */
  get size(): number {
    return this.entryCount
  }

  /**
   * Starts an entry for `address/prefixLen` (4 or 16 bytes; bits past the
   * length are ignored; IPv4-mapped IPv6 of length ≥ 96 is stored as IPv4).
   * Returns the new entry's number (0, 1, …), which later addCandidate() calls
   * fill. A prefix added twice is found by duplicates() (and refused by
   * build()). `updatedAtMs`: ms since the epoch, when known. Throws
   * STEER_ERR_MAP_BUILD_INPUT for a bad address or length.
   */
  addEntry(address: Uint8Array, prefixLen: number, updatedAtMs?: number): number {
    if (this.tries) throw buildInputError('latency map: addEntry after duplicates() or build()')
    let bytes = address
    let len = prefixLen
    if (address.length === 16 && prefixLen >= 96 && prefixLen <= 128 && isIpv4Mapped(address)) {
      bytes = address.subarray(12)
      len = prefixLen - 96
    }
    if (bytes.length !== 4 && bytes.length !== 16) throw buildInputError('latency map: address must be 4 or 16 bytes')
    if (!Number.isInteger(len) || len < 0 || len > bytes.length * 8) throw buildInputError(`latency map: prefix length ${prefixLen} out of range`)
    const e = this.entryCount
    this.current = -1
    if (e === this.entryPrefixLen.length) this.growEntries()
    // Copied, then masked in place: no allocation per entry.
    const slot = e * ADDRESS_SLOT
    const stored = this.entryAddress
    stored.set(bytes, slot)
    const full = len >> 3
    if (full < bytes.length) {
      stored[slot + full] = (stored[slot + full] as number) & ((0xff << (8 - (len & 7))) & 0xff)
      stored.fill(0, slot + full + 1, slot + bytes.length)
    }
    this.entryPrefixLen[e] = len
    this.entryFamily[e] = bytes.length === 4 ? 4 : 6
    if (updatedAtMs !== undefined) {
      if (!Number.isFinite(updatedAtMs)) throw buildInputError(`latency map: updatedAtMs ${updatedAtMs} is not finite`)
      this.entryUpdatedAtMs ??= new Float64Array(this.entryPrefixLen.length).fill(NaN)
      this.entryUpdatedAtMs[e] = updatedAtMs
    }
    this.candidateStart[e] = this.candidateCount
    this.entryCount = e + 1
    this.current = e
    return e
  }

  /**
   * Adds a candidate to the entry the last successful addEntry() started.
   * `target`: target index (0..2^32-1); `scoreMs` finite ≥ 0; `samples` an
   * integer 0..2^32-1. Throws STEER_ERR_MAP_BUILD_INPUT for bad values, a
   * target already in the entry, or no current entry.
   */
  addCandidate(target: number, scoreMs: number, samples: number): void {
    const e = this.current
    if (e < 0) throw buildInputError('latency map: addCandidate without a current entry')
    if (!Number.isInteger(target) || target < 0 || target > 0xffffffff) throw buildInputError(`latency map: bad target index ${target}`)
    if (!Number.isFinite(scoreMs) || scoreMs < 0) throw buildInputError(`latency map: score ${scoreMs} is not a finite number ≥ 0`)
    if (!Number.isInteger(samples) || samples < 0 || samples > 0xffffffff) throw buildInputError(`latency map: samples ${samples} is not a uint32`)
    const start = this.candidateStart[e] as number
    for (let i = start; i < this.candidateCount; i++) {
      if (this.candidateTarget[i] === target) throw buildInputError(`latency map: target ${target} twice in one entry`)
    }
    const c = this.candidateCount
    if (c === this.candidateScoreMs.length) this.growCandidates()
    this.candidateTarget[c] = target
    this.candidateScoreMs[c] = scoreMs
    this.candidateSamples[c] = samples
    this.candidateCount = c + 1
  }

  /**
   * Prefixes added more than once, as [first entry, later entry] pairs in the
   * order of the later entry; empty when there are none. Ends addEntry().
   */
  duplicates(): readonly (readonly [number, number])[] {
    return this.buildTries().duplicates
  }

  /**
   * The finished, immutable map; the builder is spent. `version` is a
   * non-negative integer, `generatedAtMs` ms since the epoch. Throws
   * STEER_ERR_MAP_BUILD_INPUT for a bad version, an entry without candidates
   * or a prefix added twice.
   */
  build(version: number, generatedAtMs?: number): LatencyMap {
    if (this.built) throw buildInputError('latency map: build() called twice')
    if (!Number.isSafeInteger(version) || version < 0) throw buildInputError(`latency map: version ${version} is not a non-negative integer`)
    const tries = this.buildTries()
    const [dup] = tries.duplicates
    if (dup) throw buildInputError(`latency map: entry ${dup[1]} repeats the prefix of entry ${dup[0]}`)
    this.built = true
    const n = this.entryCount
    const total = this.candidateCount
    const start = this.candidateStart
    start[n] = total
    let maxTarget = 0
    for (let e = 0; e < n; e++) {
      const from = start[e] as number
      const to = start[e + 1] as number
      if (from === to) throw buildInputError(`latency map: entry ${e} has no candidates`)
      this.rank(from, to)
    }
    for (let i = 0; i < total; i++) if ((this.candidateTarget[i] as number) > maxTarget) maxTarget = this.candidateTarget[i] as number
    // Two bytes per candidate instead of four whenever the target list allows (it always does in practice).
    const targets = maxTarget <= 0xffff ? Uint16Array.from(this.candidateTarget.subarray(0, total)) : this.candidateTarget.slice(0, total)
    return new LatencyMap({
      version,
      generatedAtMs,
      v4: tries.v4,
      v6: tries.v6,
      entryAddress: this.entryAddress.slice(0, n * ADDRESS_SLOT),
      entryPrefixLen: this.entryPrefixLen.slice(0, n),
      entryFamily: this.entryFamily.slice(0, n),
      entryUpdatedAtMs: this.entryUpdatedAtMs?.slice(0, n),
      candidateStart: start.slice(0, n + 1),
      candidateTarget: targets,
      candidateScoreMs: this.candidateScoreMs.slice(0, total),
      candidateSamples: this.candidateSamples.slice(0, total),
    })
  }

  /** Both tries, prefixes inserted in order of their first 32 bits (stable, so the first of two duplicates wins). */
  private buildTries(): NonNullable<LatencyMapBuilder['tries']> {
    if (this.tries) return this.tries
    const n = this.entryCount
    const address = this.entryAddress
    const firstWord = new Uint32Array(n)
    let v4Count = 0
    for (let e = 0; e < n; e++) {
      const at = e * ADDRESS_SLOT
      firstWord[e] = (((address[at] as number) << 24) | ((address[at + 1] as number) << 16) | ((address[at + 2] as number) << 8) | (address[at + 3] as number)) >>> 0
      if (this.entryFamily[e] === 4) v4Count++
    }
    const order = sortByWord(firstWord)
    const v4 = new PrefixTrieBuilder(32, v4Count)
    const v6 = new PrefixTrieBuilder(128, n - v4Count)
    const duplicates: (readonly [number, number])[] = []
    for (let i = 0; i < n; i++) {
      const e = order[i] as number
      const isV4 = this.entryFamily[e] === 4
      const at = e * ADDRESS_SLOT
      const existing = (isV4 ? v4 : v6).insert(address.subarray(at, at + (isV4 ? 4 : 16)), this.entryPrefixLen[e] as number, e)
      if (existing >= 0) duplicates.push([existing, e])
    }
    duplicates.sort((a, b) => a[1] - b[1])
    this.tries = { v4: v4.freeze(), v6: v6.freeze(), duplicates }
    return this.tries
  }

  /** Insertion sort of one entry's candidates: a handful each, already near order when compiled. */
  private rank(from: number, to: number): void {
    const target = this.candidateTarget
    const score = this.candidateScoreMs
    const samples = this.candidateSamples
    for (let i = from + 1; i < to; i++) {
      const t = target[i] as number
      const s = score[i] as number
      const n = samples[i] as number
      let j = i - 1
      while (j >= from && ranksAfter(score[j] as number, samples[j] as number, target[j] as number, s, n, t)) {
        target[j + 1] = target[j] as number
        score[j + 1] = score[j] as number
        samples[j + 1] = samples[j] as number
        j--
      }
      target[j + 1] = t
      score[j + 1] = s
      samples[j + 1] = n
    }
  }

  private growEntries(): void {
    const size = this.entryPrefixLen.length * 2
    this.entryAddress = grown(this.entryAddress, size * ADDRESS_SLOT)
    this.entryPrefixLen = grown(this.entryPrefixLen, size)
    this.entryFamily = grown(this.entryFamily, size)
    this.candidateStart = grown(this.candidateStart, size + 1)
    if (this.entryUpdatedAtMs) {
      const old = this.entryUpdatedAtMs.length
      this.entryUpdatedAtMs = grown(this.entryUpdatedAtMs, size)
      this.entryUpdatedAtMs.fill(NaN, old)
    }
  }

  private growCandidates(): void {
    const size = this.candidateScoreMs.length * 2
    this.candidateTarget = grown(this.candidateTarget, size)
    this.candidateScoreMs = grown(this.candidateScoreMs, size)
    this.candidateSamples = grown(this.candidateSamples, size)
  }
}

/** Whether candidate a ranks after candidate b: higher score, then fewer samples, then higher target index. */
function ranksAfter(aScore: number, aSamples: number, aTarget: number, bScore: number, bSamples: number, bTarget: number): boolean {
  if (aScore !== bScore) return aScore > bScore
  if (aSamples !== bSamples) return aSamples < bSamples
  return aTarget > bTarget
}

type GrowableArray = Uint8Array | Uint32Array | Float64Array

/** A copy of `a` with room for `size` elements. */
function grown<T extends GrowableArray>(a: T, size: number): T {
  const next = new (a.constructor as new (n: number) => T)(size)
  next.set(a)
  return next
}

/** Entry numbers ordered by `words` (stable): a two-pass 16-bit radix sort, linear where a comparison sort is not. */
function sortByWord(words: Uint32Array): Int32Array {
  const n = words.length
  let from = new Int32Array(n)
  let to = new Int32Array(n)
  for (let i = 0; i < n; i++) from[i] = i
  const counts = new Int32Array(0x10001)
  for (const shift of [0, 16]) {
    counts.fill(0)
    for (let i = 0; i < n; i++) {
      const bucket = (((words[i] as number) >>> shift) & 0xffff) + 1
      counts[bucket] = (counts[bucket] as number) + 1
    }
    for (let b = 0; b < 0x10000; b++) counts[b + 1] = (counts[b + 1] as number) + (counts[b] as number)
    for (let i = 0; i < n; i++) {
      const e = from[i] as number
      const bucket = ((words[e] as number) >>> shift) & 0xffff
      const at = counts[bucket] as number
      counts[bucket] = at + 1
      to[at] = e
    }
    ;[from, to] = [to, from]
  }
  return from
}
