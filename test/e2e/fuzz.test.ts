/**
 * "No packet, however malformed, truncated or hostile, crashes or stalls the
 * server: it gets FORMERR or is dropped and counted." Seeded fuzzing of the
 * real server over real sockets: valid queries mutated (bit flips, truncation
 * at every length, insertions, count fields, compression pointers, label
 * lengths, OPT garbage, header flags) and fully random bytes, a few thousand
 * over UDP and a few hundred over TCP (framed, with wrong lengths and
 * zero-length frames, several per connection), plus odd names (dots, NULs
 * and backslashes inside labels, look-alike suffixes). Every response must be
 * a well-formed answer to its own query, read by two independent parsers
 * (dns-packet and a strict walker here): same ID and opcode, QR=1, an
 * expected rcode, the question echoed byte for byte, every name decompressing
 * backwards, nothing trailing, within the client's UDP size, and, for
 * authoritative IN answers, only names in the zone (label-wise). Every
 * message is answered or counted as dropped; no handler exception; the server
 * answers normally afterwards. A first subtest checks the judge itself
 * rejects bad responses.
 *
 * The seed is printed; STEERDNS_FUZZ_SEED=<n> replays a run exactly. Each UDP
 * packet is followed by a probe query and the next packet waits for the
 * probe's answer: that paces the run (loopback never overflows), tells for
 * each packet whether it was answered (loopback keeps the order of one
 * socket's datagrams), and lets the counters be checked per packet.
 */
import dnsPacket from 'dns-packet'
import type { OptAnswer } from 'dns-packet'
import t from 'tap'
import type { Test } from 'tap'
import type { RunningServer } from '../../src/main.js'
import { encodeQuery, queryTcp, queryUdp } from '../helpers/dns-client.js'
import { DnsTcpConnection, DnsUdpSocket } from '../helpers/dns-stream.js'
import { createSeededRandom } from '../helpers/seeded-random.js'
import type { SeededRandom } from '../helpers/seeded-random.js'
import { startTestServer } from '../helpers/test-server.js'

const DEFAULT_SEED = 0x5eed_d0c5
const seedText = process.env['STEERDNS_FUZZ_SEED']
const SEED = seedText !== undefined && seedText !== '' ? Number(seedText) >>> 0 : DEFAULT_SEED

const UDP_RANDOM_CASES = 2500
const TCP_CONNECTIONS = 60
const REPLY_MS = 5_000
/** Our configured cap on UDP responses (config default, DNS flag day 2020). */
const MAX_UDP_RESPONSE_BYTES = 1232
/** Problems printed in full; the rest are only counted. */
const SHOWN_PROBLEMS = 15

const RCODE_NAMES = new Map([
  [0, 'NOERROR'],
  [1, 'FORMERR'],
  [3, 'NXDOMAIN'],
  [4, 'NOTIMP'],
  [5, 'REFUSED'],
  [16, 'BADVERS'],
])

// ---------- building messages ----------

/** Wire bytes plus where each name starts (for pointer and label mutations). */
interface Seed {
  readonly label: string
  readonly bytes: Buffer
  readonly nameOffsets: readonly number[]
}

type Piece = Buffer | { readonly name: Buffer }

/** Concatenates pieces, recording the offset of every `{ name }` piece. */
function assemble(label: string, pieces: readonly Piece[]): Seed {
  const parts: Buffer[] = []
  const nameOffsets: number[] = []
  let offset = 0
  for (const piece of pieces) {
    const bytes = Buffer.isBuffer(piece) ? piece : piece.name
    if (!Buffer.isBuffer(piece)) nameOffsets.push(offset)
    parts.push(bytes)
    offset += bytes.length
  }
  return { label, bytes: Buffer.concat(parts), nameOffsets }
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  const b = Buffer.alloc(12)
  ;[id, flags, qd, an, ns, ar].forEach((v, i) => b.writeUInt16BE(v & 0xffff, i * 2))
  return b
}

/** Uncompressed wire name from dotted text ("" is the root). */
function wireName(text: string): Buffer {
  const labels = text.split('.').filter((l) => l.length > 0)
  return Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, 'latin1')]), Buffer.from([0])])
}

function u16(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2)
  values.forEach((v, i) => b.writeUInt16BE(v & 0xffff, i * 2))
  return b
}

/** TYPE, CLASS, TTL, RDLENGTH and RDATA after an owner name. */
function rrBody(type: number, klass: number, ttl: number, rdata: Buffer, rdLength = rdata.length): Buffer {
  const fixed = Buffer.alloc(10)
  fixed.writeUInt16BE(type, 0)
  fixed.writeUInt16BE(klass, 2)
  fixed.writeUInt32BE(ttl >>> 0, 4)
  fixed.writeUInt16BE(rdLength & 0xffff, 8)
  return Buffer.concat([fixed, rdata])
}

function option(code: number, data: Buffer, length = data.length): Buffer {
  return Buffer.concat([u16(code, length), data])
}

/** OPT body (after the root owner): CLASS = payload size, TTL = ext rcode | version | flags. */
function optBody(opts: { udp?: number; version?: number; dnssecOk?: boolean; rdata?: Buffer; rdLength?: number }): Buffer {
  const ttl = ((opts.version ?? 0) << 16) | (opts.dnssecOk === true ? 0x8000 : 0)
  const rdata = opts.rdata ?? Buffer.alloc(0)
  return rrBody(41, opts.udp ?? 1232, ttl, rdata, opts.rdLength ?? rdata.length)
}

/** A one-question IN A query whose qname has exactly these labels (dots inside a label kept). */
function encodeQueryBytes(labels: readonly string[]): Buffer {
  const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, 'latin1')]), Buffer.from([0])])
  return Buffer.concat([header(0x0bad, 0, 1, 0, 0, 0), name, u16(1, 1)])
}

const ROOT = Buffer.from([0])
const A = 1
const NS = 2
const TXT = 16
const AAAA = 28

