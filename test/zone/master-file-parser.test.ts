// Master-file parsing: directives, owners, TTL and class fields, defaults,
// escapes in names, and errors reported with their line, all in one pass.
import t from 'tap'
import { parseZoneText } from '../../src/zone/load-zone-file.js'
import { parseMasterFile, PAUSE_EVERY_ENTRIES } from '../../src/zone/master-file-parser.js'
import { ZONE_PROBLEM } from '../../src/zone/zone-problem.js'
import type { ResourceRecord } from '../../src/wire/index.js'

const APEX = '@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n'

function parse(text: string, origin = 'example.com'): ReturnType<typeof parseZoneText> {
  return parseZoneText(text, { origin, fileName: 'z.zone' })
}

/** "name ttl type" of each record, for compact comparisons. */
function summary(records: readonly ResourceRecord[]): string[] {
  return records.map((rr) => `${rr.name} ${rr.ttlSec} ${rr.type}`)
}

t.test('owners: @, relative, absolute, omitted, $ORIGIN changes', async (t) => {
  const r = parse(
    [
      '$TTL 300',
      APEX.trimEnd(),
      'www A 192.0.2.1',
      '    AAAA 2001:db8::1',
      'abs.example.com. A 192.0.2.2',
      '$ORIGIN sub.example.com.',
      'a A 192.0.2.3',
      '@ A 192.0.2.4',
      '  TXT "still sub"',
      '$ORIGIN deeper',
      'b A 192.0.2.5',
      'WiLd.* A 192.0.2.6',
      '',
    ].join('\n'),
  )
  t.same(r.problems, [])
  t.same(
    r.records.map((rr) => rr.name),
    [
      'example.com',
      'example.com',
      'www.example.com',
      'www.example.com',
      'abs.example.com',
      'a.sub.example.com',
      'sub.example.com',
      'sub.example.com',
      'b.deeper.sub.example.com',
      'wild.*.deeper.sub.example.com',
    ],
  )
})

t.test('escapes in names', async (t) => {
  const r = parse(`$TTL 60\n${APEX}a\\.b A 192.0.2.1\n\\065bc A 192.0.2.2\nsp\\032ace A 192.0.2.3\nc NS we\\.ird.example.net.\n`)
  t.same(r.problems.filter((p) => p.severity === 'error'), [])
  t.same(
    r.records.slice(2).map((rr) => rr.name),
    ['a\\.b.example.com', 'abc.example.com', 'sp\\032ace.example.com', 'c.example.com'],
  )
  t.same(r.records[5]?.rdata, [{ name: 'we\\.ird.example.net', compress: true }])
})

t.test('TTL and class in either order, generic class, case-insensitive', async (t) => {
  const r = parse(
    [
      '$TTL 100',
      APEX.trimEnd(),
      'a 200 IN A 192.0.2.1',
      'b IN 300 A 192.0.2.1',
      'c in a 192.0.2.1',
      'd 1h CLASS1 A 192.0.2.1',
      'e 1W A 192.0.2.1',
      'f a 192.0.2.1',
      '',
    ].join('\n'),
  )
  t.same(r.problems, [])
  t.same(summary(r.records.slice(2)), [
    'a.example.com 200 1',
    'b.example.com 300 1',
    'c.example.com 100 1',
    'd.example.com 3600 1',
    'e.example.com 604800 1',
    'f.example.com 100 1',
  ])
})

t.test('default TTL: $TTL beats the previous TTL (RFC 2308); $TTL may change mid-file', async (t) => {
  const r = parse(`$TTL 100\n${APEX}a 50 A 192.0.2.1\nb A 192.0.2.2\n$TTL 7d\nc A 192.0.2.3\n`)
  t.same(r.problems, [])
  t.same(summary(r.records.slice(2)), ['a.example.com 50 1', 'b.example.com 100 1', 'c.example.com 604800 1'])
})

t.test('default TTL without $TTL: the last explicit TTL, with one warning', async (t) => {
  const r = parse(`@ 500 SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nb 20 A 192.0.2.2\nc A 192.0.2.3\n`)
  t.same(summary(r.records), ['example.com 500 6', 'example.com 500 2', 'ns1.example.com 500 1', 'b.example.com 20 1', 'c.example.com 20 1'])
  t.same(
    r.problems.map((p) => [p.code, p.line, p.severity]),
    [[ZONE_PROBLEM.TTL_FROM_PREVIOUS, 2, 'warning']],
  )
})

t.test('default TTL with neither $TTL nor an earlier TTL: 3600 like Knot, with one warning', async (t) => {
  const r = parse(`${APEX}b A 192.0.2.2\n`)
  t.same(summary(r.records), ['example.com 3600 6', 'example.com 3600 2', 'b.example.com 3600 1'])
  t.same(
    r.problems.map((p) => [p.code, p.line, p.severity]),
    [[ZONE_PROBLEM.TTL_DEFAULTED, 1, 'warning']],
  )
  const custom = parseZoneText(`${APEX}`, { origin: 'example.com', fileName: 'z.zone', defaultTtlSec: 86400 })
  t.equal(custom.records[0]?.ttlSec, 86400, 'defaultTtlSec option')
})

