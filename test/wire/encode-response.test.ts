// encodeResponse and the EDNS option builders, checked by decoding the output
// with dns-packet (the independent codec) and by exact sizes where compression
// has one optimal answer.
import t from 'tap'
import dnsPacket from 'dns-packet'
import type { OptAnswer } from 'dns-packet'
import { RCODE, RRTYPE, clientSubnetOption, decodeQuery, encodeResponse, nsidOption } from '../../src/wire/index.js'
import type { EdnsOption, ResourceRecord, Response, ResponseEdns } from '../../src/wire/index.js'
import { optRecord } from '../helpers/dns-packet-types.js'

// ---------- builders ----------

/** The question bytes a client would send for `name` (case kept). */
function question(name: string, qtype = 1): Uint8Array {
  const wire = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name }] })
  const r = decodeQuery(wire)
  if (r.kind !== 'query') throw new Error('bad test question')
  const q = Uint8Array.from(r.query.questionBytes)
  q[q.length - 4] = qtype >> 8
  q[q.length - 3] = qtype & 0xff
  return q
}

const a = (name: string, last: number, ttlSec = 60): ResourceRecord => ({
  name,
  type: RRTYPE.A,
  class: 1,
  ttlSec,
  rdata: [Uint8Array.of(192, 0, 2, last)],
})
const aaaa = (name: string, last: number): ResourceRecord => ({
  name,
  type: RRTYPE.AAAA,
  class: 1,
  ttlSec: 60,
  rdata: [Uint8Array.of(0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last)],
})
const cname = (name: string, target: string): ResourceRecord => ({
  name,
  type: RRTYPE.CNAME,
  class: 1,
  ttlSec: 300,
  rdata: [{ name: target, compress: true }],
})
const ns = (name: string, host: string): ResourceRecord => ({
  name,
  type: RRTYPE.NS,
  class: 1,
  ttlSec: 3600,
  rdata: [{ name: host, compress: true }],
})
const srv = (name: string, target: string): ResourceRecord => ({
  name,
  type: RRTYPE.SRV,
  class: 1,
  ttlSec: 60,
  // priority 10, weight 5, port 443, then the target: never compressed (RFC 2782, RFC 3597 section 4).
  rdata: [Uint8Array.of(0, 10, 0, 5, 0x01, 0xbb), { name: target, compress: false }],
})

const EDNS: ResponseEdns = { udpPayloadBytes: 1232, dnssecOk: false, options: [] }

function response(over: Partial<Response>): Response {
  return {
    id: 0xbeef,
    opcode: 0,
    rcode: RCODE.NOERROR,
    authoritative: true,
    recursionDesired: false,
    checkingDisabled: false,
    questionBytes: question('www.example.com'),
    answer: [],
    authority: [],
    additional: [],
    requiredAdditional: 0,
    edns: EDNS,
    maxBytes: 1232,
    ...over,
  }
}

const decode = (out: Uint8Array): dnsPacket.DecodedPacket => dnsPacket.decode(Buffer.from(out))
const fullRcode = (out: Uint8Array, p: dnsPacket.DecodedPacket): number => {
  const opt = (p.additionals ?? []).find((x) => x.type === 'OPT') as { extendedRcode?: number } | undefined
  return ((opt?.extendedRcode ?? 0) << 4) | ((out[3] as number) & 0x0f)
}
const count = (out: Uint8Array, section: 0 | 1 | 2 | 3): number =>
  ((out[4 + section * 2] as number) << 8) | (out[5 + section * 2] as number)

// ---------- header ----------

t.test('header flags: QR set, AA/RD/CD/opcode as given, RA/Z/AD zero', async (t) => {
  const cases = [
    { authoritative: true, recursionDesired: true, checkingDisabled: true, opcode: 0 },
    { authoritative: false, recursionDesired: false, checkingDisabled: false, opcode: 0 },
    { authoritative: false, recursionDesired: false, checkingDisabled: false, opcode: 15, rcode: RCODE.NOTIMP },
  ]
  for (const c of cases) {
    const out = encodeResponse(response(c))
    const p = decode(out)
    t.equal(p.id, 0xbeef)
    t.equal(p.flag_qr, true)
    t.equal(p.flag_aa, c.authoritative)
    t.equal(p.flag_rd, c.recursionDesired)
    t.equal(p.flag_cd, c.checkingDisabled)
    t.equal(p.flag_tc, false)
    t.equal(p.flag_ra, false)
    t.equal(p.flag_z, false)
    t.equal(p.flag_ad, false)
    t.equal(((out[2] as number) >> 3) & 0xf, c.opcode)
  }
})