/** Valid queries the mutations start from: every part of the decoder reachable. */
const SEEDS: readonly Seed[] = [
  assemble('plain', [header(0x1001, 0, 1, 0, 0, 0), { name: wireName('www.edge.example.net') }, u16(A, 1)]),
  assemble('edns', [header(0x1002, 0x0100, 1, 0, 0, 1), { name: wireName('api.edge.example.net') }, u16(AAAA, 1), { name: ROOT }, optBody({ dnssecOk: true })]),
  assemble('edns-options', [
    header(0x1003, 0, 1, 0, 0, 1),
    { name: wireName('Www.Edge.Example.Net') },
    u16(A, 1),
    { name: ROOT },
    optBody({
      rdata: Buffer.concat([
        option(3, Buffer.alloc(0)),
        option(8, Buffer.from([0, 1, 24, 0, 192, 0, 2])),
        option(10, Buffer.from('0123456789abcdef', 'hex')),
      ]),
    }),
  ]),
  assemble('ecs-v6', [
    header(0x1004, 0, 1, 0, 0, 1),
    { name: wireName('images.edge.example.net') },
    u16(A, 1),
    { name: ROOT },
    optBody({ udp: 4096, rdata: option(8, Buffer.from([0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0x23])) }),
  ]),
  // Records in every section, owners compressed against the question.
  assemble('with-records', [
    header(0x1005, 0, 1, 1, 1, 2),
    { name: wireName('www.edge.example.net') },
    u16(A, 1),
    { name: Buffer.from([0xc0, 12]) },
    rrBody(A, 1, 300, Buffer.from([192, 0, 2, 1])),
    { name: Buffer.from([0xc0, 16]) },
    rrBody(NS, 1, 300, Buffer.from([3, 0x6e, 0x73, 0x31, 0xc0, 16])),
    { name: Buffer.from([1, 0x78, 0xc0, 16]) },
    rrBody(AAAA, 1, 300, Buffer.alloc(16, 1)),
    { name: ROOT },
    optBody({ rdata: option(10, Buffer.alloc(8, 7)) }),
  ]),
  assemble('big-txt', [header(0x1006, 0, 1, 0, 0, 1), { name: wireName('big.edge.example.net') }, u16(TXT, 1), { name: ROOT }, optBody({ udp: 4096 })]),
  assemble('chaos', [header(0x1007, 0, 1, 0, 0, 0), { name: wireName('version.bind') }, u16(TXT, 3)]),
  assemble('nxdomain', [header(0x1008, 0, 1, 0, 0, 1), { name: wireName('no-such-name.edge.example.net') }, u16(A, 1), { name: ROOT }, optBody({})]),
]

// ---------- mutations ----------

type Mutator = (rand: SeededRandom, seed: Seed) => Buffer

const INTERESTING_BYTES = [0x00, 0x01, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xff]
const INTERESTING_COUNTS = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff]

function setU16(bytes: Buffer, offset: number, value: number): void {
  if (offset + 2 <= bytes.length) bytes.writeUInt16BE(value & 0xffff, offset)
}

/** A compression pointer's target, relative to where the pointer sits. */
function pointerTarget(rand: SeededRandom, at: number, seed: Seed): number {
  switch (rand.int(8)) {
    case 0:
      return at // itself
    case 1:
      return at + rand.between(1, 32) // forward
    case 2:
      return rand.int(12) // into the header
    case 3:
      return 12 // the question name
    case 4:
      return rand.pick(seed.nameOffsets) // another name (or itself)
    case 5:
      return Math.max(0, at - rand.between(1, 4)) // just before: mid-label
    case 6:
      return 0x3fff // far past the end
    default:
      return rand.int(seed.bytes.length + 8)
  }
}

function writePointer(bytes: Buffer, at: number, target: number): void {
  if (at + 2 <= bytes.length) bytes.writeUInt16BE(0xc000 | (target & 0x3fff), at)
}

/** Random EDNS options: known codes with random data, lengths mostly right, sometimes not. */
function garbageOptions(rand: SeededRandom): Buffer {
  const parts: Buffer[] = []
  for (let n = rand.int(5); n > 0; n--) {
    const code = rand.pick([3, 8, 8, 10, 10, 12, 15, rand.int(0x10000)])
    let data: Buffer
    if (code === 8 && rand.chance(0.6)) {
      // ECS with plausible-looking fields: family, source, scope, address.
      const family = rand.pick([0, 1, 2, 3, rand.int(0x10000)])
      const source = rand.pick([0, 1, 7, 8, 24, 25, 32, 33, 56, 128, 129, 255])
      const scope = rand.chance(0.7) ? 0 : rand.int(256)
      data = Buffer.concat([u16(family), Buffer.from([source, scope]), rand.bytes(rand.int(20))])
    } else if (code === 10) {
      data = rand.bytes(rand.pick([0, 7, 8, 9, 15, 16, 24, 40, 41, rand.int(64)]))
    } else {
      data = rand.bytes(rand.int(24))
    }
    const length = rand.chance(0.75) ? data.length : rand.pick([data.length + 1, Math.max(0, data.length - 1), rand.int(0x10000), 0xffff])
    parts.push(option(code, data, length))
  }
  if (rand.chance(0.15)) parts.push(rand.bytes(rand.between(1, 3))) // a stub of an option header
  return Buffer.concat(parts)
}

const ODD_LABELS = ['www', 'WwW', 'api', 'big', 'mail', 'images', 'static', 'lab', 'ns', 'ns.lab', 'customers', 'Customers', 'acme', '*', '_https', '_tcp', 'x.edge', 'a\\b', '\\', '.', '..', ' ', '"', '\x00', '\xff', 'Edge\x00', 'www.edge.example.net']
const ODD_SUFFIXES: readonly (readonly string[])[] = [
  ['edge', 'example', 'net'],
  ['edge', 'example', 'net'],
  ['edge', 'example', 'net'],
  ['EDGE', 'Example', 'NET'],
  ['EDGE', 'Example', 'NET'],
  ['x.edge', 'example', 'net'],
  ['edge.example', 'net'],
  ['edge', 'example.net'],
  ['example', 'net'],
  ['net'],
  [],
  ['edge', 'example', 'net', 'edge', 'example', 'net'],
  ['bind'],
]

