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

/** Bits per address of each family. */
type TrieBits = 32 | 128

// Node layout: one Int32Array, `stride` = words + 4 slots per node, so a
// lookup touches one small contiguous record per level (separate arrays per
// field cost a cache miss each: lookups on a 100k-prefix map were 5x slower
// than on a 1k one with them). Nodes are addressed by their offset.
//   [0, words)   key: big-endian 32-bit words, bits past the length zero
//   words        meta: length (bits 0-7) | deepest entry length in the subtree + 1 (bits 8-15)
//   words + 1    value: entry value, -1 for a branch node
//   words + 2    child offset for bit 0, -1 none
//   words + 3    child offset for bit 1, -1 none
const META = 0
const VALUE = 1
const CHILD = 2

/**
 * Tries with at least this many entries get a jump table on their first
 * log2(entries) bits, 12 to 20 (about 12 bytes an entry, 12 MiB for a
 * million): the walk then starts near the bottom. Measured on the bench
 * machine, lookups in a 1M-prefix IPv4 map: 16 bits 580 ns, 18 bits 460 ns,
 * 20 bits 405 ns; 1k-prefix map 140 ns. What remains is a few cache misses.
 */
const JUMP_MIN_ENTRIES = 4096
const JUMP_MAX_BITS = 20

/**
 * Collects prefixes, then freeze()s them into a PrefixTrie. Insertion builds
 * the path-compressed trie directly in a growable typed array (amortised
 * doubling), so a million prefixes never become a million objects.
 */
export class PrefixTrieBuilder {
  readonly bits: TrieBits
  private readonly words: number
  private readonly stride: number
  private nodes: Int32Array
  /** Offset one past the last node. */
  private used = 0
  private root = NONE
  private entries = 0
  private frozen = false
  /** The key being inserted, as big-endian 32-bit words masked to its length. */
  private readonly key: Int32Array

  /** `expectedEntries` only sizes the first allocation. */
  constructor(bits: TrieBits, expectedEntries = 16) {
    this.bits = bits
    this.words = bits >> 5
    this.stride = this.words + 4
    // A path-compressed trie has at most one branch node per entry.
    this.nodes = new Int32Array(Math.max(16, 2 * expectedEntries) * this.stride)
    this.key = new Int32Array(this.words)
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
    const words = this.words
    const key = this.key
    loadWords(address, key, words)
    maskWords(key, 0, words, prefixLen)

    if (this.root === NONE) {
      this.root = this.newNode(prefixLen, value, prefixLen)
      this.entries++
      return NONE
    }
    let parentSlot = NONE
    let n = this.root
    for (;;) {
      const nodeLen = (this.nodes[n + words + META] as number) & 0xff
      const c = this.commonPrefix(n, nodeLen < prefixLen ? nodeLen : prefixLen)
      if (c < nodeLen) {
        // The new prefix leaves this node's edge at bit c: either it ends there
        // (it becomes n's parent) or it branches off (a new branch node at c).
        // newNode() may replace this.nodes when it grows: index it afterwards.
        let m: number
        if (c === prefixLen) {
          m = this.newNode(prefixLen, value, prefixLen)
          this.nodes[m + words + CHILD + wordBit(this.nodes, n, prefixLen)] = n
        } else {
          m = this.newNode(c, NONE, c)
          const leaf = this.newNode(prefixLen, value, prefixLen)
          const b = wordBit(key, 0, c)
          this.nodes[m + words + CHILD + b] = leaf
          this.nodes[m + words + CHILD + (b ^ 1)] = n
        }
        if (parentSlot === NONE) this.root = m
        else this.nodes[parentSlot] = m
        this.entries++
        return NONE
      }
      if (nodeLen === prefixLen) {
        const existing = this.nodes[n + words + VALUE] as number
        if (existing !== NONE) return existing
        this.nodes[n + words + VALUE] = value
        this.entries++
        return NONE
      }
      const slot = n + words + CHILD + wordBit(key, 0, nodeLen)
      const child = this.nodes[slot] as number
      if (child === NONE) {
        const leaf = this.newNode(prefixLen, value, prefixLen)
        this.nodes[slot] = leaf
        this.entries++
        return NONE
      }
      parentSlot = slot
      n = child
    }
  }