t.test('rcodes, extended ones split between header and OPT TTL (RFC 6891 6.1.3)', async (t) => {
  for (const rcode of [RCODE.NOERROR, RCODE.FORMERR, RCODE.NXDOMAIN, RCODE.REFUSED, RCODE.BADVERS, RCODE.BADCOOKIE, 0xfff]) {
    const out = encodeResponse(response({ rcode }))
    t.equal(fullRcode(out, decode(out)), rcode, `rcode ${rcode}`)
  }
  const opt = decode(encodeResponse(response({ rcode: RCODE.BADVERS }))).additionals?.[0] as { ednsVersion?: number }
  t.equal(opt.ednsVersion, 0, 'our OPT is version 0')
  // Without OPT only the low bits exist: documented, the caller must add OPT.
  const bare = encodeResponse(response({ rcode: RCODE.BADCOOKIE, edns: undefined }))
  t.equal((bare[3] as number) & 0xf, RCODE.BADCOOKIE & 0xf)
  t.equal(count(bare, 3), 0)
})

t.test('question: copied verbatim (QDCOUNT 1) or absent (QDCOUNT 0)', async (t) => {
  const q = question('MiXeD.Example.COM', RRTYPE.AAAA)
  const out = encodeResponse(response({ questionBytes: q }))
  t.same([...out.subarray(12, 12 + q.length)], [...q])
  t.same(decode(out).questions, [{ name: 'MiXeD.Example.COM', type: 'AAAA', class: 'IN' }])
  const none = encodeResponse(response({ questionBytes: undefined, rcode: RCODE.FORMERR }))
  t.equal(count(none, 0), 0)
  t.equal(none.length, 12 + 11)
})

t.test('OPT: last, DO as given, payload size as given, options in order', async (t) => {
  const out = encodeResponse(
    response({
      answer: [a('www.example.com', 1)],
      additional: [a('ns.example.com', 9)],
      edns: { udpPayloadBytes: 1400, dnssecOk: true, options: [nsidOption(Buffer.from('node-7')), { code: 65001, data: Uint8Array.of(1, 2) }] },
    }),
  )
  const p = decode(out)
  const add = p.additionals ?? []
  t.equal(add.length, 2)
  const opt = add[1] as { type: string; udpPayloadSize: number; flag_do: boolean; options: Array<{ code: number; data: Buffer }> }
  t.equal(opt.type, 'OPT')
  t.equal(opt.udpPayloadSize, 1400)
  t.equal(opt.flag_do, true)
  t.same(
    opt.options.map((o) => [o.code, o.data.toString('hex')]),
    [
      [3, Buffer.from('node-7').toString('hex')],
      [65001, '0102'],
    ],
  )
})

// ---------- EDNS option builders ----------