const MUTATORS: Record<string, Mutator> = {
  'bit-flip': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    for (let n = rand.between(1, 4); n > 0; n--) {
      const at = rand.int(b.length)
      b[at] = (b[at] as number) ^ (1 << rand.int(8))
    }
    return b
  },
  'byte-set': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    for (let n = rand.between(1, 4); n > 0; n--) b[rand.int(b.length)] = rand.chance(0.5) ? rand.pick(INTERESTING_BYTES) : rand.int(256)
    return b
  },
  insert: (rand, seed) => {
    const at = rand.int(seed.bytes.length + 1)
    return Buffer.concat([seed.bytes.subarray(0, at), rand.bytes(rand.between(1, 16)), seed.bytes.subarray(at)])
  },
  delete: (rand, seed) => {
    const at = rand.int(seed.bytes.length)
    return Buffer.concat([seed.bytes.subarray(0, at), seed.bytes.subarray(at + rand.between(1, 8))])
  },
  'trailing-data': (rand, seed) => Buffer.concat([seed.bytes, rand.chance(0.5) ? seed.bytes.subarray(rand.int(seed.bytes.length)) : rand.bytes(rand.between(1, 40))]),
  'big-counts': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    const fields = rand.chance(0.3) ? [4, 6, 8, 10] : [rand.pick([4, 6, 8, 10])]
    for (const f of fields) setU16(b, f, rand.pick([0x7fff, 0x8000, 0xfffe, 0xffff, rand.between(0x100, 0xffff)]))
    return b
  },
  'random-counts': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    for (const f of [4, 6, 8, 10]) setU16(b, f, rand.chance(0.7) ? rand.int(4) : rand.pick(INTERESTING_COUNTS))
    return b
  },
  pointer: (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    const at = rand.pick(seed.nameOffsets)
    writePointer(b, at, pointerTarget(rand, at, seed))
    return b
  },
  'pointer-loop': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    const at = rand.pick(seed.nameOffsets)
    const other = rand.pick(seed.nameOffsets)
    // Two names pointing at each other (or one at itself when they coincide).
    writePointer(b, at, other)
    if (other !== at) writePointer(b, other, at)
    return b
  },
  'label-length': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    // The first length byte of a name, or one inside it.
    const at = rand.pick(seed.nameOffsets) + (rand.chance(0.5) ? 0 : rand.int(8))
    if (at < b.length) b[at] = rand.chance(0.7) ? rand.pick(INTERESTING_BYTES) : rand.int(256)
    return b
  },
  'long-name': (rand) => {
    const shape = rand.int(5)
    let name: Buffer
    if (shape === 0) name = Buffer.concat([...Array.from({ length: 4 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), ROOT]) // 257 octets
    else if (shape === 1) name = Buffer.concat([...Array.from({ length: 127 }, () => Buffer.from([1, 0x61])), ROOT]) // exactly 255
    else if (shape === 2) name = Buffer.concat([...Array.from({ length: 128 }, () => Buffer.from([1, 0x61])), ROOT]) // 257
    else if (shape === 3) name = Buffer.concat([Buffer.from([rand.between(64, 255)]), rand.bytes(rand.int(300)), ROOT])
    else name = Buffer.concat([...Array.from({ length: rand.between(1, 8) }, () => Buffer.concat([Buffer.from([63]), rand.bytes(63)])), ROOT])
    const withOpt = rand.chance(0.5)
    return Buffer.concat([header(rand.int(0x10000), 0, 1, 0, 0, withOpt ? 1 : 0), name, u16(rand.pick([A, AAAA, TXT, 255]), 1), withOpt ? Buffer.concat([ROOT, optBody({})]) : Buffer.alloc(0)])
  },
  'opt-garbage': (rand) => {
    const rdata = garbageOptions(rand)
    const rdLength = rand.chance(0.8) ? rdata.length : rand.pick([rdata.length + 1, Math.max(0, rdata.length - 1), rand.int(0x10000)])
    const opt = optBody({
      udp: rand.pick([0, 1, 511, 512, 513, 600, 700, 1000, 1232, 1233, 4096, 65535, rand.int(0x10000)]),
      version: rand.chance(0.8) ? 0 : rand.int(256),
      dnssecOk: rand.chance(0.5),
      rdata,
      rdLength,
    })
    // The large TXT set too: truncation to the advertised size.
    const [qname, qtype] = rand.pick([['www.edge.example.net', A], ['big.edge.example.net', TXT], ['big.edge.example.net', 255]] as const)
    return Buffer.concat([header(rand.int(0x10000), 0, 1, 0, 0, 1), wireName(qname), u16(qtype, 1), ROOT, opt])
  },
  'opt-placement': (rand) => {
    const question = Buffer.concat([wireName('www.edge.example.net'), u16(A, 1)])
    const opt = Buffer.concat([ROOT, optBody({ version: rand.chance(0.8) ? 0 : 1 })])
    switch (rand.int(4)) {
      case 0: // two OPT records
        return Buffer.concat([header(rand.int(0x10000), 0, 1, 0, 0, 2), question, opt, opt])
      case 1: // OPT in the answer section
        return Buffer.concat([header(rand.int(0x10000), 0, 1, 1, 0, 0), question, opt])
      case 2: // OPT in the authority section, another in the additional
        return Buffer.concat([header(rand.int(0x10000), 0, 1, 0, 1, 1), question, opt, opt])
      default: // owner not the root
        return Buffer.concat([header(rand.int(0x10000), 0, 1, 0, 0, 1), question, Buffer.from([0xc0, 12]), optBody({})])
    }
  },
  'odd-names': (rand) => {
    // Names that test the lookup and the compression of answers: dots,
    // backslashes and NULs inside labels, mixed case, labels that look like
    // a suffix of the zone but are not (one label "x.edge"), out-of-zone names.
    const labels: string[] = []
    for (let n = rand.int(4); n > 0; n--) labels.push(rand.pick(ODD_LABELS))
    labels.push(...rand.pick(ODD_SUFFIXES))
    const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([Buffer.byteLength(l, 'latin1')]), Buffer.from(l, 'latin1')]), ROOT])
    const qtype = rand.pick([A, AAAA, TXT, NS, 6, 15, 5, 33, 257, 255, 43, 46, 0, 0xffff, rand.int(0x10000)])
    const qclass = rand.chance(0.85) ? 1 : rand.pick([3, 254, 255, rand.int(0x10000)])
    const withOpt = rand.chance(0.5)
    return Buffer.concat([header(rand.int(0x10000), 0, 1, 0, 0, withOpt ? 1 : 0), name, u16(qtype, qclass), withOpt ? Buffer.concat([ROOT, optBody({})]) : Buffer.alloc(0)])
  },
  'header-flags': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    // QR mostly clear so the rest of the message is judged; any opcode, any bits.
    let flags = rand.int(0x10000)
    if (rand.chance(0.8)) flags &= 0x7fff
    setU16(b, 2, flags)
    return b
  },
  'qr-set': (rand, seed) => {
    const b = Buffer.from(seed.bytes)
    b[2] = (b[2] as number) | 0x80
    if (rand.chance(0.5)) b[3] = rand.int(256)
    return b
  },
  'random-bytes': (rand) => {
    const b = rand.bytes(rand.int(601))
    // Mostly QR=0, opcode QUERY: otherwise nearly everything is dropped at the header.
    if (b.length > 2 && rand.chance(0.6)) b[2] = (b[2] as number) & 0x07
    if (b.length > 5 && rand.chance(0.5)) b.writeUInt16BE(1, 4)
    return b
  },
}

