// decodeQuery: well-formed queries built by dns-packet (the independent codec),
// malformed ones built by hand, and a seeded fuzz run that must never throw.
import t from 'tap'
import type { Test } from 'tap'
import dnsPacket from 'dns-packet'
import {
  DECODE_REASON,
  RCODE,
  clientSubnetOption,
  decodeQuery,
  encodeResponse,
  labelsToName,
} from '../../src/wire/index.js'
import type { DecodeResult, Query, QueryEdns } from '../../src/wire/index.js'
import { createSeededRandom } from '../helpers/seeded-random.js'
import { optRecord } from '../helpers/dns-packet-types.js'

// ---------- hand-built wire fragments ----------

const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]

interface HeaderFields {
  id?: number
  flags?: number
  qd?: number
  an?: number
  ns?: number
  ar?: number
}

function header(h: HeaderFields = {}): number[] {
  return [
    ...u16(h.id ?? 0x1234),
    ...u16(h.flags ?? 0x0100),
    ...u16(h.qd ?? 1),
    ...u16(h.an ?? 0),
    ...u16(h.ns ?? 0),
    ...u16(h.ar ?? 0),
  ]
}

/** Uncompressed wire name from plain dotted text (no escapes). */
function wname(name: string): number[] {
  const out: number[] = []
  for (const label of name.split('.').filter((l) => l !== '')) {
    out.push(label.length, ...Buffer.from(label, 'latin1'))
  }
  out.push(0)
  return out
}

const QUESTION = [...wname('www.example.com'), ...u16(1), ...u16(1)]

interface OptFields {
  owner?: number[]
  udp?: number
  extRcode?: number
  version?: number
  flags?: number
  options?: Array<[number, number[]]>
  rdlen?: number
  rawRdata?: number[]
}

function opt(o: OptFields = {}): number[] {
  const rdata = o.rawRdata ?? (o.options ?? []).flatMap(([code, data]) => [...u16(code), ...u16(data.length), ...data])
  return [
    ...(o.owner ?? [0]),
    ...u16(41),
    ...u16(o.udp ?? 1232),
    o.extRcode ?? 0,
    o.version ?? 0,
    ...u16(o.flags ?? 0),
    ...u16(o.rdlen ?? rdata.length),
    ...rdata,
  ]
}

/** A record with the given owner bytes (maybe compressed) and rdata. */
function rr(owner: number[], type: number, rdata: number[]): number[] {
  return [...owner, ...u16(type), ...u16(1), 0, 0, 0, 60, ...u16(rdata.length), ...rdata]
}

const bytes = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat())
const ecs = (family: number, source: number, scope: number, address: number[]): [number, number[]] => [
  8,
  [...u16(family), source, scope, ...address],
]
const withOpt = (o: OptFields): Uint8Array => bytes(header({ ar: 1 }), QUESTION, opt(o))

function asQuery(t: Test, r: DecodeResult): Query {
  if (r.kind !== 'query') {
    t.fail(`expected a query, got ${JSON.stringify(r)}`)
    throw new Error('not a query')
  }
  return r.query
}


// ---------- well-formed queries, built by dns-packet ----------

