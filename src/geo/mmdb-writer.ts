/**
 * A MaxMind DB (format 2.0) writer: networks with records in, file bytes out.
 * Spec: https://maxmind.github.io/MaxMind-DB/. Pure and synchronous (a
 * control-plane and tooling helper: it builds the example and test databases);
 * it never touches the file system and is never used on the query path.
 *
 * Layout choices, all readable by libmaxminddb and the `maxmind` package:
 * - Always an IPv6 tree (ip_version 6). IPv4 networks sit at ::/96
 *   (::a.b.c.d), where readers look for IPv4 addresses. As MaxMind's own
 *   databases do, ::ffff:0:0/96 (IPv4-mapped) and 2002::/16 (6to4) are aliases:
 *   their records point at the ::/96 node, so ::ffff:198.51.100.7 and
 *   2002:c633:6407:: find the IPv4 record. Networks inside an alias are refused.
 * - Overlapping networks: the more specific network wins for the addresses it
 *   covers; the wider one keeps the rest (what an operator means by listing
 *   10.0.0.0/8 and then 10.1.0.0/16). The same network twice is an error.
 * - Data section: identical records are stored once (compared by encoded
 *   bytes); no pointers otherwise. Records are written in address order and
 *   map keys sorted, so the bytes depend only on the content, not on the
 *   order of the input or of object keys.
 * - Record size: the smallest of 24, 28 and 32 bits that holds every pointer
 *   (or meta.minRecordSizeBits, so tests can exercise every node layout).
 */
import { GEO_ERROR, geoError } from './geo-error.js'
import { IPV4_ALIAS_NETWORKS, bitAt, ipv4AliasContaining, parseTreeNetwork, treeNetworkKey } from './ip-network.js'
import type { TreeNetwork } from './ip-network.js'

/** Number types a value can be pinned to when the default mapping is not the wanted one. */
export const MMDB_NUMBER_TYPE = {
  double: 'double',
  float: 'float',
  uint16: 'uint16',
  uint32: 'uint32',
  int32: 'int32',
  uint64: 'uint64',
  uint128: 'uint128',
} as const

export type MmdbNumberType = (typeof MMDB_NUMBER_TYPE)[keyof typeof MMDB_NUMBER_TYPE]

/** A number written with an explicit MaxMind DB type (see mmdbTyped). */
export class MmdbTypedNumber {
  constructor(
    readonly type: MmdbNumberType,
    readonly value: number | bigint,
  ) {}
}

/**
 * A value the data section can hold. Default mapping: string → utf8_string;
 * boolean → boolean; Uint8Array → bytes; a non-negative safe integer up to
 * 2^32-1 → uint32; a negative integer down to -2^31 → int32; any other number →
 * double; a non-negative bigint → uint64 (uint128 past 2^64-1); array → array;
 * plain object → map. Wrap a number with mmdbTyped() to choose its type.
 */
export type MmdbValue = string | number | bigint | boolean | Uint8Array | MmdbTypedNumber | readonly MmdbValue[] | MmdbMap
export type MmdbMap = { readonly [key: string]: MmdbValue }

/** Pins a number's type, e.g. mmdbTyped('double', 47) so a whole-number latitude stays a double as in GeoIP2. */
export function mmdbTyped(type: MmdbNumberType, value: number | bigint): MmdbTypedNumber {
  return new MmdbTypedNumber(type, value)
}

/** One network and the record every address in it returns. */
export interface MmdbNetwork {
  /** "198.51.100.0/24" or "2001:db8::/48"; host bits must be zero. */
  readonly network: string
  readonly record: MmdbMap
}

export interface MmdbMetadata {
  /** E.g. "GeoIP2-City", "GeoLite2-ASN": readers pick a record layout from it. */
  readonly databaseType: string
  /** English description (description.en). */
  readonly description: string
  /** Build time, seconds since the Unix epoch. */
  readonly buildEpochSec: number
  /** Locale codes the names maps carry; default ["en"]. */
  readonly languages?: readonly string[]
  /** Use at least this record size (default 24: the smallest that fits). */
  readonly minRecordSizeBits?: 24 | 28 | 32
}