const MUTATOR_NAMES = Object.keys(MUTATORS)

/** One fuzz case: a single mutation, or two to four stacked. */
function randomCase(rand: SeededRandom): { kind: string; bytes: Buffer } {
  const seed = rand.pick(SEEDS)
  const apply = (name: string, from: Seed): Buffer => (MUTATORS[name] as Mutator)(rand, from)
  if (rand.chance(0.15)) {
    const names: string[] = []
    let current = seed
    for (let n = rand.between(2, 4); n > 0; n--) {
      const name = rand.pick(MUTATOR_NAMES.filter((m) => m !== 'random-bytes'))
      names.push(name)
      // Name offsets may be stale after a resize; they only aim the next mutation.
      current = { label: seed.label, bytes: apply(name, current), nameOffsets: seed.nameOffsets }
      if (current.bytes.length === 0) break
    }
    return { kind: 'stacked', bytes: current.bytes }
  }
  const name = rand.pick(MUTATOR_NAMES)
  return { kind: name, bytes: apply(name, seed) }
}

// ---------- judging responses ----------

interface WalkedRecord {
  readonly section: 'answer' | 'authority' | 'additional'
  readonly owner: readonly Buffer[]
  readonly type: number
  readonly klass: number
}

interface WalkedMessage {
  readonly question: { readonly labels: readonly Buffer[]; readonly qtype: number; readonly qclass: number } | undefined
  readonly records: readonly WalkedRecord[]
}

/** Reads a possibly compressed name; pointers must go strictly backwards. */
function readName(msg: Buffer, offset: number): { labels: Buffer[]; end: number } | string {
  const labels: Buffer[] = []
  let pos = offset
  let end = -1
  let wireBytes = 1
  for (let hops = 0; ; ) {
    if (pos >= msg.length) return 'a name runs past the end'
    const len = msg[pos] as number
    if (len === 0) break
    if ((len & 0xc0) === 0xc0) {
      if (pos + 2 > msg.length) return 'a pointer runs past the end'
      const target = msg.readUInt16BE(pos) & 0x3fff
      if (end < 0) end = pos + 2
      if (target >= pos) return `a pointer at ${pos} to ${target} (forward or itself)`
      if (++hops > 64) return 'a pointer chain over 64 hops'
      pos = target
      continue
    }
    if (len > 63) return `label type 0x${len.toString(16)}`
    if (pos + 1 + len > msg.length) return 'a label runs past the end'
    labels.push(msg.subarray(pos + 1, pos + 1 + len))
    wireBytes += 1 + len
    if (wireBytes > 255) return 'a name over 255 bytes'
    pos += 1 + len
  }
  return { labels, end: end < 0 ? pos + 1 : end }
}

/** Names inside RDATA of the types the zone holds, read to check their compression. */
const RDATA_NAMES: Record<number, { readonly skip: number; readonly names: number; readonly after: number }> = {
  2: { skip: 0, names: 1, after: 0 }, // NS
  5: { skip: 0, names: 1, after: 0 }, // CNAME
  6: { skip: 0, names: 2, after: 20 }, // SOA
  15: { skip: 2, names: 1, after: 0 }, // MX
  33: { skip: 6, names: 1, after: 0 }, // SRV
}

/**
 * Walks a whole response with an independent reader: counts agree with the
 * sections, every name (rdata names included) decompresses, nothing trails.
 */
function walkMessage(msg: Buffer): WalkedMessage | string {
  const counts = [4, 6, 8, 10].map((o) => msg.readUInt16BE(o)) as [number, number, number, number]
  let pos = 12
  let question: WalkedMessage['question']
  for (let i = 0; i < counts[0]; i++) {
    const name = readName(msg, pos)
    if (typeof name === 'string') return `question: ${name}`
    if (name.end + 4 > msg.length) return 'question runs past the end'
    question ??= { labels: name.labels, qtype: msg.readUInt16BE(name.end), qclass: msg.readUInt16BE(name.end + 2) }
    pos = name.end + 4
  }
  const records: WalkedRecord[] = []
  const sections = [...Array<'answer'>(counts[1]).fill('answer'), ...Array<'authority'>(counts[2]).fill('authority'), ...Array<'additional'>(counts[3]).fill('additional')]
  for (const section of sections) {
    const owner = readName(msg, pos)
    if (typeof owner === 'string') return `${section} owner: ${owner}`
    if (owner.end + 10 > msg.length) return `${section} record runs past the end`
    const type = msg.readUInt16BE(owner.end)
    const rdataStart = owner.end + 10
    const rdataEnd = rdataStart + msg.readUInt16BE(owner.end + 8)
    if (rdataEnd > msg.length) return `${section} rdata runs past the end`
    const layout = RDATA_NAMES[type]
    if (layout !== undefined) {
      let p = rdataStart + layout.skip
      for (let n = 0; n < layout.names; n++) {
        const name = readName(msg, p)
        if (typeof name === 'string') return `${section} type ${type} rdata: ${name}`
        p = name.end
      }
      if (p + layout.after !== rdataEnd) return `${section} type ${type} rdata length disagrees with its names`
    }
    records.push({ section, owner: owner.labels, type, klass: msg.readUInt16BE(owner.end + 2) })
    pos = rdataEnd
  }
  if (pos !== msg.length) return `${msg.length - pos} bytes after the last record`
  return { question, records }
}