t.test('queries built by dns-packet decode to the same facts', async (t) => {
  const cases: Array<{ name: string; packet: dnsPacket.Packet; check: (t: Test, q: Query) => void }> = [
    {
      name: 'plain A, RD set, no EDNS',
      packet: { type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'api.edge.example.net' }] },
      check: (t, q) => {
        t.equal(q.id, 7)
        t.equal(q.opcode, 0)
        t.equal(q.recursionDesired, true)
        t.equal(q.checkingDisabled, false)
        t.equal(q.qname, 'api.edge.example.net')
        t.equal(q.qtype, 1)
        t.equal(q.qclass, 1)
        t.equal(q.edns, undefined)
      },
    },
    {
      name: 'mixed case is lowercased in qname, kept in questionBytes',
      packet: { type: 'query', id: 8, flags: dnsPacket.CHECKING_DISABLED, questions: [{ type: 'AAAA', name: 'Api.EDGE.example.NET' }] },
      check: (t, q) => {
        t.equal(q.qname, 'api.edge.example.net')
        t.equal(q.qtype, 28)
        t.equal(q.recursionDesired, false)
        t.equal(q.checkingDisabled, true)
        t.equal(Buffer.from(q.questionBytes).toString('latin1').includes('EDGE'), true)
      },
    },
    {
      name: 'root name, class CH, type TXT',
      packet: { type: 'query', id: 9, questions: [{ type: 'TXT', name: '.', class: 'CH' }] },
      check: (t, q) => {
        t.equal(q.qname, '')
        t.equal(q.qclass, 3)
        t.same([...q.questionBytes], [0, 0, 16, 0, 3])
      },
    },
    {
      name: 'EDNS with DO, payload reported raw',
      packet: {
        type: 'query',
        id: 10,
        questions: [{ type: 'A', name: 'a.example' }],
        additionals: [optRecord({ type: 'OPT', name: '.', udpPayloadSize: 100, flags: dnsPacket.DNSSEC_OK })],
      },
      check: (t, q) => {
        t.match(q.edns, { version: 0, udpPayloadBytes: 100, dnssecOk: true, nsidRequested: false })
        t.equal(q.edns?.clientSubnet, undefined)
        t.equal(q.edns?.cookie, undefined)
      },
    },
    {
      name: 'ECS IPv4 /24',
      packet: ecsPacket({ family: 1, sourcePrefixLength: 24, ip: '192.0.2.0' }),
      check: (t, q) => {
        t.match(q.edns?.clientSubnet, { family: 1, sourcePrefixLen: 24, scopePrefixLen: 0 })
        t.same([...(q.edns?.clientSubnet?.address ?? [])], [192, 0, 2, 0])
      },
    },
    {
      name: 'ECS IPv4 /20 (partial last byte, spare bits zero)',
      packet: ecsPacket({ family: 1, sourcePrefixLength: 20, ip: '198.51.96.0' }),
      check: (t, q) => t.same([...(q.edns?.clientSubnet?.address ?? [])], [198, 51, 96, 0]),
    },
    {
      name: 'ECS IPv6 /56',
      packet: ecsPacket({ family: 2, sourcePrefixLength: 56, ip: '2001:db8:1:2300::' }),
      check: (t, q) => {
        t.match(q.edns?.clientSubnet, { family: 2, sourcePrefixLen: 56 })
        t.equal(q.edns?.clientSubnet?.address.length, 16)
        t.same([...(q.edns?.clientSubnet?.address ?? [])].slice(0, 8), [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0x23, 0])
      },
    },
    {
      name: 'ECS IPv4 /0 with no address bytes is valid',
      packet: ecsPacket({ family: 1, sourcePrefixLength: 0, ip: '0.0.0.0' }),
      check: (t, q) => {
        t.match(q.edns?.clientSubnet, { family: 1, sourcePrefixLen: 0, scopePrefixLen: 0 })
        t.same([...(q.edns?.clientSubnet?.address ?? [])], [0, 0, 0, 0])
      },
    },
    {
      name: 'NSID request, cookie, unknown option ignored',
      packet: {
        type: 'query',
        id: 11,
        questions: [{ type: 'A', name: 'a.example' }],
        additionals: [
          optRecord({
            type: 'OPT',
            name: '.',
            udpPayloadSize: 4096,
            options: [
              { code: 3, data: Buffer.alloc(0) },
              { code: 65001, data: Buffer.from('whatever') },
              { code: 10, data: Buffer.from('0123456789abcdef', 'hex') },
            ],
          }),
        ],
      },
      check: (t, q) => {
        t.equal(q.edns?.nsidRequested, true)
        t.same([...(q.edns?.cookie ?? [])], [...Buffer.from('0123456789abcdef', 'hex')])
      },
    },
  ]
  for (const c of cases) {
    const wire = dnsPacket.encode(c.packet)
    const r = decodeQuery(wire)
    t.test(c.name, async (t) => {
      const q = asQuery(t, r)
      // questionBytes is exactly the received question, and a copy.
      const qEnd = 12 + q.questionBytes.length
      t.same([...q.questionBytes], [...wire.subarray(12, qEnd)])
      t.not(q.questionBytes.buffer, wire.buffer)
      c.check(t, q)
    })
  }
})

