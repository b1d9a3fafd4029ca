// Zone-level rules: SOA and NS at the apex, CNAME exclusivity, out-of-zone and
// occluded data, duplicates and TTL mismatches inside an RRset. Each case is a
// zone written as text; each expected problem names its line.
import t from 'tap'
import { parseZoneText } from '../../src/zone/load-zone-file.js'
import { ZONE_PROBLEM } from '../../src/zone/zone-problem.js'
import type { ZoneProblemCode } from '../../src/zone/zone-problem.js'

const SOA = '@ SOA ns1 hostmaster 1 7200 3600 1209600 300'
const NS = '@ NS ns1'

function check(lines: string[]): ReturnType<typeof parseZoneText> {
  return parseZoneText(['$TTL 3600', ...lines, ''].join('\n'), { origin: 'example.com', fileName: 'v.zone' })
}

const cases: Array<{ name: string; zone: string[]; want: Array<[number, ZoneProblemCode, 'error' | 'warning']> }> = [
  { name: 'a minimal zone is clean', zone: [SOA, NS, 'ns1 A 192.0.2.1'], want: [] },
  { name: 'no SOA', zone: [NS], want: [[0, ZONE_PROBLEM.SOA_MISSING, 'error']] },
  {
    name: 'two different SOAs',
    zone: [SOA, NS, '@ SOA ns1 hostmaster 2 7200 3600 1209600 300'],
    want: [[4, ZONE_PROBLEM.SOA_MULTIPLE, 'error']],
  },
  { name: 'the same SOA twice is a duplicate, not a second SOA', zone: [SOA, NS, SOA], want: [] },
  {
    name: 'SOA below the apex',
    zone: [SOA, NS, 'sub SOA ns1 hostmaster 1 7200 3600 1209600 300'],
    want: [[4, ZONE_PROBLEM.SOA_NOT_AT_APEX, 'error']],
  },
  { name: 'no NS at the apex (reported at the SOA)', zone: [SOA, 'www A 192.0.2.1'], want: [[2, ZONE_PROBLEM.NS_MISSING, 'error']] },
  {
    name: 'CNAME and other data, CNAME first',
    zone: [SOA, NS, 'www CNAME other', 'www A 192.0.2.1'],
    want: [[5, ZONE_PROBLEM.CNAME_AND_OTHER_DATA, 'error']],
  },
  {
    name: 'CNAME and other data, other data first',
    zone: [SOA, NS, 'www MX 10 mail', 'www TXT "x"', 'www CNAME other'],
    want: [[6, ZONE_PROBLEM.CNAME_AND_OTHER_DATA, 'error']],
  },
  {
    name: 'two CNAMEs at one name',
    zone: [SOA, NS, 'www CNAME a', 'www CNAME b'],
    want: [[5, ZONE_PROBLEM.CNAME_MULTIPLE, 'error']],
  },
  { name: 'the same CNAME twice is a duplicate', zone: [SOA, NS, 'www CNAME a', 'www 60 CNAME a'], want: [[5, ZONE_PROBLEM.TTL_MISMATCH, 'warning']] },
  {
    name: 'CNAME may sit beside RRSIG and NSEC',
    zone: [SOA, NS, 'www CNAME a', 'www NSEC \\# 15 01610b6578616d706c6503636f6d00 ', 'www RRSIG \\# 4 00050d02'],
    want: [],
  },
  { name: 'CNAME at the apex', zone: [SOA, NS, '@ CNAME elsewhere.net.'], want: [[4, ZONE_PROBLEM.CNAME_AT_APEX, 'error']] },
  {
    name: 'out-of-zone data',
    zone: [SOA, NS, 'www.example.net. A 192.0.2.1', 'example.com.evil. A 192.0.2.2', 'notexample.com. A 192.0.2.3'],
    want: [
      [4, ZONE_PROBLEM.OUT_OF_ZONE, 'error'],
      [5, ZONE_PROBLEM.OUT_OF_ZONE, 'error'],
      [6, ZONE_PROBLEM.OUT_OF_ZONE, 'error'],
    ],
  },
  {
    name: 'glue below a delegation is fine, other data is occluded',
    zone: [
      SOA,
      NS,
      'sub NS ns.sub',
      'sub DS 1 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      'ns.sub A 192.0.2.1',
      'ns.sub AAAA 2001:db8::1',
      'www.sub TXT "hidden"',
      'sub MX 10 mail',
      'deeper.sub NS ns.elsewhere.net.',
    ],
    want: [
      [8, ZONE_PROBLEM.OCCLUDED, 'warning'],
      [9, ZONE_PROBLEM.OCCLUDED, 'warning'],
      [10, ZONE_PROBLEM.OCCLUDED, 'warning'],
    ],
  },
  {
    name: 'data below a DNAME is occluded (RFC 6672 section 2.4)',
    zone: [SOA, NS, 'old DNAME new.example.net.', 'www.old A 192.0.2.1'],
    want: [[5, ZONE_PROBLEM.OCCLUDED, 'warning']],
  },
  {
    name: 'TTL mismatch: warning at each record that changes it',
    zone: [SOA, NS, 'www 300 A 192.0.2.1', 'www 300 A 192.0.2.2', 'www 60 A 192.0.2.3', 'www 300 A 192.0.2.4'],
    want: [
      [6, ZONE_PROBLEM.TTL_MISMATCH, 'warning'],
      [7, ZONE_PROBLEM.TTL_MISMATCH, 'warning'],
    ],
  },
]

t.test('zone rules', async (t) => {
  for (const c of cases) {
    const r = check(c.zone)
    t.same(
      r.problems.map((p) => [p.line, p.code, p.severity]),
      c.want,
      c.name,
    )
    t.ok(r.problems.every((p) => p.file === 'v.zone'), `${c.name}: file named`)
  }
})

t.test('duplicates collapse silently; the RRset takes the TTL of the last record (as Knot)', async (t) => {
  const r = check([SOA, NS, 'www 300 A 192.0.2.1', 'www 300 A 192.0.2.1', 'www 60 A 192.0.2.2', 'www 600 TXT "x"'])
  t.same(
    r.records.filter((rr) => rr.name === 'www.example.com').map((rr) => [rr.type, rr.ttlSec]),
    [
      [1, 60],
      [1, 60],
      [16, 600],
    ],
  )
  t.same(r.problems.map((p) => p.code), [ZONE_PROBLEM.TTL_MISMATCH])
})

t.test('names compare case-insensitively for every rule', async (t) => {
  const r = check([SOA, NS, 'WWW CNAME a', 'www A 192.0.2.1', 'Www.Example.Com. A 192.0.2.1'])
  t.same(r.problems.map((p) => [p.line, p.code]), [[5, ZONE_PROBLEM.CNAME_AND_OTHER_DATA]])
  t.equal(r.records.filter((rr) => rr.type === 1).length, 1, 'case variants of one record are one record')
})

t.test('out-of-zone records are dropped from the result', async (t) => {
  const r = check([SOA, NS, 'www.example.net. A 192.0.2.1'])
  t.equal(r.records.length, 2)
})