const ZONE_LABELS = ['edge', 'example', 'net'].map((l) => Buffer.from(l))

/** ASCII-only case folding (RFC 4343): other bytes compare exactly. */
function sameLabel(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number
    const y = b[i] as number
    if ((x >= 0x41 && x <= 0x5a ? x + 32 : x) !== (y >= 0x41 && y <= 0x5a ? y + 32 : y)) return false
  }
  return true
}

function inZone(labels: readonly Buffer[]): boolean {
  if (labels.length < ZONE_LABELS.length) return false
  const tail = labels.slice(labels.length - ZONE_LABELS.length)
  return tail.every((l, i) => sameLabel(l, ZONE_LABELS[i] as Buffer))
}

function sameName(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((l, i) => sameLabel(l, b[i] as Buffer))
}

/**
 * What an authoritative answer from the one zone served must look like, label
 * by label (a label "x.edge" is not the two labels x and edge): only names in
 * the zone are answered from it; records are owned by names in the zone; the
 * answer starts at the question name; NXDOMAIN carries the zone's SOA.
 */
function judgeAnswerSemantics(walked: WalkedMessage, rcode: number, authoritative: boolean): string | undefined {
  const q = walked.question
  if (q === undefined || q.qclass !== 1) return undefined
  const render = (labels: readonly Buffer[]): string => JSON.stringify(labels.map((l) => l.toString('latin1')))
  if ((rcode === 0 || rcode === 3) && authoritative && !inZone(q.labels)) return `authoritative ${RCODE_NAMES.get(rcode)} for ${render(q.labels)}, outside the zone`
  for (const rr of walked.records) {
    if (rr.type === 41) continue
    if (!inZone(rr.owner)) return `${rr.section} record owned by ${render(rr.owner)}, outside the zone`
  }
  const first = walked.records.find((r) => r.section === 'answer')
  if (first !== undefined && !sameName(first.owner, q.labels)) return `answer starts at ${render(first.owner)}, question ${render(q.labels)}`
  if (rcode === 3 && !walked.records.some((r) => r.section === 'authority' && r.type === 6 && sameName(r.owner, ZONE_LABELS))) return 'NXDOMAIN without the zone SOA'
  return undefined
}

/**
 * The largest UDP response allowed for `query` (RFC 6891 section 6.2.5): 512
 * when the response has no OPT (the server found none to honour), else the
 * query's advertised size, at least 512, capped by our configuration. When the
 * query is too broken to read its OPT, only the cap.
 */
function udpLimit(query: Buffer, responseHasOpt: boolean): number {
  if (!responseHasOpt) return 512
  const walked = query.length >= 12 ? walkMessage(query) : 'runt'
  if (typeof walked === 'string') return MAX_UDP_RESPONSE_BYTES
  const opts = walked.records.filter((r) => r.type === 41)
  if (opts.length !== 1) return MAX_UDP_RESPONSE_BYTES
  return Math.max(512, Math.min((opts[0] as WalkedRecord).klass, MAX_UDP_RESPONSE_BYTES))
}