  /**
   * The finished trie: nodes laid out in depth-first order (a lookup's path
   * sits close together in memory), trimmed to size, and each node's deepest
   * entry length below it precomputed. The builder is spent afterwards.
   */
  freeze(): PrefixTrie {
    if (this.frozen) throw buildInputError('prefix trie: freeze() called twice')
    this.frozen = true
    const { words, stride } = this
    const from = this.nodes
    const count = this.used / stride
    const to = new Int32Array(this.used)
    // Depth-first copy. Depth only grows along a path, so the stack holds at
    // most one pending sibling per level: [old offset, new parent slot] pairs.
    const stack = new Int32Array(4 * this.bits + 8)
    let top = 0
    let next = 0
    if (this.root !== NONE) {
      stack[top++] = this.root
      stack[top++] = NONE
    }
    while (top > 0) {
      const parentSlot = stack[--top] as number
      const old = stack[--top] as number
      const at = next
      next += stride
      to.set(from.subarray(old, old + stride), at)
      if (parentSlot !== NONE) to[parentSlot] = at
      const c1 = from[old + words + CHILD + 1] as number
      const c0 = from[old + words + CHILD] as number
      if (c1 !== NONE) {
        stack[top++] = c1
        stack[top++] = at + words + CHILD + 1
      }
      if (c0 !== NONE) {
        stack[top++] = c0
        stack[top++] = at + words + CHILD
      }
    }
    // Children follow their parent in depth-first order, so one backwards pass
    // sees every subtree before its root.
    for (let at = next - stride; at >= 0; at -= stride) {
      const meta = to[at + words + META] as number
      let deepest = (to[at + words + VALUE] as number) === NONE ? NONE : meta & 0xff
      for (let b = 0; b < 2; b++) {
        const c = to[at + words + CHILD + b] as number
        if (c !== NONE) {
          const below = (((to[c + words + META] as number) >> 8) & 0xff) - 1
          if (below > deepest) deepest = below
        }
      }
      to[at + words + META] = (meta & 0xff) | ((deepest + 1) << 8)
    }
    this.nodes = new Int32Array(0)
    return new PrefixTrie(this.bits, to, count === 0 ? NONE : 0, this.entries)
  }

  /** Appends a node keyed by the current key masked to `maskLen` (≤ its length); returns its offset. */
  private newNode(len: number, value: number, maskLen: number): number {
    const { words, stride } = this
    if (this.used + stride > this.nodes.length) {
      const grown = new Int32Array(this.nodes.length * 2)
      grown.set(this.nodes)
      this.nodes = grown
    }
    const n = this.used
    this.used += stride
    const nodes = this.nodes
    nodes.set(this.key, n)
    if (maskLen < this.bits) maskWords(nodes, n, words, maskLen)
    nodes[n + words + META] = len
    nodes[n + words + VALUE] = value
    nodes[n + words + CHILD] = NONE
    nodes[n + words + CHILD + 1] = NONE
    return n
  }

  /** Number of leading bits (at most `limit`) node n's key shares with the current key. */
  private commonPrefix(n: number, limit: number): number {
    for (let w = 0; w * 32 < limit; w++) {
      const diff = (this.nodes[n + w] as number) ^ (this.key[w] as number)
      if (diff !== 0) {
        const c = w * 32 + Math.clz32(diff)
        return c < limit ? c : limit
      }
    }
    return limit
  }
}

/**
 * The frozen trie: nodes in one Int32Array (layout above). A branch node
 * always has two children, so every subtree holds at least one entry.
 */
export class PrefixTrie {
  readonly bits: TrieBits
  /** Number of entries (distinct prefixes). */
  readonly size: number
  private readonly words: number
  private readonly nodes: Int32Array
  private readonly root: number
  /** The query address as words; reused by every lookup (the query path is synchronous). */
  private readonly query: Int32Array
  /**
   * For large tries, where to resume a walk after the first `jumpBits` bits:
   * per value of those bits, a record of the first node of length ≥ jumpBits
   * on the path (-1 none), and the value and length of the best entry above
   * it (-1 none). Skips the upper levels, each a likely cache miss on a big
   * map; one record, not three arrays, so it costs one miss itself.
   */
  private readonly jump: Int32Array | undefined
  /** 0 when there is no jump table. */
  private readonly jumpBits: number

  /** Internal: use PrefixTrieBuilder.freeze() or emptyPrefixTrie(). */
  constructor(bits: TrieBits, nodes: Int32Array, root: number, size: number) {
    this.bits = bits
    this.words = bits >> 5
    this.nodes = nodes
    this.root = root
    this.size = size
    this.query = new Int32Array(this.words)
    this.jumpBits = size >= JUMP_MIN_ENTRIES ? Math.min(JUMP_MAX_BITS, Math.floor(Math.log2(size))) : 0
    if (this.jumpBits > 0) {
      this.jump = new Int32Array(3 << this.jumpBits).fill(NONE)
      this.fillJump(this.root, NONE, NONE)
    }
  }

