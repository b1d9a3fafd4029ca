/**
 * Encoded answers, reused: the fast path of issue 7. A query whose bytes
 * after the ID (with the question name lowercased) equal those of a query
 * answered before gets that answer's bytes with its own ID and question name
 * copied in. The full pipeline (decode, lookup or steering, encode) runs only
 * on a miss, and decides what may be stored.
 *
 * What makes reuse exact: the key holds every byte of the query but the ID,
 * so RD, CD, the EDNS size, DO, NSID and the ECS option (source prefix and
 * address) are all in it, and the transport. Names in answers point into
 * the question (wire/encode-response.ts), so copying the question's bytes
 * echoes the client's case everywhere. An entry is bound to the zone
 * snapshot it was computed from, and a steered one also to the steering
 * snapshot; a swap of either makes it a miss. What depends on the client's
 * own address is stored per address (steering by resolver). What depends on
 * time without a swap bounds how long steered entries live (steered-reuse.ts). Queries with a COOKIE option, debug names and CHAOS
 * are never stored: their answers differ per client and per second.
 */
import type { ClientKey, SteeringView } from '../steering/index.js'
import type { ZoneSet } from '../zone/index.js'
import type { QueryLogEntry, Transport } from './handle-query.js'

/** Entries per generation; two generations are kept (the older one is dropped when the newer fills). */
export const ANSWER_CACHE_ENTRIES = 50_000
/**
 * Answer bytes per generation. Keys are whatever bytes a client sends, so a
 * flood of distinct queries (random ECS, random options, spoofed sources)
 * must cost bounded memory: two generations hold at most twice this, plus
 * about 200 bytes of key and entry per answer.
 */
export const ANSWER_CACHE_GENERATION_BYTES = 16 * 1024 * 1024
/** Larger answers are not stored: they are rare, and each would take a big share of the budget. */
export const ANSWER_CACHE_MAX_ANSWER_BYTES = 1232
/**
 * The longest a steered answer is reused (steered-reuse.ts bounds it further
 * by the snapshot's next override or admin expiry). Measured with
 * bench/compare's ECS set (10,455 subnets) at a steady 10k/s after a run at
 * full speed: p99 2.2 ms with 5 s, 0.58 ms with 60 s — each expiry is a miss,
 * and what a miss allocates is what the collector then pauses for.
 */
export const STEERED_REUSE_MS = 60_000
/** Longer queries are answered without the cache (a normal query is under 100 bytes; the key copies it). */
const MAX_KEY_QUERY_BYTES = 512
const HEADER_BYTES = 12

/** What the pipeline knows about an answer it stores (the bytes go in separately). */
export interface CachedAnswer extends AnswerFacts {
  /** The response as encoded for the first query lives at arena[offset, offset + length). */
  readonly arena: Buffer
  readonly offset: number
  readonly length: number
}

export interface AnswerFacts {
  /** End of the question name in both query and response (the case is copied over [12, nameEnd)). */
  readonly nameEnd: number
  readonly zones: ZoneSet
  /** The steering snapshot a steered answer came from; undefined for static data. */
  readonly view: SteeringView | undefined
  /** Reused until this time (ms); Infinity for static data. */
  readonly expiresAtMs: number
  readonly qtype: number
  readonly rcode: number
  readonly truncated: boolean
  /** ECS scope echoed, when the query had ECS. */
  readonly ecsScope: number | undefined
  readonly rrlCategory: number
  readonly rrlName: string
  /** The steering rule that decided, for metrics. */
  readonly rule: string | undefined
  /** A steered decision to record in the recent-decisions ring. */
  readonly decision: { readonly qname: string; readonly key: ClientKey; readonly targets: readonly number[]; readonly scopePrefixLen: number; readonly ttlSec: number } | undefined
  /** The query log line without client and transport; built only when query logging is on. */
  readonly log: Omit<QueryLogEntry, 'client' | 'transport'> | undefined
}

/** Marks a key whose answers are stored per client address. */
const PER_CLIENT = Symbol('per-client')
type Slot = CachedAnswer | typeof PER_CLIENT

/**
 * Answers are copied into one large buffer per generation rather than each
 * into its own: a Uint8Array per entry is an ArrayBuffer the young-generation
 * collector must track one by one, and at 10k queries/s with misses those
 * collections were what held queries back (bench/compare p99).
 */
export class AnswerCache {
  #current = new Map<string, Slot>()
  #previous = new Map<string, Slot>()
  /** Where the current generation's answers are copied; allocated at its first store. */
  #arena: Buffer | undefined
  /** Answer bytes stored in the current generation. */
  #currentBytes = 0
  readonly #scratch = Buffer.allocUnsafe(MAX_KEY_QUERY_BYTES + 1)