function ecsPacket(o: { family: number; sourcePrefixLength: number; ip: string }): dnsPacket.Packet {
  return {
    type: 'query',
    id: 12,
    questions: [{ type: 'A', name: 'api.edge.example.net' }],
    additionals: [
      optRecord({
        type: 'OPT',
        name: '.',
        udpPayloadSize: 1232,
        options: [{ code: 'CLIENT_SUBNET', scopePrefixLength: 0, ...o }],
      }),
    ],
  }
}

t.test('qname text is the canonical form of name.ts (escapes, case)', async (t) => {
  const labels = [Buffer.from('A.b'), Buffer.from([0, 0x20, 0x5c, 0x7f, 0xff, 0x41]), Buffer.from('xn--Bcher-kva')]
  const wire = bytes(header(), labels.flatMap((l) => [l.length, ...l]), [0], u16(1), u16(1))
  const q = asQuery(t, decodeQuery(wire))
  t.equal(q.qname, labelsToName(labels))
  t.equal(q.qname, 'a\\.b.\\000\\032\\\\\\127\\255a.xn--bcher-kva')
})

t.test('records in answer/authority are skipped, compressed names allowed', async (t) => {
  // Owner = pointer to the qname (offset 12); rdata arbitrary; then an OPT.
  const wire = bytes(
    header({ an: 1, ns: 1, ar: 1 }),
    QUESTION,
    rr([0xc0, 12], 1, [192, 0, 2, 1]),
    rr([3, 0x66, 0x6f, 0x6f, 0xc0, 16], 1, [192, 0, 2, 2]),
    opt({ flags: 0x8000 | 0x1234 }),
  )
  const q = asQuery(t, decodeQuery(wire))
  t.equal(q.qname, 'www.example.com')
  t.equal(q.edns?.dnssecOk, true, 'unknown EDNS flag bits are ignored')
})

t.test('only the first ECS and COOKIE are judged (BIND, Knot)', async (t) => {
  const wire = withOpt({
    options: [ecs(1, 24, 0, [192, 0, 2]), ecs(9, 99, 9, []), [10, [1, 2, 3, 4, 5, 6, 7, 8]], [10, [1]]],
  })
  const q = asQuery(t, decodeQuery(wire))
  t.equal(q.edns?.clientSubnet?.sourcePrefixLen, 24)
  t.equal(q.edns?.cookie?.length, 8)
})

t.test('cookie lengths (RFC 7873 section 5.2.2)', async (t) => {
  for (const len of [8, 16, 24, 40]) {
    const q = asQuery(t, decodeQuery(withOpt({ options: [[10, new Array<number>(len).fill(7)]] })))
    t.equal(q.edns?.cookie?.length, len, `length ${len} accepted`)
  }
  for (const len of [0, 1, 7, 9, 15, 41, 100]) {
    const r = decodeQuery(withOpt({ options: [[10, new Array<number>(len).fill(7)]] }))
    t.match(r, { kind: 'error', rcode: RCODE.FORMERR, reason: DECODE_REASON.COOKIE_LENGTH }, `length ${len} refused`)
  }
})

// ---------- drop, NOTIMP, FORMERR, BADVERS ----------

interface ErrorCase {
  name: string
  wire: Uint8Array
  expect: Record<string, unknown>
  /** Whether the question is echoed. */
  question?: boolean
  /** Whether an edns is passed (undefined: do not check). */
  edns?: boolean
}

const FORMERR = (reason: string): Record<string, unknown> => ({ kind: 'error', rcode: RCODE.FORMERR, reason })

