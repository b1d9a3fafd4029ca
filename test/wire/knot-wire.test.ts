// Wire-level differential against Knot DNS (knotd, via test/helpers/knot.ts):
// 1. for the same records, our encoder's message is never larger than Knot's
//    and carries the same names with the same case;
// 2. for malformed and unusual queries, our decoder's verdict matches Knot's
//    rcode, except where we differ on purpose (each such row says why).
// Fails (never skips) when knotd is missing: nothing is proven without it.
import t from 'tap'
import dnsPacket from 'dns-packet'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startKnot } from '../helpers/knot.js'
import { DnsTimeoutError, encodeQuery, queryUdp } from '../helpers/dns-client.js'
import { RCODE, decodeQuery, encodeResponse } from '../../src/wire/index.js'
import type { RdataPart, ResourceRecord } from '../../src/wire/index.js'

const ZONE = `$ORIGIN example.com.
$TTL 300
@           SOA   ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300
@           NS    ns1
@           NS    ns2
ns1         A     192.0.2.53
ns2         AAAA  2001:db8::53
www         CNAME edge
edge        A     192.0.2.1
edge        A     192.0.2.2
edge        AAAA  2001:db8::1
mail        MX    10 mx1
mx1         A     192.0.2.25
_https._tcp SRV   10 5 443 edge
sub         NS    ns1.sub
sub         NS    ns.other.example.
ns1.sub     A     192.0.2.99
txt         TXT   "hello" "world"
${Array.from({ length: 40 }, (_, i) => `many A 10.0.0.${i + 1}`).join('\n')}
`

const TIMEOUT_MS = 1000

const u16 = (n: number): Uint8Array => Uint8Array.of((n >> 8) & 0xff, n & 0xff)
const lower = (name: string): string => (name === '.' ? '' : name.toLowerCase())

/** dns-packet's view of a record, turned into ours (names lowercased, the RFC 3597 compress flags). */
function toRecord(a: dnsPacket.Answer): ResourceRecord {
  const type = typeNumber(a.type)
  const d = (a as { data: unknown }).data
  let rdata: RdataPart[]
  switch (a.type) {
    case 'A':
      rdata = [dnsPacket.a.encode(d as string).subarray(2)]
      break
    case 'AAAA':
      rdata = [dnsPacket.aaaa.encode(d as string).subarray(2)]
      break
    case 'TXT':
      rdata = [dnsPacket.txt.encode(d as Buffer[]).subarray(2)]
      break
    case 'CNAME':
    case 'NS':
      rdata = [{ name: lower(d as string), compress: true }]
      break
    case 'MX': {
      const mx = d as { preference: number; exchange: string }
      rdata = [u16(mx.preference), { name: lower(mx.exchange), compress: true }]
      break
    }
    case 'SRV': {
      const srv = d as { priority: number; weight: number; port: number; target: string }
      rdata = [u16(srv.priority), u16(srv.weight), u16(srv.port), { name: lower(srv.target), compress: false }]
      break
    }
    case 'SOA': {
      const soa = d as { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }
      const nums = Buffer.alloc(20)
      ;[soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum].forEach((n, i) => nums.writeUInt32BE(n, i * 4))
      rdata = [{ name: lower(soa.mname), compress: true }, { name: lower(soa.rname), compress: true }, nums]
      break
    }
    default:
      throw new Error(`test converter lacks ${a.type}`)
  }
  return { name: lower(a.name), type, class: 1, ttlSec: (a as { ttl?: number }).ttl ?? 0, rdata }
}

function typeNumber(type: string): number {
  const numbers: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33 }
  const n = numbers[type]
  if (n === undefined) throw new Error(`unknown type ${type}`)
  return n
}