t.test('clientSubnetOption echoes family/source, sets scope, truncates address', async (t) => {
  const cases: Array<{
    name: string
    ecs: Parameters<typeof clientSubnetOption>[0]
    scope: number
    expect: { family: number; sourcePrefixLength: number; scopePrefixLength: number; ip: string; dataLen: number }
  }> = [
    {
      name: 'IPv4 /24 scope 16',
      ecs: { family: 1, sourcePrefixLen: 24, scopePrefixLen: 0, address: Uint8Array.of(192, 0, 2, 0) },
      scope: 16,
      expect: { family: 1, sourcePrefixLength: 24, scopePrefixLength: 16, ip: '192.0.2.0', dataLen: 7 },
    },
    {
      name: 'IPv4 /20, stray bits masked',
      ecs: { family: 1, sourcePrefixLen: 20, scopePrefixLen: 0, address: Uint8Array.of(198, 51, 100, 77) },
      scope: 24,
      expect: { family: 1, sourcePrefixLength: 20, scopePrefixLength: 24, ip: '198.51.96.0', dataLen: 7 },
    },
    {
      name: 'IPv4 /0: no address bytes, scope 0',
      ecs: { family: 1, sourcePrefixLen: 0, scopePrefixLen: 0, address: new Uint8Array(4) },
      scope: 0,
      expect: { family: 1, sourcePrefixLength: 0, scopePrefixLength: 0, ip: '0.0.0.0', dataLen: 4 },
    },
    {
      name: 'IPv6 /56, scope longer than source is legal',
      ecs: { family: 2, sourcePrefixLen: 56, scopePrefixLen: 0, address: Uint8Array.of(0x20, 1, 0x0d, 0xb8, 0, 1, 0x23, 0, 0, 0, 0, 0, 0, 0, 0, 0) },
      scope: 64,
      expect: { family: 2, sourcePrefixLength: 56, scopePrefixLength: 64, ip: '2001:db8:1:2300::', dataLen: 11 },
    },
    {
      name: 'scope clamped to the family maximum',
      ecs: { family: 1, sourcePrefixLen: 24, scopePrefixLen: 0, address: Uint8Array.of(10, 1, 2, 0) },
      scope: 200,
      expect: { family: 1, sourcePrefixLength: 24, scopePrefixLength: 32, ip: '10.1.2.0', dataLen: 7 },
    },
    {
      name: 'negative scope clamped to 0',
      ecs: { family: 2, sourcePrefixLen: 48, scopePrefixLen: 0, address: new Uint8Array(16) },
      scope: -3,
      expect: { family: 2, sourcePrefixLength: 48, scopePrefixLength: 0, ip: '::', dataLen: 10 },
    },
  ]
  for (const c of cases) {
    const option = clientSubnetOption(c.ecs, c.scope)
    t.equal(option.code, 8, c.name)
    t.equal(option.data.length, c.expect.dataLen, `${c.name}: data length`)
    const out = encodeResponse(response({ edns: { ...EDNS, options: [option] } }))
    const opt = decode(out).additionals?.[0] as OptAnswer
    t.match(opt.options[0], { family: c.expect.family, sourcePrefixLength: c.expect.sourcePrefixLength, scopePrefixLength: c.expect.scopePrefixLength, ip: c.expect.ip }, c.name)
  }
})

t.test('ECS round trip: a decoded query ECS echoed by the encoder', async (t) => {
  const wire = dnsPacket.encode({
    type: 'query',
    id: 77,
    questions: [{ type: 'A', name: 'api.edge.example.net' }],
    additionals: [optRecord({ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 'CLIENT_SUBNET', family: 1, sourcePrefixLength: 22, scopePrefixLength: 0, ip: '203.0.112.0' }] })],
  })
  const r = decodeQuery(wire)
  if (r.kind !== 'query' || r.query.edns?.clientSubnet === undefined) throw new Error('decode failed')
  const option: EdnsOption = clientSubnetOption(r.query.edns.clientSubnet, 20)
  const out = encodeResponse(response({ id: r.query.id, questionBytes: r.query.questionBytes, edns: { ...EDNS, options: [option] } }))
  const opt = decode(out).additionals?.[0] as OptAnswer
  t.match(opt.options[0], { code: 8, family: 1, sourcePrefixLength: 22, scopePrefixLength: 20, ip: '203.0.112.0' })
})

// ---------- compression ----------