  constructor(
    readonly maxEntries = ANSWER_CACHE_ENTRIES,
    readonly generationBytes = ANSWER_CACHE_GENERATION_BYTES,
  ) {}

  /** Whether an answer of this size may be stored at all. */
  static fits(answerBytes: number): boolean {
    return answerBytes <= ANSWER_CACHE_MAX_ANSWER_BYTES
  }

  /**
   * The key of a query, or undefined when it cannot be cached (not one
   * question, a compressed or overlong name, an oversized message). Also
   * returns where the name ends.
   */
  keyOf(message: Uint8Array, transport: Transport): { key: string; nameEnd: number } | undefined {
    const length = message.length
    if (length < HEADER_BYTES + 5 || length > MAX_KEY_QUERY_BYTES) return undefined
    // QDCOUNT must be 1.
    if (message[4] !== 0 || message[5] !== 1) return undefined
    const scratch = this.#scratch
    scratch[0] = transport === 'udp' ? 0x75 : 0x74
    for (let i = 2; i < HEADER_BYTES; i++) scratch[i - 1] = message[i] as number
    let at = HEADER_BYTES
    for (;;) {
      const labelLength = message[at] as number | undefined
      if (labelLength === undefined || labelLength > 63) return undefined
      scratch[at - 1] = labelLength
      at++
      if (labelLength === 0) break
      const end = at + labelLength
      if (end > length || end - HEADER_BYTES > 255) return undefined
      for (; at < end; at++) {
        const c = message[at] as number
        scratch[at - 1] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c
      }
    }
    const nameEnd = at
    for (; at < length; at++) scratch[at - 1] = message[at] as number
    return { key: scratch.toString('latin1', 0, length - 1), nameEnd }
  }

  /** The entry for `key` (per client when stored so), or undefined. */
  get(key: string, client: string): CachedAnswer | undefined {
    let slot = this.#lookup(key)
    if (slot === PER_CLIENT) slot = this.#lookup(`${key}\u0000${client}`) as CachedAnswer | undefined
    return slot
  }

  /** Stores `bytes` (copied) with `facts` under the key, or under key and client when the answer depends on the client's address. */
  set(key: string, client: string, facts: AnswerFacts, bytes: Uint8Array, perClient: boolean): void {
    if (bytes.length > this.generationBytes) return
    if (perClient) {
      this.#store(key, PER_CLIENT)
      this.#storeAnswer(`${key}\u0000${client}`, facts, bytes)
    } else {
      this.#storeAnswer(key, facts, bytes)
    }
  }

  get size(): number {
    return this.#current.size + this.#previous.size
  }

  #lookup(key: string): Slot | undefined {
    const slot = this.#current.get(key)
    if (slot !== undefined) return slot
    const old = this.#previous.get(key)
    if (old === undefined) return undefined
    // Used again: moved into the current generation (its bytes too, so the old arena can go).
    if (old === PER_CLIENT) return this.#store(key, PER_CLIENT)
    return this.#storeAnswer(key, old, old.arena.subarray(old.offset, old.offset + old.length))
  }

  #storeAnswer(key: string, facts: AnswerFacts, bytes: Uint8Array): CachedAnswer {
    this.#rotateIfFull(bytes.length)
    if (!this.#arena) this.#arena = Buffer.allocUnsafeSlow(this.generationBytes)
    const offset = this.#currentBytes
    this.#arena.set(bytes, offset)
    this.#currentBytes += bytes.length
    const { nameEnd, zones, view, expiresAtMs, qtype, rcode, truncated, ecsScope, rrlCategory, rrlName, rule, decision, log } = facts
    const entry: CachedAnswer = { arena: this.#arena, offset, length: bytes.length, nameEnd, zones, view, expiresAtMs, qtype, rcode, truncated, ecsScope, rrlCategory, rrlName, rule, decision, log }
    this.#current.set(key, entry)
    return entry
  }

  #store(key: string, marker: typeof PER_CLIENT): typeof PER_CLIENT {
    this.#rotateIfFull(0)
    this.#current.set(key, marker)
    return marker
  }

  #rotateIfFull(bytes: number): void {
    if (this.#current.size < this.maxEntries && this.#currentBytes + bytes <= this.generationBytes) return
    this.#previous = this.#current
    this.#current = new Map()
    this.#arena = undefined
    this.#currentBytes = 0
  }
}

/** The answer for this query from `entry`: its bytes with the query's ID and question name. */
export function patchAnswer(entry: CachedAnswer, message: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(entry.length)
  entry.arena.copy(out, 0, entry.offset, entry.offset + entry.length)
  out[0] = message[0] as number
  out[1] = message[1] as number
  for (let i = HEADER_BYTES; i < entry.nameEnd; i++) out[i] = message[i] as number
  return out
}