/**
 * Writes a MaxMind DB. Throws STEER_ERR_GEO_BAD_NETWORK for a malformed,
 * repeated or alias-range network (message names it), STEER_ERR_GEO_BAD_RECORD
 * for a value that cannot be encoded (path in the message) or a database too
 * large for 32-bit records.
 */
export function writeMmdb(networks: readonly MmdbNetwork[], meta: MmdbMetadata): Buffer {
  const nets = networks.map((n) => ({ net: parseTreeNetwork(n.network), record: n.record }))
  checkNetworks(nets.map((n) => n.net))
  // Address order fixes the data section's order, so the input order does not change the bytes.
  nets.sort((a, b) => Buffer.compare(a.net.treeBits, b.net.treeBits) || a.net.treePrefixLen - b.net.treePrefixLen)
  const data = new DataSection()
  const leaves = nets.map((n) => ({ net: n.net, leaf: { dataOffset: data.add(n.record, n.net.text) } }))
  // Wider networks first (stable): a later, more specific one splits the wider leaf and keeps the rest of it.
  leaves.sort((a, b) => a.net.treePrefixLen - b.net.treePrefixLen)
  let top: Slot = undefined
  for (const { net, leaf } of leaves) top = place(top, net.treeBits, 0, net.treePrefixLen, leaf)
  const ipv4Root = slotAt(top, new Uint8Array(16), 96)
  for (const alias of IPV4_ALIAS_NETWORKS) top = place(top, alias.treeBits, 0, alias.treePrefixLen, ipv4Root)
  const root: TreeNode = isNode(top) ? top : { left: top, right: top }
  return assemble(root, data, meta)
}

/** A record in the tree under construction: a subtree, a data record, or nothing (undefined). */
type Slot = TreeNode | DataLeaf | undefined
interface TreeNode {
  left: Slot
  right: Slot
}
interface DataLeaf {
  readonly dataOffset: number
}

const isNode = (slot: Slot): slot is TreeNode => slot !== undefined && 'left' in slot

function checkNetworks(nets: readonly TreeNetwork[]): void {
  const seen = new Map<string, string>()
  for (const net of nets) {
    const alias = ipv4AliasContaining(net)
    if (alias) throw geoError(GEO_ERROR.BAD_NETWORK, `network "${net.text}" lies in ${alias.text}, which is an alias of the IPv4 space`)
    const key = treeNetworkKey(net)
    const previous = seen.get(key)
    if (previous !== undefined) throw geoError(GEO_ERROR.BAD_NETWORK, `network "${net.text}" repeats "${previous}"`)
    seen.set(key, net.text)
  }
}

/**
 * Returns `slot` with `value` placed at depth `len` along `bits`. A data leaf
 * met on the way is split into a node whose two records both keep it, so the
 * wider network still answers for the addresses the new one does not cover.
 */
function place(slot: Slot, bits: Uint8Array, depth: number, len: number, value: Slot): Slot {
  if (depth === len) return value
  const node: TreeNode = isNode(slot) ? slot : { left: slot, right: slot }
  if (bitAt(bits, depth) === 1) node.right = place(node.right, bits, depth + 1, len, value)
  else node.left = place(node.left, bits, depth + 1, len, value)
  return node
}

/** What the tree holds at depth `len` along `bits` (a wider data leaf covers everything below it). */
function slotAt(slot: Slot, bits: Uint8Array, len: number): Slot {
  let current = slot
  for (let depth = 0; depth < len && isNode(current); depth++) current = bitAt(bits, depth) === 1 ? current.right : current.left
  return current
}

const RECORD_SIZES_BITS = [24, 28, 32] as const
const DATA_SECTION_SEPARATOR_BYTES = 16
const METADATA_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com', 'ascii')])

