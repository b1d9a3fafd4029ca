/**
 * Longest-prefix match for one address family (32 or 128 bits): an immutable
 * path-compressed binary (PATRICIA-style) trie held in typed arrays, with no
 * JS object per node. Values are integer entry numbers; what they mean is the
 * caller's business (latency-map.ts). Built by PrefixTrieBuilder, read-only
 * after freeze(). Lookups allocate nothing and walk at most one node per
 * branching bit of the query, whatever the number of entries.
 *
 * Hand-written rather than taken from a library on purpose: this sits on the
 * query path (one lookup per steered answer), must not allocate, and must
 * answer the ECS scope question (deepest entry below a short source prefix,
 * RFC 7871 section 7.2.1) in the same walk; the npm prefix-tree packages keep
 * an object per node and answer only "longest match".
 */
import { buildInputError } from './map-error.js'

/** Where a lookup writes its answer (reused by the caller: lookups never allocate). */
export interface TrieMatch {
  /** Value of the deepest entry covering the query, -1 when none does. */
  value: number
  /** Prefix length of that entry, -1 when none. */
  matchedLen: number
  /**
   * Largest prefix length of any entry strictly inside the query prefix (longer
   * than it, sharing its bits), -1 when none. An entry exactly at the query's
   * length covers it (matchedLen) and is not "below".
   */
  deepestBelowLen: number
}

/** A fresh TrieMatch to reuse across lookups. */
export function createTrieMatch(): TrieMatch {
  return { value: -1, matchedLen: -1, deepestBelowLen: -1 }
}

const NONE = -1

/** Bits per address of each family, and 32-bit words per key. */
type TrieBits = 32 | 128

/**
 * Collects prefixes, then freeze()s them into a PrefixTrie. Insertion builds
 * the path-compressed trie directly in growable typed arrays (amortised
 * doubling), so a million prefixes never become a million objects.
 */
export class PrefixTrieBuilder {
  readonly bits: TrieBits
  private readonly words: number
  private keys: Uint32Array
  private lens: Uint8Array
  private children: Int32Array
  private values: Int32Array
  private nodeCount = 0
  private root = NONE
  private entries = 0
  private frozen = false
  /** The key being inserted, as big-endian 32-bit words masked to its length. */
  private readonly key: Uint32Array

  /** `expectedEntries` only sizes the first allocation. */
  constructor(bits: TrieBits, expectedEntries = 16) {
    this.bits = bits
    this.words = bits >> 5
    const nodes = Math.max(16, 2 * expectedEntries)
    this.keys = new Uint32Array(nodes * this.words)
    this.lens = new Uint8Array(nodes)
    this.children = new Int32Array(nodes * 2).fill(NONE)
    this.values = new Int32Array(nodes).fill(NONE)
    this.key = new Uint32Array(this.words)
  }

  /** Number of distinct prefixes inserted so far. */
  get size(): number {
    return this.entries
  }

  /**
   * Adds `address/prefixLen` with `value` (a non-negative int32). Bits of
   * `address` past `prefixLen` are ignored. Returns -1 when the prefix is new,
   * or the value already stored for it (which is kept; nothing is added).
   * Throws STEER_ERR_MAP_BUILD_INPUT for a wrong address size, length or value,
   * or after freeze().
   */
  insert(address: Uint8Array, prefixLen: number, value: number): number {
    if (this.frozen) throw buildInputError('prefix trie: insert after freeze()')
    if (address.length !== this.bits >> 3) throw buildInputError(`prefix trie: address must be ${this.bits >> 3} bytes`)
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > this.bits) {
      throw buildInputError(`prefix trie: prefix length ${prefixLen} is not 0-${this.bits}`)
    }
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw buildInputError(`prefix trie: value ${value} is not a non-negative int32`)
    const key = this.key
    loadWords(address, key, this.words)
    maskWords(key, prefixLen)