const tooLongName = (() => {
  // 4 labels of 63 + root = 257 bytes.
  const out: number[] = []
  for (let i = 0; i < 4; i++) out.push(63, ...new Array<number>(63).fill(0x61))
  out.push(0)
  return out
})()
const maxName = (() => {
  // 3 x 63 + 1 x 61 + root = 255 bytes exactly: legal.
  const out: number[] = []
  for (let i = 0; i < 3; i++) out.push(63, ...new Array<number>(63).fill(0x61))
  out.push(61, ...new Array<number>(61).fill(0x62), 0)
  return out
})()

const errorCases: ErrorCase[] = [
  { name: 'empty message', wire: bytes([]), expect: { kind: 'drop', reason: DECODE_REASON.SHORT } },
  { name: '11 bytes', wire: bytes(header().slice(0, 11)), expect: { kind: 'drop', reason: DECODE_REASON.SHORT } },
  {
    name: 'QR=1 (a response): dropped, never answered',
    wire: bytes(header({ flags: 0x8100 }), QUESTION),
    expect: { kind: 'drop', reason: DECODE_REASON.RESPONSE },
  },
  {
    name: 'opcode 15: NOTIMP, question echoed, no flags',
    wire: bytes(header({ flags: (15 << 11) | 0x0110 }), QUESTION),
    expect: { kind: 'error', rcode: RCODE.NOTIMP, opcode: 15, recursionDesired: false, checkingDisabled: false },
    question: true,
  },
  {
    name: 'opcode UPDATE with OPT: NOTIMP, edns passed',
    wire: bytes(header({ flags: 5 << 11, ar: 1 }), QUESTION, opt({ udp: 4096 })),
    expect: { kind: 'error', rcode: RCODE.NOTIMP, opcode: 5 },
    question: true,
    edns: true,
  },
  {
    name: 'opcode STATUS without question: NOTIMP, nothing echoed',
    wire: bytes(header({ flags: 2 << 11, qd: 0 })),
    expect: { kind: 'error', rcode: RCODE.NOTIMP, opcode: 2 },
    question: false,
    edns: false,
  },
  {
    name: 'opcode DSO (6) with TLVs after the header: NOTIMP, not FORMERR',
    wire: bytes(header({ flags: 6 << 11, qd: 0 }), [0, 1, 0, 4, 0, 0, 0, 0]),
    expect: { kind: 'error', rcode: RCODE.NOTIMP, opcode: 6 },
    question: false,
    edns: false,
  },
  {
    name: 'opcode NOTIFY with a compressed qname: NOTIMP, question not echoed',
    wire: bytes(header({ flags: 4 << 11 }), [0xc0, 12], u16(6), u16(1)),
    expect: { kind: 'error', rcode: RCODE.NOTIMP, opcode: 4 },
    question: false,
  },
  {
    name: 'QDCOUNT 0',
    wire: bytes(header({ qd: 0, ar: 1 }), opt({ options: [[10, [1, 2, 3, 4, 5, 6, 7, 8]]] })),
    expect: FORMERR(DECODE_REASON.QDCOUNT_ZERO),
    question: false,
    edns: true,
  },
  {
    name: 'QDCOUNT 2 (RFC 9619)',
    wire: bytes(header({ qd: 2, ar: 1 }), QUESTION, [0xc0, 12], u16(28), u16(1), opt()),
    expect: FORMERR(DECODE_REASON.QDCOUNT_MANY),
    question: false,
    edns: true,
  },
  {
    name: 'qname is a compression pointer',
    wire: bytes(header(), [0xc0, 12], u16(1), u16(1)),
    expect: FORMERR(DECODE_REASON.QNAME_POINTER),
    question: false,
  },
  {
    name: 'qname label after a label is a pointer',
    wire: bytes(header(), [3, 0x77, 0x77, 0x77, 0xc0, 12], u16(1), u16(1)),
    expect: FORMERR(DECODE_REASON.QNAME_POINTER),
  },
  {
    name: 'qname label of 64 bytes (type bits 01)',
    wire: bytes(header(), [64, ...new Array<number>(64).fill(0x61), 0], u16(1), u16(1)),
    expect: FORMERR(DECODE_REASON.QNAME_LABEL_TYPE),
  },
  {
    name: 'qname label type 0x80',
    wire: bytes(header(), [0x80, 0x61, 0], u16(1), u16(1)),
    expect: FORMERR(DECODE_REASON.QNAME_LABEL_TYPE),
  },
  {
    name: 'qname of 257 wire bytes',
    wire: bytes(header(), tooLongName, u16(1), u16(1)),
    expect: FORMERR(DECODE_REASON.QNAME_TOO_LONG),
  },
  {
    name: 'qname truncated mid-label',
    wire: bytes(header(), [3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61]),
    expect: FORMERR(DECODE_REASON.QNAME_TRUNCATED),
    question: false,
  },
  {
    name: 'qname without root label',
    wire: bytes(header(), [3, 0x77, 0x77, 0x77, 1, 0x61, 1, 0x62]),
    expect: FORMERR(DECODE_REASON.QNAME_TRUNCATED),
  },
  {
    name: 'question missing QCLASS',
    wire: bytes(header(), wname('www.example.com'), u16(1)),
    expect: FORMERR(DECODE_REASON.QUESTION_TRUNCATED),
    question: false,
  },
  {
    name: 'counts larger than the message',
    wire: bytes(header({ an: 1000 }), QUESTION),
    expect: FORMERR(DECODE_REASON.COUNTS),
  },
  {
    name: 'answer owner pointer to itself (loop)',
    wire: bytes(header({ an: 1 }), QUESTION, rr([0xc0, 12 + QUESTION.length], 1, [1, 2, 3, 4])),
    expect: FORMERR(DECODE_REASON.RR_NAME),
    question: true,
  },
  {
    name: 'answer owner pointer loop through a label (a -> ptr back to a)',
    wire: bytes(header({ an: 1 }), QUESTION, rr([1, 0x61, 0xc0, 12 + QUESTION.length], 1, [1, 2, 3, 4])),
    expect: FORMERR(DECODE_REASON.RR_NAME),
  },
  {
    name: 'answer owner forward pointer',
    wire: bytes(header({ an: 1 }), QUESTION, rr([0xc0, 200], 1, [1, 2, 3, 4])),
    expect: FORMERR(DECODE_REASON.RR_NAME),
  },
  {
    name: 'answer owner pointer into the header',
    wire: bytes(header({ an: 1 }), QUESTION, rr([0xc0, 2], 1, [1, 2, 3, 4])),
    expect: FORMERR(DECODE_REASON.RR_NAME),
  },
  {
    name: 'answer owner pointer truncated (one byte)',
    wire: bytes(header({ an: 1 }), QUESTION, [0xc0]),
    expect: FORMERR(DECODE_REASON.RR_NAME),
  },
  {
    name: 'record rdata longer than the message',
    wire: bytes(header({ an: 1 }), QUESTION, [0, ...u16(1), ...u16(1), 0, 0, 0, 60, ...u16(40), 1, 2, 3, 4]),
    expect: FORMERR(DECODE_REASON.RR_TRUNCATED),
    question: true,
  },
  {
    name: 'two OPT records (RFC 6891 section 6.1.1)',
    wire: bytes(header({ ar: 2 }), QUESTION, opt(), opt()),
    expect: FORMERR(DECODE_REASON.OPT_TWICE),
    question: true,
    edns: false,
  },
  {
    name: 'OPT owner not root',
    wire: bytes(header({ ar: 1 }), QUESTION, opt({ owner: [1, 0x61, 0] })),
    expect: FORMERR(DECODE_REASON.OPT_OWNER),
    edns: false,
  },
  {
    name: 'OPT owner is a pointer to a non-root name',
    wire: bytes(header({ ar: 1 }), QUESTION, opt({ owner: [0xc0, 12] })),
    expect: FORMERR(DECODE_REASON.OPT_OWNER),
  },
  {
    name: 'OPT in the answer section',
    wire: bytes(header({ an: 1 }), QUESTION, opt()),
    expect: FORMERR(DECODE_REASON.OPT_OUTSIDE_ADDITIONAL),
  },
  {
    name: 'trailing garbage after the last record (Knot: KNOT_ETRAIL -> FORMERR)',
    wire: bytes(header({ ar: 1 }), QUESTION, opt(), [0]),
    expect: FORMERR(DECODE_REASON.TRAILING),
    question: true,
    edns: true,
  },
  {
    name: 'trailing garbage after the question',
    wire: bytes(header(), QUESTION, [0xde, 0xad]),
    expect: FORMERR(DECODE_REASON.TRAILING),
    question: true,
    edns: false,
  },
  {
    name: 'option longer than RDLENGTH',
    wire: withOpt({ rawRdata: [0, 3, 0, 9, 1, 2] }),
    expect: FORMERR(DECODE_REASON.OPTION_LENGTH),
    edns: true,
  },
  {
    name: 'option header cut by RDLENGTH',
    wire: withOpt({ rawRdata: [0, 3] }),
    expect: FORMERR(DECODE_REASON.OPTION_LENGTH),
  },
  {
    name: 'OPT RDLENGTH beyond the message',
    wire: withOpt({ rdlen: 10 }),
    expect: FORMERR(DECODE_REASON.RR_TRUNCATED),
    edns: false,
  },
  { name: 'ECS shorter than 4 bytes', wire: withOpt({ options: [[8, [0, 1, 24]]] }), expect: FORMERR(DECODE_REASON.ECS_LENGTH) },
  { name: 'ECS family 0', wire: withOpt({ options: [ecs(0, 0, 0, [])] }), expect: FORMERR(DECODE_REASON.ECS_FAMILY) },
  { name: 'ECS family 3', wire: withOpt({ options: [ecs(3, 8, 0, [10])] }), expect: FORMERR(DECODE_REASON.ECS_FAMILY) },
  {
    name: 'ECS IPv4 source 33',
    wire: withOpt({ options: [ecs(1, 33, 0, [1, 2, 3, 4, 5])] }),
    expect: FORMERR(DECODE_REASON.ECS_SOURCE),
  },
  {
    name: 'ECS IPv6 source 129',
    wire: withOpt({ options: [ecs(2, 129, 0, new Array<number>(17).fill(0))] }),
    expect: FORMERR(DECODE_REASON.ECS_SOURCE),
  },
  {
    name: 'ECS scope non-zero in a query (BIND: FORMERR)',
    wire: withOpt({ options: [ecs(1, 24, 24, [192, 0, 2])] }),
    expect: FORMERR(DECODE_REASON.ECS_SCOPE),
    question: true,
    edns: true,
  },
  {
    name: 'ECS address longer than the prefix needs (full address for /24)',
    wire: withOpt({ options: [ecs(1, 24, 0, [192, 0, 2, 0])] }),
    expect: FORMERR(DECODE_REASON.ECS_LENGTH),
  },
  {
    name: 'ECS address shorter than the prefix needs',
    wire: withOpt({ options: [ecs(1, 24, 0, [192, 0])] }),
    expect: FORMERR(DECODE_REASON.ECS_LENGTH),
  },
  {
    name: 'ECS source 0 with an address byte',
    wire: withOpt({ options: [ecs(1, 0, 0, [0])] }),
    expect: FORMERR(DECODE_REASON.ECS_LENGTH),
  },
  {
    name: 'ECS bits set past the source prefix (/20 with 198.51.100.0)',
    wire: withOpt({ options: [ecs(1, 20, 0, [198, 51, 100])] }),
    expect: FORMERR(DECODE_REASON.ECS_ADDRESS_BITS),
  },
  {
    name: 'ECS IPv6 /57 with bit 58 set',
    wire: withOpt({ options: [ecs(2, 57, 0, [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0x40])] }),
    expect: FORMERR(DECODE_REASON.ECS_ADDRESS_BITS),
  },
  {
    name: 'EDNS version 1: BADVERS with edns for an OPT v0 reply (RFC 6891 6.1.3)',
    wire: withOpt({ version: 1, udp: 4096, flags: 0x8000 }),
    expect: { kind: 'error', rcode: RCODE.BADVERS, reason: DECODE_REASON.BADVERS, edns: { version: 1, udpPayloadBytes: 4096, dnssecOk: true } },
    question: true,
    edns: true,
  },
  {
    name: 'EDNS version 1 with a malformed ECS: still BADVERS, options unread',
    wire: withOpt({ version: 1, options: [ecs(7, 200, 9, [])] }),
    expect: { kind: 'error', rcode: RCODE.BADVERS },
  },
  {
    name: 'BADVERS with QDCOUNT 0 (Knot checks the version first)',
    wire: bytes(header({ qd: 0, ar: 1 }), opt({ version: 2 })),
    expect: { kind: 'error', rcode: RCODE.BADVERS },
    question: false,
  },
  {
    name: 'structural FORMERR beats BADVERS',
    wire: bytes(header({ ar: 1 }), QUESTION, opt({ version: 1 }), [0]),
    expect: FORMERR(DECODE_REASON.TRAILING),
  },
]