/** Why `response` is not an acceptable answer to `query`, or undefined. */
function judgeResponse(query: Buffer, response: Buffer, transport: 'udp' | 'tcp'): string | undefined {
  if (query.length < 12) return 'a message shorter than a header was answered'
  if (((query[2] as number) & 0x80) !== 0) return 'a message with QR=1 was answered'
  if (response.length < 12) return `a ${response.length}-byte response`
  if (response.readUInt16BE(0) !== query.readUInt16BE(0)) return `response ID ${response.readUInt16BE(0)}, query ID ${query.readUInt16BE(0)}`
  if (((response[2] as number) & 0x80) === 0) return 'response with QR=0'
  if (((response[2] as number) & 0x78) !== ((query[2] as number) & 0x78)) return 'opcode not echoed'
  let packet: dnsPacket.Packet
  try {
    packet = dnsPacket.decode(response)
  } catch (err) {
    return `response does not parse: ${String(err)}`
  }
  const opts = (packet.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT')
  if (opts.length > 1) return `${opts.length} OPT records in the response`
  const rcode = ((opts[0]?.extendedRcode ?? 0) << 4) | ((response[3] as number) & 0x0f)
  if (!RCODE_NAMES.has(rcode)) return `rcode ${rcode}`
  const walked = walkMessage(response)
  if (typeof walked === 'string') return walked
  const semantic = judgeAnswerSemantics(walked, rcode, ((response[2] as number) & 0x04) !== 0)
  if (semantic !== undefined) return semantic
  if (transport === 'tcp' && ((response[2] as number) & 0x02) !== 0) return 'TC=1 over TCP'
  if (transport === 'udp') {
    const limit = udpLimit(query, opts.length > 0)
    if (response.length > limit) return `a ${response.length}-byte UDP response (limit ${limit})`
  }
  const qdCount = response.readUInt16BE(4)
  if (qdCount > 1) return `QDCOUNT ${qdCount} in the response`
  if (qdCount === 1) {
    // The question is echoed byte for byte, uncompressed (the decoder refuses pointers there).
    let end = 12
    while (end < response.length && response[end] !== 0) {
      if (((response[end] as number) & 0xc0) !== 0) return 'compressed or extended label in the echoed question'
      end += 1 + (response[end] as number)
    }
    end += 5
    if (end > response.length || !response.subarray(12, end).equals(query.subarray(12, end))) return 'question not echoed byte for byte'
  }
  return undefined
}

function rcodeOf(response: Buffer): number {
  const packet = dnsPacket.decode(response)
  const opt = (packet.additionals ?? []).find((a): a is OptAnswer => a.type === 'OPT')
  return ((opt?.extendedRcode ?? 0) << 4) | ((response[3] as number) & 0x0f)
}

interface CounterSnapshot {
  readonly udp: number
  readonly tcp: number
  readonly responses: number
  readonly dropped: number
  readonly internalErrors: number
}

function sum(map: Map<unknown, number>): number {
  let total = 0
  for (const n of map.values()) total += n
  return total
}

function snapshot(server: RunningServer): CounterSnapshot {
  const c = server.counters
  return { udp: c.received.udp, tcp: c.received.tcp, responses: sum(c.responsesByRcode), dropped: sum(c.droppedByReason), internalErrors: c.internalErrors }
}

function delta(before: CounterSnapshot, after: CounterSnapshot): CounterSnapshot {
  return {
    udp: after.udp - before.udp,
    tcp: after.tcp - before.tcp,
    responses: after.responses - before.responses,
    dropped: after.dropped - before.dropped,
    internalErrors: after.internalErrors - before.internalErrors,
  }
}

/** Problems, with the first few printed in full (hex, to replay by hand). */
class ProblemLog {
  readonly all: string[] = []
  add(kind: string, bytes: Buffer, problem: string): void {
    this.all.push(`${kind}: ${problem} [${bytes.length} bytes: ${bytes.toString('hex')}]`)
  }
  report(t: Test, what: string): void {
    for (const p of this.all.slice(0, SHOWN_PROBLEMS)) t.fail(p)
    t.equal(this.all.length, 0, `${what}: no problems (${this.all.length} found)`)
  }
}

/** Tally key for a response that failed judgement (already reported as a problem). */
const INVALID = -1

/** Per-kind tallies for the log: sent, answered by rcode name, not answered. */
class Tally {
  private readonly rows = new Map<string, { sent: number; silent: number; rcodes: Map<string, number> }>()
  readonly rcodesSeen = new Set<string>()
  add(kind: string, rcode: number | undefined): void {
    const row = this.rows.get(kind) ?? { sent: 0, silent: 0, rcodes: new Map<string, number>() }
    row.sent++
    if (rcode === undefined) row.silent++
    else {
      const name = rcode === INVALID ? 'invalid' : (RCODE_NAMES.get(rcode) ?? String(rcode))
      row.rcodes.set(name, (row.rcodes.get(name) ?? 0) + 1)
      this.rcodesSeen.add(name)
    }
    this.rows.set(kind, row)
  }
  get silent(): number {
    return [...this.rows.values()].reduce((n, r) => n + r.silent, 0)
  }
  print(t: Test): void {
    for (const [kind, row] of [...this.rows].sort()) {
      const rcodes = [...row.rcodes].map(([k, v]) => `${k} ${v}`).join(', ')
      t.comment(`${kind.padEnd(16)} sent ${String(row.sent).padStart(4)}  not answered ${String(row.silent).padStart(4)}  ${rcodes}`)
    }
  }
}

// ---------- the run ----------

t.comment(`fuzz seed ${SEED} (STEERDNS_FUZZ_SEED=${SEED} replays this run)`)

t.test('the judge rejects bad responses (so a clean fuzz run means something)', async (t) => {
  const query = (SEEDS[0] as Seed).bytes
  const question = { name: 'www.edge.example.net', type: 'A' as const }
  const good = (over: Partial<dnsPacket.Packet> = {}): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: query.readUInt16BE(0),
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      questions: [question],
      answers: [{ name: 'www.edge.example.net', type: 'A', ttl: 300, data: '192.0.2.10' }],
      ...over,
    })
  const patched = (bytes: Buffer, at: number, value: number): Buffer => {
    const b = Buffer.from(bytes)
    b[at] = value
    return b
  }
  const questionEnd = 12 + wireName('www.edge.example.net').length + 4
  // A pointer where the answer owner starts, aimed at itself.
  const selfPointer = Buffer.from(good())
  selfPointer.writeUInt16BE(0xc000 | questionEnd, questionEnd)
  const outsideName = encodeQueryBytes(['x.edge', 'example', 'net'])
  const cases: { name: string; query: Buffer; response: Buffer; isBad: boolean }[] = [
    { name: 'a right answer', query, response: good(), isBad: false },
    { name: 'another ID', query, response: good({ id: 1 }), isBad: true },
    { name: 'QR=0', query, response: patched(good(), 2, 0x04), isBad: true },
    { name: 'SERVFAIL', query, response: patched(good(), 3, 2), isBad: true },
    { name: 'a trailing byte', query, response: Buffer.concat([good(), Buffer.from([0])]), isBad: true },
    {
      name: 'over 512 bytes over UDP, no EDNS',
      query,
      response: good({ answers: Array.from({ length: 40 }, (_, i) => ({ name: 'www.edge.example.net', type: 'A' as const, ttl: 300, data: `192.0.2.${i}` })) }),
      isBad: true,
    },
    { name: 'a pointer to itself', query, response: selfPointer, isBad: true },
    { name: 'question case changed', query, response: good({ questions: [{ ...question, name: 'WWW.edge.example.net' }] }), isBad: true },
    { name: 'record outside the zone', query, response: good({ answers: [{ name: 'www.example.org', type: 'A', ttl: 1, data: '192.0.2.1' }] }), isBad: true },
    { name: 'answer not at the question', query, response: good({ answers: [{ name: 'api.edge.example.net', type: 'A', ttl: 1, data: '192.0.2.1' }] }), isBad: true },
    { name: 'NXDOMAIN without SOA', query, response: good({ flags: dnsPacket.AUTHORITATIVE_ANSWER | 3, answers: [] }), isBad: true },
    {
      name: 'authoritative for a label "x.edge" (outside the zone)',
      query: outsideName,
      response: Buffer.concat([Buffer.from([outsideName[0] as number, outsideName[1] as number, 0x84, 0x03]), u16(1, 0, 0, 0), outsideName.subarray(12)]),
      isBad: true,
    },
  ]
  for (const c of cases) {
    const problem = judgeResponse(c.query, c.response, 'udp')
    t.equal(problem !== undefined, c.isBad, `${c.name}: ${problem ?? 'accepted'}`)
  }
})

