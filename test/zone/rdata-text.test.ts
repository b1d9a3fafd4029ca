// Rdata text → bytes for every supported type, checked against dns-packet as an
// independent encoder; RFC 3597 generic rdata; and one problem per bad field.
import t from 'tap'
import dnsPacket from 'dns-packet'
import { parseZoneText } from '../../src/zone/load-zone-file.js'
import { rdataToWire } from '../../src/zone/rdata-wire.js'
import { ZONE_PROBLEM } from '../../src/zone/zone-problem.js'
import { isRdataName } from '../../src/wire/index.js'
import type { ResourceRecord } from '../../src/wire/index.js'

const HEADER = [
  '$ORIGIN example.com.',
  '$TTL 3600',
  '@ SOA ns1 hostmaster 1 7200 3600 1209600 300',
  '@ NS ns1',
  'ns1 A 192.0.2.1',
  '',
].join('\n')
const HEADER_LINES = 5

function parseRecord(line: string): { rrs: ResourceRecord[]; problems: ReturnType<typeof parseZoneText>['problems'] } {
  const r = parseZoneText(HEADER + line + '\n', { origin: 'example.com', fileName: 't.zone' })
  // SOA cases put a second SOA at x: that zone-level error is validate-zone's test.
  const problems = r.problems.filter((p) => p.code !== ZONE_PROBLEM.SOA_NOT_AT_APEX)
  return { rrs: r.records.filter((rr) => rr.name === 'x.example.com'), problems }
}

/** dns-packet's rdata for a record, without its 2-byte RDLENGTH prefix. */
function packetRdata(type: string, data: unknown): string {
  // record() is exported by dns-packet but missing from its type definitions.
  const lib = dnsPacket as unknown as { record: (type: string) => { encode: (d: unknown) => Buffer } }
  return lib.record(type).encode(data).subarray(2).toString('hex')
}

function hex(rr: ResourceRecord | undefined): string {
  return rr === undefined ? '(none)' : Buffer.from(rdataToWire(rr.rdata)).toString('hex')
}

function compressFlags(rr: ResourceRecord | undefined): boolean[] {
  return (rr?.rdata ?? []).filter(isRdataName).map((p) => p.compress)
}