    if (this.root === NONE) {
      this.root = this.newNode(prefixLen, value, prefixLen)
      this.entries++
      return NONE
    }
    let parentSlot = NONE
    let n = this.root
    for (;;) {
      const nodeLen = this.lens[n] as number
      const c = this.commonPrefix(n, nodeLen < prefixLen ? nodeLen : prefixLen)
      if (c < nodeLen) {
        // The new prefix leaves this node's edge at bit c: either it ends there
        // (it becomes n's parent) or it branches off (a new branch node at c).
        let m: number
        if (c === prefixLen) {
          m = this.newNode(prefixLen, value, prefixLen)
          this.children[2 * m + this.nodeBit(n, prefixLen)] = n
        } else {
          m = this.newNode(c, NONE, c)
          const leaf = this.newNode(prefixLen, value, prefixLen)
          const b = wordBit(key, 0, c)
          this.children[2 * m + b] = leaf
          this.children[2 * m + (b ^ 1)] = n
        }
        if (parentSlot === NONE) this.root = m
        else this.children[parentSlot] = m
        this.entries++
        return NONE
      }
      if (nodeLen === prefixLen) {
        const existing = this.values[n] as number
        if (existing !== NONE) return existing
        this.values[n] = value
        this.entries++
        return NONE
      }
      const slot = 2 * n + wordBit(key, 0, nodeLen)
      const child = this.children[slot] as number
      if (child === NONE) {
        // newNode() may replace this.children when it grows: call it before indexing.
        const leaf = this.newNode(prefixLen, value, prefixLen)
        this.children[slot] = leaf
        this.entries++
        return NONE
      }
      parentSlot = slot
      n = child
    }
  }

  /**
   * The finished trie: nodes renumbered in depth-first order (a lookup's path
   * sits close together in memory), arrays trimmed to size, and each node's
   * deepest entry length below it precomputed. The builder is spent afterwards.
   */
  freeze(): PrefixTrie {
    if (this.frozen) throw buildInputError('prefix trie: freeze() called twice')
    this.frozen = true
    const count = this.nodeCount
    const words = this.words
    const order = new Int32Array(count)
    const renumber = new Int32Array(count)
    // Depth only grows along a path, so the stack never holds more than two nodes per level.
    const stack = new Int32Array(2 * this.bits + 4)
    let top = 0
    let next = 0
    if (this.root !== NONE) stack[top++] = this.root
    while (top > 0) {
      const n = stack[--top] as number
      renumber[n] = next
      order[next++] = n
      const c1 = this.children[2 * n + 1] as number
      const c0 = this.children[2 * n] as number
      if (c1 !== NONE) stack[top++] = c1
      if (c0 !== NONE) stack[top++] = c0
    }
    const keys = new Uint32Array(count * words)
    const lens = new Uint8Array(count)
    const children = new Int32Array(count * 2)
    const values = new Int32Array(count)
    const maxLens = new Int16Array(count)
    for (let i = 0; i < count; i++) {
      const n = order[i] as number
      keys.set(this.keys.subarray(n * words, n * words + words), i * words)
      lens[i] = this.lens[n] as number
      values[i] = this.values[n] as number
      const c0 = this.children[2 * n] as number
      const c1 = this.children[2 * n + 1] as number
      children[2 * i] = c0 === NONE ? NONE : (renumber[c0] as number)
      children[2 * i + 1] = c1 === NONE ? NONE : (renumber[c1] as number)
    }
    // Children follow their parent in depth-first order, so one backwards pass
    // sees every subtree before its root.
    for (let i = count - 1; i >= 0; i--) {
      let deepest = (values[i] as number) === NONE ? NONE : (lens[i] as number)
      const c0 = children[2 * i] as number
      const c1 = children[2 * i + 1] as number
      if (c0 !== NONE && (maxLens[c0] as number) > deepest) deepest = maxLens[c0] as number
      if (c1 !== NONE && (maxLens[c1] as number) > deepest) deepest = maxLens[c1] as number
      maxLens[i] = deepest
    }
    const trie = new PrefixTrie(this.bits, keys, lens, children, values, maxLens, this.entries)
    // Release the growable arrays: the builder may outlive the build.
    this.keys = new Uint32Array(0)
    this.lens = new Uint8Array(0)
    this.children = new Int32Array(0)
    this.values = new Int32Array(0)
    return trie
  }

  /** Appends a node keyed by the current key masked to `maskLen` (≤ its length). */
  private newNode(len: number, value: number, maskLen: number): number {
    if (this.nodeCount === this.lens.length) this.grow()
    const n = this.nodeCount++
    const w = this.words
    for (let i = 0; i < w; i++) this.keys[n * w + i] = this.key[i] as number
    if (maskLen < this.bits) maskWords(this.keys.subarray(n * w, n * w + w), maskLen)
    this.lens[n] = len
    this.values[n] = value
    return n
  }

  private grow(): void {
    const nodes = this.lens.length * 2
    const keys = new Uint32Array(nodes * this.words)
    keys.set(this.keys)
    this.keys = keys
    const lens = new Uint8Array(nodes)
    lens.set(this.lens)
    this.lens = lens
    const children = new Int32Array(nodes * 2).fill(NONE)
    children.set(this.children)
    this.children = children
    const values = new Int32Array(nodes).fill(NONE)
    values.set(this.values)
    this.values = values
  }

  /** Number of leading bits (at most `limit`) node n's key shares with the current key. */
  private commonPrefix(n: number, limit: number): number {
    const off = n * this.words
    for (let w = 0; w * 32 < limit; w++) {
      const diff = ((this.keys[off + w] as number) ^ (this.key[w] as number)) >>> 0
      if (diff !== 0) {
        const c = w * 32 + Math.clz32(diff)
        return c < limit ? c : limit
      }
    }
    return limit
  }

  private nodeBit(n: number, bit: number): number {
    return wordBit(this.keys, n * this.words, bit)
  }
}