  /**
   * Fills the jump records under node n (whose ancestors' best entry is
   * value/valueLen): a node shorter than jumpBits covers a range of records,
   * which its children then refine; a node at or past jumpBits is where the
   * walk resumes for its one record. Work is about two writes per record.
   */
  private fillJump(n: number, value: number, valueLen: number): void {
    const { words, nodes, jumpBits } = this
    const jump = this.jump as Int32Array
    if (n === NONE) return
    const len = (nodes[n + words + META] as number) & 0xff
    const first = (nodes[n] as number) >>> (32 - jumpBits)
    if (len >= jumpBits) {
      jump[3 * first] = n
      jump[3 * first + 1] = value
      jump[3 * first + 2] = valueLen
      return
    }
    const v = nodes[n + words + VALUE] as number
    if (v !== NONE) {
      value = v
      valueLen = len
    }
    const end = first + (1 << (jumpBits - len))
    for (let x = first; x < end; x++) {
      jump[3 * x] = NONE
      jump[3 * x + 1] = value
      jump[3 * x + 2] = valueLen
    }
    this.fillJump(nodes[n + words + CHILD] as number, value, valueLen)
    this.fillJump(nodes[n + words + CHILD + 1] as number, value, valueLen)
  }

  /** Number of nodes (entries plus branch nodes); for memory accounting. */
  get nodeCount(): number {
    return this.nodes.length / (this.words + 4)
  }

  /** Bytes held by the node array and the jump table. */
  get byteLength(): number {
    return this.nodes.byteLength + (this.jump?.byteLength ?? 0)
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
    const nodes = this.nodes
    const q = this.query
    loadWords(address, q, words)
    const want = prefixLen < this.bits ? prefixLen : this.bits
    let verified = 0
    let n = this.root
    const jump = this.jump
    const jumpBits = this.jumpBits
    if (jump !== undefined && want >= jumpBits) {
      const at = 3 * ((q[0] as number) >>> (32 - jumpBits))
      n = jump[at] as number
      const value = jump[at + 1] as number
      if (value !== NONE) {
        out.value = value
        out.matchedLen = jump[at + 2] as number
      }
    }
    while (n !== NONE) {
      const meta = nodes[n + words + META] as number
      const len = meta & 0xff
      const limit = len < want ? len : want
      // Compare bits [verified, limit): the ancestors already matched the rest.
      const fullWords = limit >>> 5
      for (let w = verified >>> 5; w < fullWords; w++) if (nodes[n + w] !== q[w]) return
      const rest = limit & 31
      if (rest !== 0 && (((nodes[n + fullWords] as number) ^ (q[fullWords] as number)) >>> (32 - rest)) !== 0) return
      if (len > want) {
        // The whole subtree lies strictly inside the query prefix.
        out.deepestBelowLen = ((meta >> 8) & 0xff) - 1
        return
      }
      const value = nodes[n + words + VALUE] as number
      if (value !== NONE) {
        out.value = value
        out.matchedLen = len
      }
      if (len === want) {
        const c0 = nodes[n + words + CHILD] as number
        const c1 = nodes[n + words + CHILD + 1] as number
        let below = c0 === NONE ? NONE : (((nodes[c0 + words + META] as number) >> 8) & 0xff) - 1
        if (c1 !== NONE) {
          const b1 = (((nodes[c1 + words + META] as number) >> 8) & 0xff) - 1
          if (b1 > below) below = b1
        }
        out.deepestBelowLen = below
        return
      }
      verified = len
      n = nodes[n + words + CHILD + (((q[len >>> 5] as number) >>> (31 - (len & 31))) & 1)] as number
    }
  }
}

/** A trie with no entries. */
export function emptyPrefixTrie(bits: TrieBits): PrefixTrie {
  return new PrefixTrieBuilder(bits, 0).freeze()
}

/** Reads `words` big-endian 32-bit words from `address` (missing bytes read as zero). */
function loadWords(address: Uint8Array, out: Int32Array, words: number): void {
  for (let w = 0; w < words; w++) {
    const b = w * 4
    out[w] = ((address[b] ?? 0) << 24) | ((address[b + 1] ?? 0) << 16) | ((address[b + 2] ?? 0) << 8) | (address[b + 3] ?? 0)
  }
}

/** Clears every bit from position `len` on in the key of `words` words at `off`. */
function maskWords(key: Int32Array, off: number, words: number, len: number): void {
  for (let w = 0; w < words; w++) {
    const start = w * 32
    if (len <= start) key[off + w] = 0
    else if (len < start + 32) key[off + w] = (key[off + w] as number) & (~0 << (32 - (len - start)))
  }
}

/** Bit `bit` (0 = most significant) of the key stored at `off`. */
function wordBit(keys: Int32Array, off: number, bit: number): number {
  return ((keys[off + (bit >>> 5)] as number) >>> (31 - (bit & 31))) & 1
}