const cases: Array<{ text: string; type: string; data: unknown; compress?: boolean[] }> = [
  { text: 'x A 192.0.2.7', type: 'A', data: '192.0.2.7' },
  { text: 'x A 0.0.0.0', type: 'A', data: '0.0.0.0' },
  { text: 'x AAAA 2001:db8::1', type: 'AAAA', data: '2001:db8::1' },
  { text: 'x AAAA ::', type: 'AAAA', data: '::' },
  { text: 'x AAAA ::ffff:192.0.2.1', type: 'AAAA', data: '::ffff:192.0.2.1' },
  { text: 'x AAAA 2001:DB8:0:0:1:0:0:1', type: 'AAAA', data: '2001:db8::1:0:0:1' },
  { text: 'x NS ns.other.net.', type: 'NS', data: 'ns.other.net', compress: [true] },
  { text: 'x CNAME www', type: 'CNAME', data: 'www.example.com', compress: [true] },
  { text: 'x CNAME @', type: 'CNAME', data: 'example.com', compress: [true] },
  { text: 'x CNAME WWW.Example.COM.', type: 'CNAME', data: 'www.example.com', compress: [true] },
  { text: 'x PTR host.example.net.', type: 'PTR', data: 'host.example.net', compress: [true] },
  { text: 'x DNAME target.net.', type: 'DNAME', data: 'target.net', compress: [false] },
  { text: 'x MX 10 mail', type: 'MX', data: { preference: 10, exchange: 'mail.example.com' }, compress: [true] },
  { text: 'x MX 0 .', type: 'MX', data: { preference: 0, exchange: '.' }, compress: [true] },
  {
    text: 'x SOA ns1 hostmaster.example.com. 2024010101 1h 15m 2w 5M',
    type: 'SOA',
    data: { mname: 'ns1.example.com', rname: 'hostmaster.example.com', serial: 2024010101, refresh: 3600, retry: 900, expire: 1209600, minimum: 300 },
    compress: [true, true],
  },
  {
    text: 'x SOA ns1 hostmaster ( 4294967295 ; serial\n 7200 ; refresh\n 3600 1209600 300 )',
    type: 'SOA',
    data: { mname: 'ns1.example.com', rname: 'hostmaster.example.com', serial: 4294967295, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300 },
  },
  { text: 'x TXT "hello world"', type: 'TXT', data: ['hello world'] },
  { text: 'x TXT unquoted', type: 'TXT', data: ['unquoted'] },
  { text: 'x TXT "a" b "c d"', type: 'TXT', data: ['a', 'b', 'c d'] },
  { text: 'x TXT ""', type: 'TXT', data: [''] },
  { text: 'x TXT "semi;colon" "q\\"uote" "back\\\\slash"', type: 'TXT', data: ['semi;colon', 'q"uote', 'back\\slash'] },
  { text: 'x TXT "\\065\\066C" \\(paren\\)', type: 'TXT', data: ['ABC', '(paren)'] },
  { text: 'x TXT "caf\u00e9"', type: 'TXT', data: [Buffer.from('café', 'utf8')] },
  { text: 'x SPF "v=spf1 -all"', type: 'TXT', data: ['v=spf1 -all'] },
  { text: 'x HINFO "Intel i7" Linux', type: 'HINFO', data: { cpu: 'Intel i7', os: 'Linux' } },
  { text: 'x SRV 10 60 5060 sip', type: 'SRV', data: { priority: 10, weight: 60, port: 5060, target: 'sip.example.com' }, compress: [false] },
  { text: 'x SRV 0 0 0 .', type: 'SRV', data: { priority: 0, weight: 0, port: 0, target: '.' }, compress: [false] },
  { text: 'x CAA 0 issue "ca.example.net"', type: 'CAA', data: { flags: 0, tag: 'issue', value: 'ca.example.net' } },
  { text: 'x CAA 128 iodef mailto:sec@example.com', type: 'CAA', data: { flags: 128, tag: 'iodef', value: 'mailto:sec@example.com' } },
  { text: 'x CAA 0 issuewild ";"', type: 'CAA', data: { flags: 0, tag: 'issuewild', value: ';' } },
  { text: 'x CAA 0 issue ""', type: 'CAA', data: { flags: 0, tag: 'issue', value: '' } },
  {
    text: 'x NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .',
    type: 'NAPTR',
    data: { order: 100, preference: 10, flags: 'u', services: 'E2U+sip', regexp: '!^.*$!sip:info@example.com!', replacement: '.' },
    compress: [false],
  },
  {
    text: 'x NAPTR 102 10 "s" "SIP+D2U" "" _sip._udp',
    type: 'NAPTR',
    data: { order: 102, preference: 10, flags: 's', services: 'SIP+D2U', regexp: '', replacement: '_sip._udp.example.com' },
    compress: [false],
  },
  {
    text: 'x DS 12345 13 2 2bb183af5f22588179a53b0a98631fad1a292118f3e0b3a0c2d2e4f0a1b2c3d4',
    type: 'DS',
    data: { keyTag: 12345, algorithm: 13, digestType: 2, digest: Buffer.from('2bb183af5f22588179a53b0a98631fad1a292118f3e0b3a0c2d2e4f0a1b2c3d4', 'hex') },
  },
  {
    text: 'x DS 60485 RSASHA1 1 ( 2BB183AF5F22588179A5\n 3B0A98631FAD1A292118 )',
    type: 'DS',
    data: { keyTag: 60485, algorithm: 5, digestType: 1, digest: Buffer.from('2bb183af5f22588179a53b0a98631fad1a292118', 'hex') },
  },
  {
    text: 'x SSHFP 4 2 ( 123456789abcdef67890123456789abc def67890123456789abcdef123456789 )',
    type: 'SSHFP',
    data: { algorithm: 4, hash: 2, fingerprint: '123456789abcdef67890123456789abcdef67890123456789abcdef123456789' },
  },
  {
    text: 'x TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    type: 'TLSA',
    data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'hex') },
  },
]

t.test('text rdata matches dns-packet bytes', async (t) => {
  for (const c of cases) {
    const { rrs, problems } = parseRecord(c.text)
    t.same(problems, [], `${c.text}: no problems`)
    t.equal(rrs.length, 1, `${c.text}: one record`)
    t.equal(hex(rrs[0]), packetRdata(c.type, c.data), c.text)
    if (c.compress !== undefined) t.same(compressFlags(rrs[0]), c.compress, `${c.text}: compression flags`)
  }
})

t.test('long TXT strings are split at 255 bytes, as Knot does', async (t) => {
  const long = 'a'.repeat(300)
  const { rrs, problems } = parseRecord(`x TXT "${long}"`)
  t.same(problems, [])
  t.equal(hex(rrs[0]), packetRdata('TXT', ['a'.repeat(255), 'a'.repeat(45)]))
})