t.test('compression: exact optimal sizes, smaller than uncompressed', async (t) => {
  const cases: Array<{ name: string; r: Response; bytes: number; packet: dnsPacket.Packet }> = [
    {
      // 12 header + 21 question; CNAME: ptr 2 + 10 + "edge" 5 + ptr 2 = 19;
      // A: ptr 2 + 10 + 4 = 16; OPT 11.
      name: 'CNAME to a sibling, then its A',
      r: response({ answer: [cname('www.example.com', 'edge.example.com'), a('edge.example.com', 1)] }),
      bytes: 12 + 21 + 19 + 16 + 11,
      packet: {
        type: 'response',
        questions: [{ type: 'A', name: 'www.example.com' }],
        answers: [
          { type: 'CNAME', name: 'www.example.com', data: 'edge.example.com', ttl: 300 },
          { type: 'A', name: 'edge.example.com', data: '192.0.2.1', ttl: 60 },
        ],
        additionals: [optRecord({ type: 'OPT', name: '.', udpPayloadSize: 1232 })],
      },
    },
    {
      // Referral: question www.sub.example.com (25 with type/class); NS owner
      // points into the question (2) + 10 + "ns1" 4 + ptr 2 = 18, twice; glue
      // owners point at the NS rdata names: 2 + 10 + 4 = 16, twice; no OPT.
      name: 'referral with glue',
      r: response({
        questionBytes: question('www.sub.example.com'),
        authoritative: false,
        authority: [ns('sub.example.com', 'ns1.sub.example.com'), ns('sub.example.com', 'ns2.sub.example.com')],
        additional: [a('ns1.sub.example.com', 1), a('ns2.sub.example.com', 2)],
        requiredAdditional: 2,
        edns: undefined,
      }),
      bytes: 12 + 25 + 18 + 18 + 16 + 16,
      packet: {
        type: 'response',
        questions: [{ type: 'A', name: 'www.sub.example.com' }],
        authorities: [
          { type: 'NS', name: 'sub.example.com', data: 'ns1.sub.example.com', ttl: 3600 },
          { type: 'NS', name: 'sub.example.com', data: 'ns2.sub.example.com', ttl: 3600 },
        ],
        additionals: [
          { type: 'A', name: 'ns1.sub.example.com', data: '192.0.2.1', ttl: 60 },
          { type: 'A', name: 'ns2.sub.example.com', data: '192.0.2.2', ttl: 60 },
        ],
      },
    },
    {
      // SRV target is written whole (RFC 2782: never compressed) but is a
      // pointer target afterwards, as in Knot: SRV: ptr 2 + 10 + 6 +
      // "srv.example.com" 17 = 35; the A for the target: ptr 2 + 10 + 4 = 16.
      name: 'SRV target uncompressed, then pointed at',
      r: response({
        questionBytes: question('_https._tcp.example.com'),
        answer: [srv('_https._tcp.example.com', 'srv.example.com')],
        additional: [a('srv.example.com', 3)],
      }),
      bytes: 12 + 29 + 35 + 16 + 11,
      packet: {
        type: 'response',
        questions: [{ type: 'A', name: '_https._tcp.example.com' }],
        answers: [{ type: 'SRV', name: '_https._tcp.example.com', data: { priority: 10, weight: 5, port: 443, target: 'srv.example.com' }, ttl: 60 }],
        additionals: [
          { type: 'A', name: 'srv.example.com', data: '192.0.2.3', ttl: 60 },
          optRecord({ type: 'OPT', name: '.', udpPayloadSize: 1232 }),
        ],
      },
    },
  ]
  for (const c of cases) {
    const out = encodeResponse(c.r)
    t.equal(out.length, c.bytes, `${c.name}: size`)
    const uncompressed = dnsPacket.encode(c.packet)
    t.ok(out.length < uncompressed.length, `${c.name}: ${out.length} < ${uncompressed.length} uncompressed`)
    const p = decode(out)
    const strip = (xs: dnsPacket.Answer[] | undefined): unknown[] =>
      (xs ?? []).map((x) => ('data' in x ? { name: x.name, type: x.type, data: x.data } : { type: x.type }))
    t.same(strip(p.answers), strip(c.packet.answers), `${c.name}: answers`)
    t.same(strip(p.authorities), strip(c.packet.authorities), `${c.name}: authorities`)
    t.same(strip(p.additionals), strip(c.packet.additionals), `${c.name}: additionals`)
  }
})

t.test("names at or below the qname echo the client's case", async (t) => {
  const out = encodeResponse(
    response({
      questionBytes: question('WwW.ExAmple.COM'),
      answer: [cname('www.example.com', 'edge.example.com'), a('edge.example.com', 1)],
      authority: [ns('example.com', 'ns1.example.com')],
    }),
  )
  const p = decode(out)
  const answers = (p.answers ?? []) as Array<{ name: string; data: unknown }>
  t.equal(answers[0]?.name, 'WwW.ExAmple.COM')
  t.equal(answers[0]?.data, 'edge.ExAmple.COM')
  t.equal(answers[1]?.name, 'edge.ExAmple.COM')
  t.equal((p.authorities ?? [])[0]?.name, 'ExAmple.COM')
})

t.test('escaped labels are written as raw bytes', async (t) => {
  const out = encodeResponse(response({ questionBytes: undefined, answer: [a('a\\.b.\\065\\032z.example', 1)] }))
  // 12 header, then the owner: 3 "a.b", 3 "A z", 7 "example", 0.
  t.same([...out.subarray(12, 12 + 17)], [3, 0x61, 0x2e, 0x62, 3, 0x41, 0x20, 0x7a, 7, ...Buffer.from('example'), 0])
})

t.test('no question: records still compress against each other', async (t) => {
  const out = encodeResponse(response({ questionBytes: undefined, answer: [a('x.example.org', 1), a('y.example.org', 2)], edns: undefined }))
  // first owner 15 bytes uncompressed; second "y" 2 + ptr 2.
  t.equal(out.length, 12 + (15 + 14) + (4 + 14))
  t.same(
    (decode(out).answers ?? []).map((x) => x.name),
    ['x.example.org', 'y.example.org'],
  )
})