t.test('a root-zone origin and an origin given with a trailing dot', async (t) => {
  t.equal(parse('$TTL 1\n@ SOA a. b. 1 2 3 4 5\n@ NS a.\n', '.').origin, '')
  const r = parse(`$TTL 1\n${APEX}`, 'Example.COM.')
  t.equal(r.origin, 'example.com')
  t.same(r.problems, [])
  t.match(parse('', 'bad..origin').problems, [{ code: ZONE_PROBLEM.BAD_ORIGIN, line: 0 }])
})

t.test('every error in one pass, each at its line, parsing goes on', async (t) => {
  const lines = [
    '$TTL 1h', //                                   1
    APEX.trimEnd(), //                              2-3
    'a A 192.0.2.300', //                           4  bad IPv4
    'b 99999999999 A 192.0.2.1', //                 5  TTL above 2^31-1
    'c CH TXT "chaos"', //                          6  class
    'd HS A 192.0.2.1', //                          7  class
    'e FOO 1 2', //                                 8  type
    'f MX ( 10', //                                 9
    '  mail. extra )', //                           10 extra field (line of the token)
    'g TXT "unterminated', //                       11 lexer
    '$ORIGIN a..b.', //                             12 bad origin
    '$TTL forever', //                              13 bad $TTL
    '$GENERATE 1-10 host$ A 192.0.2.$', //          14 unsupported directive
    '$ORIGIN', //                                   15 arity
    'h.. A 192.0.2.1', //                           16 bad owner
    'ok A 192.0.2.9', //                            17 fine
    'i 1h 2h A 192.0.2.1', //                       18 two TTLs
    'j IN IN A 192.0.2.1', //                       19 two classes
    'k 60', //                                      20 no type
    '"quoted" A 192.0.2.1', //                      21 quoted owner
    'l CLASS3 A 192.0.2.1', //                      22 class
    '',
  ]
  const r = parse(lines.join('\n'))
  t.same(
    r.problems.map((p) => [p.line, p.code]),
    [
      [4, ZONE_PROBLEM.BAD_RDATA],
      [5, ZONE_PROBLEM.BAD_TTL],
      [6, ZONE_PROBLEM.UNSUPPORTED_CLASS],
      [7, ZONE_PROBLEM.UNSUPPORTED_CLASS],
      [8, ZONE_PROBLEM.UNKNOWN_TYPE],
      [10, ZONE_PROBLEM.BAD_RDATA],
      [11, ZONE_PROBLEM.UNTERMINATED_STRING],
      [12, ZONE_PROBLEM.BAD_ORIGIN],
      [13, ZONE_PROBLEM.BAD_TTL],
      [14, ZONE_PROBLEM.BAD_DIRECTIVE],
      [15, ZONE_PROBLEM.BAD_DIRECTIVE],
      [16, ZONE_PROBLEM.BAD_NAME],
      [18, ZONE_PROBLEM.BAD_TTL],
      [19, ZONE_PROBLEM.UNSUPPORTED_CLASS],
      [20, ZONE_PROBLEM.UNKNOWN_TYPE],
      [21, ZONE_PROBLEM.BAD_NAME],
      [22, ZONE_PROBLEM.UNSUPPORTED_CLASS],
    ],
  )
  t.ok(r.problems.every((p) => p.file === 'z.zone' && p.severity === 'error' && p.message.length > 0))
  t.same(
    r.records.map((rr) => rr.name),
    ['example.com', 'example.com', 'ok.example.com'],
    'only good records survive',
  )
})

t.test('an owner that failed still becomes the previous owner; no previous owner is an error', async (t) => {
  const r = parse(`$TTL 1\n  A 192.0.2.1\n${APEX}x A 192.0.2.300\n  TXT "after bad"\n`)
  t.match(r.problems, [{ line: 2, code: ZONE_PROBLEM.NO_PREVIOUS_OWNER }, { line: 5, code: ZONE_PROBLEM.BAD_RDATA }])
  t.same(r.records[2]?.name, 'x.example.com')
})

t.test('$INCLUDE without a reader is a problem, not a throw', async (t) => {
  const r = parse(`$TTL 1\n${APEX}$INCLUDE other.zone\n`)
  t.match(r.problems, [{ line: 4, code: ZONE_PROBLEM.INCLUDE_UNREADABLE }])
  t.same(r.files, ['z.zone', 'other.zone'])
})

t.test('the parser offers a pause every PAUSE_EVERY_ENTRIES entries', async (t) => {
  const lines = ['$TTL 60', APEX.trimEnd()]
  for (let i = 0; i < 2 * PAUSE_EVERY_ENTRIES; i++) lines.push(`h${i} A 192.0.2.1`)
  const gen = parseMasterFile(lines.join('\n'), { origin: 'example.com', fileName: 'big.zone' })
  let pauses = 0
  let step = gen.next()
  while (!step.done) {
    if (step.value.kind === 'pause') pauses++
    step = gen.next(undefined)
  }
  t.equal(pauses, 2)
  t.equal(step.value.records.length, 2 * PAUSE_EVERY_ENTRIES + 2)
})