const probeQuery = (id: number): Buffer => encodeQuery({ id, name: 'www.edge.example.net', qtype: A })

/** The server answers normally: UDP and TCP, the right address, AA, NOERROR; a large answer whole over TCP. */
async function assertStillServing(t: Test, host: string, port: number): Promise<void> {
  for (const [transport, ask] of [
    ['udp', queryUdp],
    ['tcp', queryTcp],
  ] as const) {
    const bytes = await ask(host, port, probeQuery(0x0ace), REPLY_MS)
    const reply = dnsPacket.decode(bytes)
    t.equal(reply.id, 0x0ace, `${transport}: ID`)
    t.equal(rcodeOf(bytes), 0, `${transport}: NOERROR`)
    t.equal(reply.flag_aa, true, `${transport}: AA`)
    t.same(
      (reply.answers ?? []).map((a) => (a as { data: unknown }).data),
      ['192.0.2.10'],
      `${transport}: www.edge.example.net A 192.0.2.10`,
    )
  }
  const big = dnsPacket.decode(await queryTcp(host, port, encodeQuery({ id: 0x0b19, name: 'big.edge.example.net', qtype: TXT }), REPLY_MS))
  t.equal(big.answers?.length, 6, 'tcp: the six-record TXT set, whole')
}

t.test('UDP: mutated and random packets are answered well-formed or dropped and counted', async (t) => {
  const { server, host, port } = await startTestServer(t)
  const udp = await DnsUdpSocket.open(host, port)
  t.teardown(() => udp.close())
  const rand = createSeededRandom(SEED)
  const problems = new ProblemLog()
  const tally = new Tally()
  const start = snapshot(server)

  const cases: { kind: string; bytes: Buffer }[] = []
  // Truncation at every length of every seed.
  for (const seed of SEEDS) for (let n = 0; n < seed.bytes.length; n++) cases.push({ kind: 'truncate', bytes: seed.bytes.subarray(0, n) })
  for (let i = 0; i < UDP_RANDOM_CASES; i++) cases.push(randomCase(rand))
  // A few large datagrams: trailing padding to the UDP limit, and pure noise.
  cases.push({ kind: 'oversized', bytes: Buffer.concat([(SEEDS[0] as Seed).bytes, Buffer.alloc(4000)]) })
  cases.push({ kind: 'oversized', bytes: Buffer.concat([(SEEDS[1] as Seed).bytes, rand.bytes(60_000)]) })
  cases.push({ kind: 'oversized', bytes: rand.bytes(65_507) })

  for (const { kind, bytes } of cases) {
    const before = snapshot(server)
    const fuzzId = bytes.length >= 2 ? bytes.readUInt16BE(0) : 0
    const probeId = (fuzzId ^ 0x5a5a) & 0xffff
    await udp.send(bytes)
    await udp.send(probeQuery(probeId))
    // Whatever arrives before the probe's answer answers the fuzz packet.
    const replies: Buffer[] = []
    let probeAnswered = false
    for (let i = 0; i < 4 && !probeAnswered; i++) {
      let d: Buffer
      try {
        d = await udp.next(REPLY_MS)
      } catch {
        break
      }
      if (d.length >= 12 && d.readUInt16BE(0) === probeId && ((d[2] as number) & 0x80) !== 0) probeAnswered = true
      else replies.push(d)
    }
    if (!probeAnswered) {
      // Stalled (or flooding us): record it and stop; the totals below fail too.
      problems.add(kind, bytes, `the probe after it was not answered (${replies.length} other datagrams came back)`)
      break
    }

    if (replies.length > 1) problems.add(kind, bytes, `${replies.length} responses to one datagram`)
    const reply = replies[0]
    const problem = reply === undefined ? undefined : judgeResponse(bytes, reply, 'udp')
    if (problem !== undefined) problems.add(kind, bytes, problem)
    tally.add(kind, reply === undefined ? undefined : problem === undefined ? rcodeOf(reply) : INVALID)

    // Per packet: two received (fuzz + probe), each answered or dropped, counted once.
    const d = delta(before, snapshot(server))
    const answered = replies.length > 0 ? 1 : 0
    if (d.udp !== 2 || d.responses !== 1 + answered || d.dropped !== 1 - answered || d.internalErrors !== 0) {
      problems.add(kind, bytes, `counters: received ${d.udp}, responses ${d.responses}, dropped ${d.dropped}, internal errors ${d.internalErrors} (answered: ${answered})`)
    }
  }

  tally.print(t)
  t.comment(`${cases.length} fuzz datagrams, ${tally.silent} not answered`)
  problems.report(t, `${cases.length} UDP datagrams`)
  const d = delta(start, snapshot(server))
  t.equal(d.udp, cases.length * 2, 'every datagram and probe was received')
  t.equal(d.responses + d.dropped, d.udp, 'every received UDP message was answered or counted as dropped')
  t.equal(d.dropped, tally.silent, 'the unanswered ones are exactly the dropped ones')
  t.equal(server.counters.internalErrors, 0, 'no handler exception')
  t.notOk(server.counters.responsesByRcode.has(2), 'no SERVFAIL')
  // The generator reaches every outcome, not just the header checks.
  for (const rcode of RCODE_NAMES.values()) t.ok(tally.rcodesSeen.has(rcode), `some packets got ${rcode}`)
  t.ok(server.counters.truncated > 0, `some answers were truncated to the client's size (${server.counters.truncated})`)
  t.ok(server.counters.droppedByReason.get('short-header'), 'some were dropped as runts')
  t.ok(server.counters.droppedByReason.get('qr-set'), 'some were dropped for QR=1')
  await assertStillServing(t, host, port)
})