t.test('pointer targets stop at offset 0x3fff; big TCP answers stay decodable', async (t) => {
  const answer: ResourceRecord[] = []
  for (let i = 0; i < 1500; i++) answer.push(cname(`h${i}.www.example.com`, `t${i}.example.net`))
  answer.push(a('t1499.example.net', 1), a('t3.example.net', 3))
  const out = encodeResponse(response({ answer, maxBytes: 65535 }))
  t.ok(out.length > 0x4000)
  const p = decode(out)
  t.equal(p.answers?.length, 1502)
  t.equal((p.answers?.[1000] as { data: string }).data, 't1000.example.net')
  t.equal(p.answers?.[1501]?.name, 't3.example.net')
  t.equal(p.answers?.[1500]?.name, 't1499.example.net')
})

// ---------- truncation ----------

const manyA = (n: number, name = 'www.example.com'): ResourceRecord[] => Array.from({ length: n }, (_, i) => a(name, i))

t.test('truncation boundaries with the OPT reserved first', async (t) => {
  // 512 - 12 header - 21 question - OPT (11 + 4 + 20 NSID) = 444 = 27 A records of 16.
  const edns: ResponseEdns = { ...EDNS, options: [nsidOption(new Uint8Array(20).fill(0x6e))] }
  const fits = encodeResponse(response({ answer: manyA(27), edns, maxBytes: 512 }))
  t.equal(decode(fits).flag_tc, false)
  t.equal(count(fits, 1), 27)
  t.equal(fits.length, 12 + 21 + 27 * 16 + 35)

  const over = encodeResponse(response({ answer: manyA(28), edns, maxBytes: 512 }))
  const p = decode(over)
  t.equal(p.flag_tc, true, 'TC set')
  t.ok(over.length <= 512)
  t.equal(count(over, 1), 0, 'minimal: no answers')
  t.equal(count(over, 2), 0)
  t.equal(count(over, 3), 1, 'OPT kept')
  t.equal(p.additionals?.[0]?.type, 'OPT')
  t.same(p.questions, [{ name: 'www.example.com', type: 'A', class: 'IN' }])
  t.equal(over.length, 12 + 21 + 35)
})

t.test('authority that does not fit truncates', async (t) => {
  const soaLike: ResourceRecord = { name: 'example.com', type: RRTYPE.TXT, class: 1, ttlSec: 60, rdata: [new Uint8Array(600)] }
  const out = encodeResponse(response({ answer: [a('www.example.com', 1)], authority: [soaLike], maxBytes: 512 }))
  t.equal(decode(out).flag_tc, true)
  t.equal(count(out, 1) + count(out, 2), 0)
})

t.test('optional additional dropped whole-RRset, silently (RFC 2181 section 9)', async (t) => {
  // Room after question + 20 answers (33 + 320) and OPT (11): 148 bytes.
  // AAAA RRset of x: 3 x 28 = 84 (the first compresses to "x" + ptr: 2+2... all
  // 4+10+16 = 30 then 2+10+16 = 28); the next A RRset of y: 20 + 16 = 36; a
  // second AAAA set of z: 30 + 28 = 58 does not fit and is left out whole.
  const additional = [aaaa('x.example.com', 1), aaaa('x.example.com', 2), aaaa('x.example.com', 3), a('y.example.com', 1), a('y.example.com', 2), aaaa('z.example.com', 1), aaaa('z.example.com', 2), a('w.example.com', 9)]
  const out = encodeResponse(response({ answer: manyA(20), additional, maxBytes: 512 }))
  const p = decode(out)
  t.equal(p.flag_tc, false, 'no TC for optional data')
  t.ok(out.length <= 512)
  const names = (p.additionals ?? []).map((x) => `${x.name}/${x.type}`)
  t.same(names, ['x.example.com/AAAA', 'x.example.com/AAAA', 'x.example.com/AAAA', 'y.example.com/A', 'y.example.com/A', 'w.example.com/A', './OPT'])
  t.equal(count(out, 3), 7)
})