function assemble(root: TreeNode, data: DataSection, meta: MmdbMetadata): Buffer {
  // Breadth-first numbering; a node reached twice (the aliased IPv4 root) keeps its first number.
  const nodes: TreeNode[] = [root]
  const nodeNumber = new Map<TreeNode, number>([[root, 0]])
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as TreeNode
    for (const child of [node.left, node.right]) {
      if (isNode(child) && !nodeNumber.has(child)) {
        nodeNumber.set(child, nodes.length)
        nodes.push(child)
      }
    }
  }
  const nodeCount = nodes.length
  const dataBytes = data.bytes()
  const largestRecord = nodeCount + DATA_SECTION_SEPARATOR_BYTES + dataBytes.length
  const recordSizeBits = RECORD_SIZES_BITS.find((bits) => bits >= (meta.minRecordSizeBits ?? 24) && largestRecord < 2 ** bits)
  if (recordSizeBits === undefined) throw geoError(GEO_ERROR.BAD_RECORD, 'database too large for 32-bit records')
  const nodeBytes = recordSizeBits / 4
  const tree = Buffer.alloc(nodeCount * nodeBytes)
  const recordValue = (slot: Slot): number => {
    if (slot === undefined) return nodeCount
    if (isNode(slot)) return nodeNumber.get(slot) as number
    return nodeCount + DATA_SECTION_SEPARATOR_BYTES + slot.dataOffset
  }
  nodes.forEach((node, i) => writeNode(tree, i * nodeBytes, recordSizeBits, recordValue(node.left), recordValue(node.right)))
  const metadata = new ByteWriter()
  encodeValue(
    metadata,
    {
      binary_format_major_version: mmdbTyped('uint16', 2),
      binary_format_minor_version: mmdbTyped('uint16', 0),
      build_epoch: mmdbTyped('uint64', BigInt(Math.floor(meta.buildEpochSec))),
      database_type: meta.databaseType,
      description: { en: meta.description },
      ip_version: mmdbTyped('uint16', 6),
      languages: meta.languages ?? ['en'],
      node_count: mmdbTyped('uint32', nodeCount),
      record_size: mmdbTyped('uint16', recordSizeBits),
    },
    'metadata',
  )
  return Buffer.concat([tree, Buffer.alloc(DATA_SECTION_SEPARATOR_BYTES), dataBytes, METADATA_MARKER, metadata.bytes()])
}

/** Spec, "Node Layout": big-endian records; at 28 bits the middle byte holds the high nibbles (left's first). */
function writeNode(tree: Buffer, offset: number, recordSizeBits: number, left: number, right: number): void {
  if (recordSizeBits === 24) {
    tree.writeUIntBE(left, offset, 3)
    tree.writeUIntBE(right, offset + 3, 3)
  } else if (recordSizeBits === 28) {
    tree.writeUIntBE(left & 0xffffff, offset, 3)
    tree[offset + 3] = ((left >>> 24) << 4) | (right >>> 24)
    tree.writeUIntBE(right & 0xffffff, offset + 4, 3)
  } else {
    tree.writeUInt32BE(left, offset)
    tree.writeUInt32BE(right, offset + 4)
  }
}

/** The data section: each distinct record encoded once, in first-seen order. */
class DataSection {
  private readonly out = new ByteWriter()
  private readonly offsets = new Map<string, number>()

  /** Offset of `record` in the section (an identical earlier record's offset when there is one). */
  add(record: MmdbMap, network: string): number {
    const scratch = new ByteWriter()
    encodeValue(scratch, record, network)
    const encoded = scratch.bytes()
    const key = encoded.toString('latin1')
    const known = this.offsets.get(key)
    if (known !== undefined) return known
    const offset = this.out.length
    this.out.append(encoded)
    this.offsets.set(key, offset)
    return offset
  }

  bytes(): Buffer {
    return this.out.bytes()
  }
}

class ByteWriter {
  private buf = Buffer.alloc(256)
  length = 0

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n))
      this.buf.copy(bigger, 0, 0, this.length)
      this.buf = bigger
    }
    const at = this.length
    this.length += n
    return at
  }

  // Each method reserves before touching this.buf: reserve() may replace it.
  byte(value: number): void {
    const at = this.reserve(1)
    this.buf[at] = value
  }

  append(bytes: Uint8Array): void {
    const at = this.reserve(bytes.length)
    this.buf.set(bytes, at)
  }

  double(value: number): void {
    const at = this.reserve(8)
    this.buf.writeDoubleBE(value, at)
  }

  float(value: number): void {
    const at = this.reserve(4)
    this.buf.writeFloatBE(value, at)
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length))
  }
}

/** Data section type numbers (spec, "Output Data Section"). */
const TYPE = {
  utf8: 2,
  double: 3,
  bytes: 4,
  uint16: 5,
  uint32: 6,
  map: 7,
  int32: 8,
  uint64: 9,
  uint128: 10,
  array: 11,
  boolean: 14,
  float: 15,
} as const