t.test('RFC 3597 generic rdata', async (t) => {
  const generic: Array<{ text: string; type: number; hex: string; names?: string[] }> = [
    { text: 'x TYPE65280 \\# 4 0a000001', type: 65280, hex: '0a000001' },
    { text: 'x TYPE65280 \\# 0', type: 65280, hex: '' },
    { text: 'x TYPE65280 \\# ( 4 0a00\n 0001 )', type: 65280, hex: '0a000001' },
    { text: 'x A \\# 4 c0000207', type: 1, hex: 'c0000207' },
    { text: 'x CLASS1 TYPE1 192.0.2.7', type: 1, hex: 'c0000207' },
    // Names inside generic rdata of known types are decoded (so lookups see them) and lowercased.
    { text: 'x CNAME \\# 13 03575757076578616d706c6500', type: 5, hex: '03777777076578616d706c6500', names: ['www.example'] },
    { text: 'x MX \\# 6 000a026d7800', type: 15, hex: '000a026d7800', names: ['mx'] },
    { text: 'x SRV \\# 11 0001000200030373697000', type: 33, hex: '0001000200030373697000', names: ['sip'] },
    { text: 'x TXT \\# 3 026869', type: 16, hex: '026869' },
    { text: 'x TYPE99 \\# 3 026869', type: 99, hex: '026869' },
  ]
  for (const g of generic) {
    const { rrs, problems } = parseRecord(g.text)
    t.same(problems, [], `${g.text}: no problems`)
    t.equal(rrs[0]?.type, g.type, `${g.text}: type`)
    t.equal(hex(rrs[0]), g.hex, g.text)
    if (g.names !== undefined) t.same(rrs[0]?.rdata.filter(isRdataName).map((p) => p.name), g.names, `${g.text}: names`)
  }
  const { rrs, problems } = parseRecord('x SOA \\# 29 036e733100 02686d00 0000000a 00000e10 00000384 00093a80 0000012c')
  t.same(problems, [])
  t.same(rrs[0]?.rdata.filter(isRdataName), [{ name: 'ns1', compress: true }, { name: 'hm', compress: true }], 'SOA names decoded')
})

t.test('bad rdata: one coded problem at the line of the bad field', async (t) => {
  const bad: Array<{ text: string; code: string; line?: number }> = [
    { text: 'x A 192.0.2', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A 192.0.2.256', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A 010.0.0.1', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A 192.0.2.1 192.0.2.2', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A "192.0.2.1"', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x AAAA 192.0.2.1', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x AAAA fe80::1%eth0', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x AAAA 2001:db8::1::2', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x AAAA 2001:db8:00001::1', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x MX 65536 mail', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x MX mail', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x MX -1 mail', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x CNAME a..b', code: ZONE_PROBLEM.BAD_NAME },
    { text: 'x CNAME a@b.example.com.', code: ZONE_PROBLEM.BAD_NAME },
    { text: `x CNAME ${'a'.repeat(64)}.`, code: ZONE_PROBLEM.BAD_NAME },
    { text: `x NS ${'abcdefghi.'.repeat(26)}`, code: ZONE_PROBLEM.BAD_NAME },
    { text: 'x CNAME \\256.example.', code: ZONE_PROBLEM.BAD_NAME },
    { text: 'x SOA ns1 hostmaster 1 7200 3600 1209600', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x SOA ns1 hostmaster 4294967296 7200 3600 1209600 300', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x SOA ns1 hostmaster ( 1\n 7200\n 1x\n 1209600 300 )', code: ZONE_PROBLEM.BAD_TTL, line: HEADER_LINES + 3 },
    { text: `x TXT "${'\\'}300"`, code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x TXT', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x HINFO "only-cpu"', code: ZONE_PROBLEM.BAD_RDATA },
    { text: `x HINFO "${'c'.repeat(256)}" os`, code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x SRV 1 2 sip', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x SRV 1 2 70000 sip', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x CAA 0 is-sue "x"', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x CAA 256 issue "x"', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x NAPTR 1 2 "u" "E2U" "re"', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x DS 1 13 2 abcd', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x DS 1 13 2 abc', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x DS 1 NOSUCHALG 2 abcd', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x DS 1 13 2', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x SSHFP 1 1 xyz0', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x TYPE65280 \\# 4 0a00', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x TYPE65280 \\# 2 0a0', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A \\# 3 0a0000', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x A \\# 0', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x CNAME \\# 2 c00c', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x MX \\# 4 000a0100', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x TXT \\# 2 0561', code: ZONE_PROBLEM.BAD_RDATA },
    { text: 'x TYPE65280 0a000001', code: ZONE_PROBLEM.UNSUPPORTED_TYPE },
    { text: 'x DNSKEY 257 3 13 AAAA', code: ZONE_PROBLEM.UNSUPPORTED_TYPE },
    { text: 'x TYPE41 \\# 0', code: ZONE_PROBLEM.UNSUPPORTED_TYPE },
    { text: 'x AXFR \\# 0', code: ZONE_PROBLEM.UNSUPPORTED_TYPE },
    // ANY is a class mnemonic as well as a query type; in that position it is a class.
    { text: 'x ANY \\# 0', code: ZONE_PROBLEM.UNSUPPORTED_CLASS },
    { text: 'x TYPE70000 \\# 0', code: ZONE_PROBLEM.UNKNOWN_TYPE },
    { text: 'x BOGUS 1 2 3', code: ZONE_PROBLEM.UNKNOWN_TYPE },
  ]
  for (const b of bad) {
    const { rrs, problems } = parseRecord(b.text)
    t.equal(rrs.length, 0, `${b.text}: record dropped`)
    t.equal(problems.length, 1, `${b.text}: one problem`)
    t.match(problems[0], { file: 't.zone', line: b.line ?? HEADER_LINES + 1, severity: 'error', code: b.code }, b.text)
  }
})

t.test('a known DNSKEY written generically loads', async (t) => {
  const { rrs, problems } = parseRecord('x DNSKEY \\# 6 0101030d4142')
  t.same(problems, [])
  t.equal(hex(rrs[0]), '0101030d4142')
})