t.test('drop, NOTIMP, FORMERR and BADVERS cases', async (t) => {
  for (const c of errorCases) {
    t.test(c.name, async (t) => {
      const r = decodeQuery(c.wire)
      t.match(r, c.expect)
      if (r.kind !== 'error') return
      t.equal(r.id, 0x1234, 'id echoed')
      if (r.rcode === RCODE.FORMERR || r.rcode === RCODE.BADVERS) {
        const flags = ((c.wire[2] as number) << 8) | (c.wire[3] as number)
        t.equal(r.recursionDesired, (flags & 0x0100) !== 0, 'RD echoed')
        t.equal(r.checkingDisabled, (flags & 0x0010) !== 0, 'CD echoed')
      }
      if (c.question === true) {
        t.ok(r.questionBytes, 'question echoed')
        const len = r.questionBytes?.length ?? 0
        t.same([...(r.questionBytes ?? [])], [...c.wire.subarray(12, 12 + len)])
      } else if (c.question === false) {
        t.equal(r.questionBytes, undefined, 'question not echoed')
      }
      if (c.edns === true) t.ok(r.edns, 'edns passed')
      else if (c.edns === false) t.equal(r.edns, undefined, 'no edns')
    })
  }
})

t.test('FORMERR on a bad ECS keeps the rest of the EDNS (response carries OPT)', async (t) => {
  const r = decodeQuery(withOpt({ udp: 1400, flags: 0x8000, options: [[3, []], ecs(1, 24, 8, [1, 2, 3])] }))
  t.match(r, { kind: 'error', rcode: RCODE.FORMERR, edns: { version: 0, udpPayloadBytes: 1400, dnssecOk: true } })
  if (r.kind === 'error') t.equal(r.edns?.clientSubnet, undefined)
})