/** Control byte(s): type (extended types > 7 in a second byte) and payload size (29/30/31 escapes). */
function writeControl(out: ByteWriter, type: number, size: number, path: string): void {
  let sizeBits: number
  let extra: number[]
  if (size < 29) [sizeBits, extra] = [size, []]
  else if (size < 285) [sizeBits, extra] = [29, [size - 29]]
  else if (size < 65821) [sizeBits, extra] = [30, [(size - 285) >> 8, (size - 285) & 0xff]]
  else if (size < 65821 + 2 ** 24) [sizeBits, extra] = [31, [(size - 65821) >> 16, ((size - 65821) >> 8) & 0xff, (size - 65821) & 0xff]]
  else throw geoError(GEO_ERROR.BAD_RECORD, `${path}: value too large (${size} bytes or entries)`)
  if (type <= 7) {
    out.byte((type << 5) | sizeBits)
  } else {
    out.byte(sizeBits)
    out.byte(type - 7)
  }
  for (const b of extra) out.byte(b)
}

function encodeValue(out: ByteWriter, value: MmdbValue, path: string): void {
  if (typeof value === 'string') {
    const utf8 = Buffer.from(value, 'utf8')
    writeControl(out, TYPE.utf8, utf8.length, path)
    out.append(utf8)
  } else if (typeof value === 'boolean') {
    writeControl(out, TYPE.boolean, value ? 1 : 0, path)
  } else if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff) encodeNumber(out, 'uint32', value, path)
    else if (Number.isInteger(value) && value < 0 && value >= -(2 ** 31)) encodeNumber(out, 'int32', value, path)
    else encodeNumber(out, 'double', value, path)
  } else if (typeof value === 'bigint') {
    encodeNumber(out, value < 2n ** 64n ? 'uint64' : 'uint128', value, path)
  } else if (value instanceof MmdbTypedNumber) {
    encodeNumber(out, value.type, value.value, path)
  } else if (value instanceof Uint8Array) {
    writeControl(out, TYPE.bytes, value.length, path)
    out.append(value)
  } else if (Array.isArray(value)) {
    const items = value as readonly MmdbValue[]
    writeControl(out, TYPE.array, items.length, path)
    items.forEach((item, i) => encodeValue(out, item, `${path}[${i}]`))
  } else if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value).sort()
    writeControl(out, TYPE.map, keys.length, path)
    for (const key of keys) {
      encodeValue(out, key, path)
      encodeValue(out, (value as MmdbMap)[key] as MmdbValue, `${path}.${key}`)
    }
  } else {
    throw geoError(GEO_ERROR.BAD_RECORD, `${path}: ${value === null ? 'null' : typeof value} cannot be stored in a MaxMind DB`)
  }
}

const UINT_LIMIT_BITS = { uint16: 16n, uint32: 32n, uint64: 64n, uint128: 128n } as const

function encodeNumber(out: ByteWriter, type: MmdbNumberType, value: number | bigint, path: string): void {
  if (type === 'double' || type === 'float') {
    writeControl(out, TYPE[type], type === 'double' ? 8 : 4, path)
    if (type === 'double') out.double(Number(value))
    else out.float(Number(value))
    return
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw geoError(GEO_ERROR.BAD_RECORD, `${path}: ${value} is not an integer for ${type}`)
  }
  let big = BigInt(value)
  if (type === 'int32') {
    if (big < -(2n ** 31n) || big >= 2n ** 31n) throw geoError(GEO_ERROR.BAD_RECORD, `${path}: ${value} is outside int32`)
    // Negative values need all four bytes (two's complement); readers treat shorter payloads as positive.
    if (big < 0n) big += 2n ** 32n
  } else if (big < 0n || big >= 2n ** UINT_LIMIT_BITS[type]) {
    throw geoError(GEO_ERROR.BAD_RECORD, `${path}: ${value} is outside ${type}`)
  }
  const payload: number[] = []
  for (let rest = big; rest > 0n; rest >>= 8n) payload.unshift(Number(rest & 0xffn))
  if (type === 'int32' && value < 0) while (payload.length < 4) payload.unshift(0)
  writeControl(out, TYPE[type], payload.length, path)
  for (const b of payload) out.byte(b)
}