/** What the server's framing makes of a byte stream (tcp-listener: length-prefixed, stop at a zero-length frame). */
function framesOf(stream: Buffer): { messages: Buffer[]; zeroLengthFrame: boolean } {
  const messages: Buffer[] = []
  let pos = 0
  while (stream.length - pos >= 2) {
    const length = stream.readUInt16BE(pos)
    if (length === 0) return { messages, zeroLengthFrame: true }
    if (pos + 2 + length > stream.length) break
    messages.push(stream.subarray(pos + 2, pos + 2 + length))
    pos += 2 + length
  }
  return { messages, zeroLengthFrame: false }
}

type Framing = 'clean' | 'wrong-lengths' | 'zero-length' | 'raw'

function tcpStream(rand: SeededRandom, framing: Framing): { stream: Buffer; kinds: string[] } {
  if (framing === 'raw') return { stream: rand.bytes(rand.int(601)), kinds: ['raw'] }
  const parts: Buffer[] = []
  const kinds: string[] = []
  const count = rand.between(3, 10)
  const zeroAt = framing === 'zero-length' ? rand.int(count + 1) : -1
  for (let i = 0; i < count; i++) {
    if (i === zeroAt) parts.push(Buffer.from([0, 0]))
    // Some plain valid queries in between, so answers and drops interleave.
    const c = rand.chance(0.2) ? { kind: 'valid', bytes: rand.pick(SEEDS).bytes } : randomCase(rand)
    kinds.push(c.kind)
    let length = c.bytes.length
    if (framing === 'wrong-lengths' && rand.chance(0.35)) {
      length = rand.pick([length + rand.between(1, 20), Math.max(1, length - rand.between(1, 20)), rand.between(1, 11), rand.int(0x10000)])
    }
    parts.push(Buffer.concat([u16(length), c.bytes]))
  }
  if (zeroAt === count) parts.push(Buffer.from([0, 0]))
  return { stream: Buffer.concat(parts), kinds }
}

t.test('TCP: mutated frames, wrong lengths and zero-length frames, several per connection', async (t) => {
  const { server, host, port } = await startTestServer(t, { tcp: { idleTimeoutMs: 10_000 } })
  const rand = createSeededRandom(SEED ^ 0x7c9)
  const problems = new ProblemLog()
  const start = snapshot(server)
  const framings: Record<Framing, number> = { clean: 0, 'wrong-lengths': 0, 'zero-length': 0, raw: 0 }
  let messagesSent = 0
  let responsesSeen = 0

  for (let c = 0; c < TCP_CONNECTIONS; c++) {
    const framing: Framing = rand.chance(0.55) ? 'clean' : rand.chance(0.6) ? 'wrong-lengths' : rand.chance(0.75) ? 'zero-length' : 'raw'
    framings[framing]++
    const { stream, kinds } = tcpStream(rand, framing)
    const label = `tcp ${framing} #${c} (${kinds.join(' ')})`
    const expected = framesOf(stream)
    messagesSent += expected.messages.length
    const before = snapshot(server)

    const conn = await DnsTcpConnection.open(host, port)
    // Random write boundaries: the server must reassemble whatever the segmentation.
    for (let pos = 0; pos < stream.length && conn.isOpen; ) {
      const size = rand.chance(0.5) ? stream.length - pos : rand.between(1, 64)
      await conn.write(stream.subarray(pos, pos + size))
      pos += size
    }
    // Half-close: the server answers what it has, then closes (or has closed already).
    conn.end()
    if (!(await conn.closesWithin(REPLY_MS * 2))) {
      problems.add(label, stream, 'the server did not close after our half-close')
      conn.destroy()
      continue
    }
    const replies = conn.takeReceived()
    responsesSeen += replies.length

    // Answers come in order: match each to the next answerable query with its
    // ID (runts and QR=1 messages must get nothing, so they cannot match).
    const answerable = expected.messages.filter((m) => m.length >= 12 && ((m[2] as number) & 0x80) === 0)
    let next = 0
    for (const reply of replies) {
      const id = reply.length >= 2 ? reply.readUInt16BE(0) : -1
      while (next < answerable.length && (answerable[next] as Buffer).readUInt16BE(0) !== id) next++
      const query = answerable[next]
      if (query === undefined) {
        problems.add(label, stream, `a response (ID ${id}) matching no query, or out of order`)
        break
      }
      const problem = judgeResponse(query, reply, 'tcp')
      if (problem !== undefined) problems.add(label, stream, problem)
      next++
    }

    const d = delta(before, snapshot(server))
    if (d.tcp !== expected.messages.length) problems.add(label, stream, `server read ${d.tcp} messages, the framing holds ${expected.messages.length}`)
    if (d.responses + d.dropped !== d.tcp) problems.add(label, stream, `received ${d.tcp}, answered ${d.responses}, dropped ${d.dropped}`)
    // A zero-length frame closes at once, so answers still queued may be lost; otherwise every answer arrives.
    const wholeStream = !expected.zeroLengthFrame
    if (wholeStream ? replies.length !== d.responses : replies.length > d.responses) {
      problems.add(label, stream, `${replies.length} responses arrived, the server counted ${d.responses}`)
    }
    if (d.internalErrors !== 0) problems.add(label, stream, `${d.internalErrors} internal errors`)
  }

  t.comment(`connections by framing: ${JSON.stringify(framings)}; ${messagesSent} messages framed, ${responsesSeen} responses`)
  problems.report(t, `${TCP_CONNECTIONS} TCP connections, ${messagesSent} messages`)
  const d = delta(start, snapshot(server))
  t.equal(d.tcp, messagesSent, 'the server read exactly the messages the framing holds')
  t.equal(d.responses + d.dropped, d.tcp, 'every received TCP message was answered or counted as dropped')
  t.ok(messagesSent >= 200, `a few hundred messages (${messagesSent})`)
  t.equal(server.counters.internalErrors, 0, 'no handler exception')
  t.notOk(server.counters.responsesByRcode.has(2), 'no SERVFAIL')
  await assertStillServing(t, host, port)
})