t.test('boundaries: 255-byte qname accepted, 63-byte label accepted', async (t) => {
  const q = asQuery(t, decodeQuery(bytes(header(), maxName, u16(1), u16(1))))
  t.equal(q.questionBytes.length, 255 + 4)
  t.equal(q.qname.length, 63 * 3 + 61 + 3)
})

t.test('decodeQuery accepts a Buffer view into a larger buffer', async (t) => {
  const big = Buffer.alloc(100, 0xee)
  const wire = dnsPacket.encode({ type: 'query', id: 0x1234, questions: [{ type: 'A', name: 'x.example' }] })
  wire.copy(big, 10)
  const q = asQuery(t, decodeQuery(big.subarray(10, 10 + wire.length)))
  t.equal(q.qname, 'x.example')
  big.fill(0)
  t.equal(q.questionBytes[1], 0x78, 'question bytes are a copy')
})

// ---------- property-style: random and mutated messages ----------

/** The shared mulberry32 generator (test/helpers/seeded-random.ts): failures reproduce from the seed. */
const prng = (seed: number): (() => number) => createSeededRandom(seed).next

function toResponseEdns(edns: QueryEdns | undefined): { udpPayloadBytes: number; dnssecOk: boolean; options: ReturnType<typeof clientSubnetOption>[] } | undefined {
  if (edns === undefined) return undefined
  const options = edns.clientSubnet ? [clientSubnetOption(edns.clientSubnet, 0)] : []
  return { udpPayloadBytes: 1232, dnssecOk: edns.dnssecOk, options }
}