t.test('differential against knotd', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'steerdns-wire-knot-'))
  const file = join(dir, 'example.com.zone')
  writeFileSync(file, ZONE)
  const knot = await startKnot([{ origin: 'example.com', file }])
  t.comment(`reference: ${knot.version}`)
  t.teardown(async () => {
    await knot.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const ask = async (wire: Uint8Array): Promise<Buffer | 'drop'> => {
    try {
      return await queryUdp(knot.host, knot.port, wire, TIMEOUT_MS)
    } catch (err) {
      if (err instanceof DnsTimeoutError) return 'drop'
      throw err
    }
  }

  t.test('encoder: same records, never larger than Knot, same names and case', async (t) => {
    const queries: Array<[string, number]> = [
      ['WwW.Example.COM', 1],
      ['EDGE.example.com', 28],
      ['Mail.Example.Com', 15],
      ['_HTTPS._tcp.example.com', 33],
      ['x.SUB.example.com', 1],
      ['nothere.Example.com', 1],
      ['example.COM', 2],
      ['example.com', 6],
      ['Many.example.com', 1],
      ['txt.example.com', 16],
    ]
    for (const [name, qtype] of queries) {
      const query = encodeQuery({ id: 4242, name, qtype, edns: { udpPayloadBytes: 1232 } })
      const theirs = await ask(query)
      if (theirs === 'drop') {
        t.fail(`knotd did not answer ${name}`)
        continue
      }
      const decoded = decodeQuery(query)
      if (decoded.kind !== 'query') throw new Error('our decoder refused a plain query')
      const k = dnsPacket.decode(theirs)
      const additional = (k.additionals ?? []).filter((x) => x.type !== 'OPT')
      const kOpt = (k.additionals ?? []).find((x) => x.type === 'OPT') as { udpPayloadSize: number } | undefined
      const ours = encodeResponse({
        id: k.id ?? 0,
        opcode: 0,
        rcode: theirs.readUInt16BE(2) & 0xf,
        authoritative: k.flag_aa ?? false,
        recursionDesired: k.flag_rd ?? false,
        checkingDisabled: k.flag_cd ?? false,
        questionBytes: decoded.query.questionBytes,
        answer: (k.answers ?? []).map(toRecord),
        authority: (k.authorities ?? []).map(toRecord),
        additional: additional.map(toRecord),
        requiredAdditional: additional.length,
        edns: kOpt === undefined ? undefined : { udpPayloadBytes: kOpt.udpPayloadSize, dnssecOk: false, options: [] },
        maxBytes: 65535,
      })
      t.ok(ours.length <= theirs.length, `${name}/${qtype}: ours ${ours.length} <= knot ${theirs.length}`)
      const o = dnsPacket.decode(Buffer.from(ours))
      // Same content, names compared without case: where a name only shares a
      // suffix with the qname we echo the client's spelling of that suffix and
      // Knot writes the zone's (both fine: names are case-insensitive).
      const view = (p: dnsPacket.DecodedPacket): unknown =>
        JSON.parse(
          JSON.stringify({
            flags: [p.flag_aa, p.flag_tc, p.flag_rd, p.rcode],
            sections: [p.answers, p.authorities, p.additionals].map((s) =>
              (s ?? []).map((r) => ({ ...r, ...('options' in r ? { options: [] } : {}) })),
            ),
          }).toLowerCase(),
        )
      t.same(view(o), view(k), `${name}/${qtype}: same message content`)
      // Exact case where it matters: the question, and owners equal to the qname.
      const atQname = (p: dnsPacket.DecodedPacket): string[] =>
        [...(p.answers ?? []), ...(p.authorities ?? [])].map((r) => r.name).filter((n) => n.toLowerCase() === name.toLowerCase())
      t.same(o.questions, k.questions, `${name}/${qtype}: question echoed alike`)
      t.same(atQname(o), atQname(k), `${name}/${qtype}: qname case echoed alike`)
    }
  })

  t.test('decoder: verdicts match Knot except where documented', async (t) => {
    const header = (flags: number, qd: number, an: number, ar: number): number[] => [0x12, 0x34, flags >> 8, flags & 0xff, 0, qd, 0, an, 0, 0, 0, ar]
    const q = [...encodeQuery({ id: 0, name: 'www.example.com', qtype: 1 }).subarray(12)]
    const opt = (version = 0, rdata: number[] = [], owner: number[] = [0]): number[] => [...owner, 0, 41, 0x04, 0xd0, 0, version, 0, 0, 0, rdata.length, ...rdata]
    const bytes = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat())
    type Verdict = 'drop' | number
    const cases: Array<{ name: string; wire: Uint8Array; ours: Verdict; knot: Verdict; why?: string }> = [
      { name: 'plain query', wire: bytes(header(0, 1, 0, 0), q), ours: RCODE.NOERROR, knot: RCODE.NOERROR },
      { name: 'QR=1', wire: bytes(header(0x8000, 1, 0, 0), q), ours: 'drop', knot: 'drop' },
      { name: 'opcode 15', wire: bytes(header(15 << 11, 1, 0, 0), q), ours: RCODE.NOTIMP, knot: RCODE.NOTIMP },
      { name: 'QDCOUNT 0', wire: bytes(header(0, 0, 0, 0)), ours: RCODE.FORMERR, knot: RCODE.FORMERR },
      {
        name: 'QDCOUNT 2',
        wire: bytes(header(0, 2, 0, 0), q, q),
        ours: RCODE.FORMERR,
        knot: 'drop',
        why: 'RFC 9619 asks for FORMERR; Knot drops a message whose question does not parse (no amplification either way)',
      },
      {
        name: 'qname pointer',
        wire: bytes(header(0, 1, 0, 0), [0xc0, 12, 0, 1, 0, 1]),
        ours: RCODE.FORMERR,
        knot: 'drop',
        why: 'a malformed question gets FORMERR from us (the brief, RFC 1035 4.1.1); Knot drops it',
      },
      {
        name: 'label type 0x40',
        wire: bytes(header(0, 1, 0, 0), [0x41, 0x61, 0, 0, 1, 0, 1]),
        ours: RCODE.FORMERR,
        knot: 'drop',
        why: 'as for the qname pointer',
      },
      { name: 'trailing garbage', wire: bytes(header(0, 1, 0, 1), q, opt(), [0xff, 0xff]), ours: RCODE.FORMERR, knot: RCODE.FORMERR },
      { name: 'trailing garbage, no EDNS', wire: bytes(header(0, 1, 0, 0), q, [0]), ours: RCODE.FORMERR, knot: RCODE.FORMERR },
      { name: 'two OPT', wire: bytes(header(0, 1, 0, 2), q, opt(), opt()), ours: RCODE.FORMERR, knot: RCODE.FORMERR },
      { name: 'OPT in the answer section', wire: bytes(header(0, 1, 1, 0), q, opt()), ours: RCODE.FORMERR, knot: RCODE.FORMERR },
      { name: 'option overruns RDLENGTH', wire: bytes(header(0, 1, 0, 1), q, opt(0, [0, 3, 0, 8, 1])), ours: RCODE.FORMERR, knot: RCODE.FORMERR },
      { name: 'EDNS version 1', wire: bytes(header(0, 1, 0, 1), q, opt(1)), ours: RCODE.BADVERS, knot: RCODE.BADVERS },
      {
        name: 'OPT owner not root',
        wire: bytes(header(0, 1, 0, 1), q, opt(0, [], [1, 0x61, 0])),
        ours: RCODE.FORMERR,
        knot: RCODE.NOERROR,
        why: 'RFC 6891 6.1.1 requires the root owner; Knot does not check it',
      },
      {
        name: 'ECS scope 24 in a query',
        wire: bytes(header(0, 1, 0, 1), q, opt(0, [0, 8, 0, 7, 0, 1, 24, 24, 192, 0, 2])),
        ours: RCODE.FORMERR,
        knot: RCODE.NOERROR,
        why: 'BIND rejects a query scope (RFC 7871 6: MUST be 0); Knot ignores ECS unless configured, and then zeroes it',
      },
      {
        name: 'COOKIE of 7 bytes',
        wire: bytes(header(0, 1, 0, 1), q, opt(0, [0, 10, 0, 7, 1, 2, 3, 4, 5, 6, 7])),
        ours: RCODE.FORMERR,
        knot: RCODE.NOERROR,
        why: 'RFC 7873 5.2.2 says FORMERR; Knot checks cookies only with its cookies module loaded',
      },
      {
        name: 'opcode 15 with a malformed question',
        wire: bytes(header(15 << 11, 1, 0, 0), [0xc0, 12, 0, 1, 0, 1]),
        ours: RCODE.NOTIMP,
        knot: 'drop',
        why: 'we judge nothing of an opcode we do not implement (DSO, RFC 8490, has another layout); Knot parses first and drops',
      },
    ]
    for (const c of cases) {
      const r = decodeQuery(c.wire)
      const ours: Verdict = r.kind === 'drop' ? 'drop' : r.kind === 'error' ? r.rcode : RCODE.NOERROR
      t.equal(ours, c.ours, `${c.name}: ours`)
      const response = await ask(c.wire)
      let knot: Verdict = 'drop'
      if (response !== 'drop') {
        const p = dnsPacket.decode(response)
        const kOpt = (p.additionals ?? []).find((x) => x.type === 'OPT') as { extendedRcode?: number } | undefined
        knot = ((kOpt?.extendedRcode ?? 0) << 4) | (response.readUInt16BE(2) & 0xf)
      }
      t.equal(knot, c.knot, `${c.name}: knot${c.why !== undefined ? ` (we differ: ${c.why})` : ''}`)
    }
  })
})