t.test('a half-written optional RRset is taken back', async (t) => {
  // 512 - 33 - 11 = 468; 27 answers = 432 leaves 36: the first AAAA of x (30)
  // fits, the second does not, so neither is sent; a later A (20) fits.
  const additional = [aaaa('x.example.com', 1), aaaa('x.example.com', 2), a('y.example.com', 1)]
  const out = encodeResponse(response({ answer: manyA(27), additional, maxBytes: 512 }))
  const p = decode(out)
  t.equal(p.flag_tc, false)
  t.same((p.additionals ?? []).map((x) => `${x.name}/${x.type}`), ['y.example.com/A', './OPT'])
  // The y owner must not point at the taken-back x bytes: it decodes as y.
  t.equal(p.additionals?.[0]?.name, 'y.example.com')
})

t.test('required glue that does not fit sets TC', async (t) => {
  const glue = [aaaa('ns1.sub.example.com', 1), aaaa('ns1.sub.example.com', 2)]
  const r = response({
    questionBytes: question('www.sub.example.com'),
    authority: [ns('sub.example.com', 'ns1.sub.example.com')],
    answer: manyA(26, 'www.sub.example.com'),
    additional: glue,
    requiredAdditional: 2,
    maxBytes: 512,
  })
  const out = encodeResponse(r)
  t.equal(decode(out).flag_tc, true)
  t.equal(count(out, 1) + count(out, 2), 0)
  // The same glue as optional: dropped without TC.
  const optional = encodeResponse({ ...r, requiredAdditional: 0 })
  t.equal(decode(optional).flag_tc, false)
  t.equal(count(optional, 3), 1, 'only the OPT')
})

t.test('maxBytes clamped to 512..65535', async (t) => {
  const small = encodeResponse(response({ answer: manyA(20), maxBytes: 100 }))
  t.equal(decode(small).flag_tc, false, 'treated as 512')
  t.equal(count(small, 1), 20)
  const nan = encodeResponse(response({ answer: manyA(20), maxBytes: Number.NaN }))
  t.equal(count(nan, 1), 20)
  const huge = encodeResponse(response({ answer: manyA(4200), maxBytes: 1e9 }))
  t.equal(decode(huge).flag_tc, true, '4200 x 16 > 65535: TC even on TCP')
  const tcp = encodeResponse(response({ answer: manyA(3000), maxBytes: 65535 }))
  t.equal(decode(tcp).answers?.length, 3000)
})

t.test('OPT options that cannot fit are dropped, the OPT stays', async (t) => {
  const out = encodeResponse(response({ edns: { ...EDNS, options: [nsidOption(new Uint8Array(600))] }, maxBytes: 512 }))
  const p = decode(out)
  t.equal(p.additionals?.[0]?.type, 'OPT')
  t.same((p.additionals?.[0] as { options: unknown[] }).options, [])
  t.ok(out.length <= 512)
})

// ---------- buffers and errors ----------

t.test('each result is a fresh copy', async (t) => {
  const first = encodeResponse(response({ answer: [a('www.example.com', 1)] }))
  const snapshot = Buffer.from(first)
  encodeResponse(response({ id: 1, answer: manyA(10) }))
  t.same(Buffer.from(first), snapshot)
})

t.test('invalid records throw coded errors, and the encoder recovers', async (t) => {
  const cases: Array<[string, ResourceRecord]> = [
    ['STEER_ERR_WIRE_LABEL_TOO_LONG', a(`${'x'.repeat(64)}.example`, 1)],
    ['STEER_ERR_WIRE_EMPTY_LABEL', a('a..example', 1)],
    ['STEER_ERR_WIRE_NAME_TOO_LONG', a(Array.from({ length: 5 }, () => 'y'.repeat(60)).join('.'), 1)],
    ['STEER_ERR_WIRE_NAME_TOO_LONG', a(Array.from({ length: 200 }, () => 'z').join('.'), 1)],
    ['STEER_ERR_WIRE_RDATA_TOO_LONG', { name: 'big.example', type: 16, class: 1, ttlSec: 1, rdata: [new Uint8Array(40000), new Uint8Array(40000)] }],
  ]
  for (const [code, rr] of cases) {
    t.throws(() => encodeResponse(response({ answer: [rr], maxBytes: 65535 })), { code }, code)
  }
  const ok = encodeResponse(response({ answer: [a('www.example.com', 1)] }))
  t.equal(decode(ok).answers?.length, 1)
})

t.test('TTL written as given, out-of-range as 0', async (t) => {
  const out = encodeResponse(response({ answer: [a('www.example.com', 1, 86400), a('www.example.com', 2, -5), a('www.example.com', 3, 2 ** 32)] }))
  t.same((decode(out).answers ?? []).map((x) => (x as { ttl: number }).ttl), [86400, 0, 0])
})