/**
 * The frozen trie. Per node: its key (big-endian 32-bit words, bits past its
 * length zero), length, two child indices, value (-1: a branch node only) and
 * the deepest entry length in its subtree. A branch node always has two
 * children, so every subtree holds at least one entry.
 */
export class PrefixTrie {
  readonly bits: TrieBits
  /** Number of entries (distinct prefixes). */
  readonly size: number
  private readonly words: number
  private readonly keys: Uint32Array
  private readonly lens: Uint8Array
  private readonly children: Int32Array
  private readonly values: Int32Array
  private readonly maxLens: Int16Array
  private readonly root: number
  /** The query address as words; reused by every lookup (the query path is synchronous). */
  private readonly query: Uint32Array

  /** Internal: use PrefixTrieBuilder.freeze() or emptyPrefixTrie(). */
  constructor(
    bits: TrieBits,
    keys: Uint32Array,
    lens: Uint8Array,
    children: Int32Array,
    values: Int32Array,
    maxLens: Int16Array,
    size: number,
  ) {
    this.bits = bits
    this.words = bits >> 5
    this.keys = keys
    this.lens = lens
    this.children = children
    this.values = values
    this.maxLens = maxLens
    this.size = size
    this.root = lens.length > 0 ? 0 : NONE
    this.query = new Uint32Array(this.words)
  }

  /** Number of nodes (entries plus branch nodes); for memory accounting. */
  get nodeCount(): number {
    return this.lens.length
  }

  /** Bytes held by the typed arrays. */
  get byteLength(): number {
    return this.keys.byteLength + this.lens.byteLength + this.children.byteLength + this.values.byteLength + this.maxLens.byteLength
  }

  /**
   * Longest-prefix match of the first `prefixLen` bits of `address` (4 or 16
   * bytes; bits past prefixLen are ignored, missing bytes read as zero), written
   * to `out`. Allocates nothing, never throws; `prefixLen` is clamped to the
   * family's width.
   */
  lookup(address: Uint8Array, prefixLen: number, out: TrieMatch): void {
    out.value = NONE
    out.matchedLen = NONE
    out.deepestBelowLen = NONE
    const words = this.words
    const keys = this.keys
    const q = this.query
    loadWords(address, q, words)
    const want = prefixLen < this.bits ? prefixLen : this.bits
    let verified = 0
    let n = this.root
    while (n !== NONE) {
      const len = this.lens[n] as number
      const limit = len < want ? len : want
      // Compare bits [verified, limit): the ancestors already matched the rest.
      const off = n * words
      const fullWords = limit >>> 5
      for (let w = verified >>> 5; w < fullWords; w++) if (keys[off + w] !== q[w]) return
      const rest = limit & 31
      if (rest !== 0 && (((keys[off + fullWords] as number) ^ (q[fullWords] as number)) >>> (32 - rest)) !== 0) return
      if (len > want) {
        // The whole subtree lies strictly inside the query prefix.
        out.deepestBelowLen = this.maxLens[n] as number
        return
      }
      const value = this.values[n] as number
      if (value !== NONE) {
        out.value = value
        out.matchedLen = len
      }
      if (len === want) {
        const c0 = this.children[2 * n] as number
        const c1 = this.children[2 * n + 1] as number
        let below = c0 === NONE ? NONE : (this.maxLens[c0] as number)
        if (c1 !== NONE && (this.maxLens[c1] as number) > below) below = this.maxLens[c1] as number
        out.deepestBelowLen = below
        return
      }
      verified = len
      n = this.children[2 * n + (((q[len >>> 5] as number) >>> (31 - (len & 31))) & 1)] as number
    }
  }
}

/** A trie with no entries. */
export function emptyPrefixTrie(bits: TrieBits): PrefixTrie {
  return new PrefixTrieBuilder(bits, 0).freeze()
}

/** Reads `words` big-endian 32-bit words from `address` (missing bytes read as zero). */
function loadWords(address: Uint8Array, out: Uint32Array, words: number): void {
  for (let w = 0; w < words; w++) {
    const b = w * 4
    out[w] =
      (((address[b] ?? 0) << 24) | ((address[b + 1] ?? 0) << 16) | ((address[b + 2] ?? 0) << 8) | (address[b + 3] ?? 0)) >>> 0
  }
}

/** Clears every bit from position `len` on. */
function maskWords(key: Uint32Array, len: number): void {
  for (let w = 0; w < key.length; w++) {
    const start = w * 32
    if (len <= start) key[w] = 0
    else if (len < start + 32) key[w] = ((key[w] as number) & (~0 << (32 - (len - start)))) >>> 0
  }
}

/** Bit `bit` (0 = most significant) of the key stored at `off`. */
function wordBit(keys: Uint32Array, off: number, bit: number): number {
  return ((keys[off + (bit >>> 5)] as number) >>> (31 - (bit & 31))) & 1
}