t.test('2000 random and mutated messages: never throws, queries re-encode', async (t) => {
  const rand = prng(0x5eed)
  const int = (n: number): number => Math.floor(rand() * n)
  const seeds: Uint8Array[] = [
    withOpt({ options: [ecs(1, 24, 0, [192, 0, 2]), [10, [1, 2, 3, 4, 5, 6, 7, 8]], [3, []]] }),
    bytes(header({ an: 1, ns: 1, ar: 1 }), QUESTION, rr([0xc0, 12], 1, [1, 2, 3, 4]), rr([1, 0x61, 0xc0, 12], 28, new Array<number>(16).fill(1)), opt()),
    dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'AAAA', name: 'Api.Edge.Example.Net' }] }),
    withOpt({ options: [ecs(2, 56, 0, [0x20, 1, 0x0d, 0xb8, 0, 1, 0x23])] }),
  ]
  const kinds = { query: 0, error: 0, drop: 0 }
  for (let i = 0; i < 2000; i++) {
    let msg: Uint8Array
    if (i % 5 === 0) {
      msg = new Uint8Array(int(80))
      for (let k = 0; k < msg.length; k++) msg[k] = int(256)
      if (msg.length > 3 && rand() < 0.7) msg[2] = (msg[2] as number) & 0x07 // mostly QR=0, opcode 0
    } else {
      const seed = seeds[int(seeds.length)] as Uint8Array
      const m = Array.from(seed)
      const edits = 1 + int(4)
      for (let e = 0; e < edits; e++) {
        const op = int(4)
        const at = int(m.length)
        if (op === 0) m[at] = int(256)
        else if (op === 1) m[at] = (m[at] as number) ^ (1 << int(8))
        else if (op === 2) m.splice(at, 1 + int(3))
        else m.splice(at, 0, int(256))
      }
      msg = Uint8Array.from(m)
    }
    let r: DecodeResult
    try {
      r = decodeQuery(msg)
    } catch (err) {
      t.fail(`decodeQuery threw on ${Buffer.from(msg).toString('hex')}: ${String(err)}`)
      continue
    }
    kinds[r.kind]++
    if (r.kind === 'query') {
      const q = r.query
      const out = encodeResponse({
        id: q.id,
        opcode: q.opcode,
        rcode: RCODE.REFUSED,
        authoritative: false,
        recursionDesired: q.recursionDesired,
        checkingDisabled: q.checkingDisabled,
        questionBytes: q.questionBytes,
        answer: [],
        authority: [],
        additional: [],
        requiredAdditional: 0,
        edns: toResponseEdns(q.edns),
        maxBytes: 512,
      })
      // The response's question is the query's, byte for byte.
      if (!Buffer.from(out.subarray(12, 12 + q.questionBytes.length)).equals(Buffer.from(q.questionBytes))) {
        t.fail(`question not echoed for ${Buffer.from(msg).toString('hex')}`)
      }
      // dns-packet cannot read every legal label byte; the header must still be right.
      if (((out[3] as number) & 0x0f) !== RCODE.REFUSED || out[5] !== 1) t.fail('bad response header')
    } else if (r.kind === 'error' && r.questionBytes !== undefined) {
      encodeResponse({
        id: r.id,
        opcode: r.opcode,
        rcode: r.rcode,
        authoritative: false,
        recursionDesired: r.recursionDesired,
        checkingDisabled: r.checkingDisabled,
        questionBytes: r.questionBytes,
        answer: [],
        authority: [],
        additional: [],
        requiredAdditional: 0,
        edns: toResponseEdns(r.edns),
        maxBytes: 512,
      })
    }
  }
  t.ok(kinds.query > 50 && kinds.error > 50 && kinds.drop > 50, `a mix of outcomes: ${JSON.stringify(kinds)}`)
})
