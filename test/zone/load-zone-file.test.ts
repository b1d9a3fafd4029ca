// Loading from disk: $INCLUDE resolution, origins and defaults across files,
// problems carrying the included file's own name and line, loops, depth,
// unreadable files; and the check-zone report format.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { loadZoneFile, parseZoneText } from '../../src/zone/load-zone-file.js'
import { checkZone, formatProblem } from '../../src/zone/check-zone.js'
import { ZONE_PROBLEM } from '../../src/zone/zone-problem.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'steerdns-zone-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function files(dir: string, contents: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(contents)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true })
    await writeFile(path.join(dir, name), text)
  }
}

const APEX = '@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n'

t.test('$INCLUDE: relative to the including file, origin argument, state isolation', async (t) => {
  const dir = await tempDir(t)
  await files(dir, {
    'main.zone': [
      '$TTL 300',
      APEX.trimEnd(),
      '$INCLUDE hosts/web.zone', //              line 5: relative to main.zone's directory
      'after-web A 192.0.2.9', //                 line 6: $ORIGIN and $TTL from web.zone do not leak back
      `$INCLUDE "${path.join(dir, 'hosts', 'mail.zone')}" mail`, // absolute path, origin relative to current
      '',
    ].join('\n'),
    'hosts/web.zone': ['www A 192.0.2.10', '$ORIGIN elsewhere.example.com.', '$TTL 60', 'x A 192.0.2.11', '$INCLUDE nested.zone', ''].join('\n'),
    'hosts/nested.zone': 'deep A 192.0.2.12\n',
    'hosts/mail.zone': '@ MX 10 mx\nmx A 192.0.2.25\n',
  })
  const r = await loadZoneFile('example.com', path.join(dir, 'main.zone'))
  t.same(r.problems, [])
  t.equal(r.origin, 'example.com')
  t.same(
    r.records.slice(3).map((rr) => `${rr.name} ${rr.ttlSec}`),
    [
      'www.example.com 300',
      'x.elsewhere.example.com 60',
      'deep.elsewhere.example.com 60',
      'after-web.example.com 300',
      'mail.example.com 300',
      'mx.mail.example.com 300',
    ],
  )
  t.same(r.files, [
    path.join(dir, 'main.zone'),
    path.join(dir, 'hosts', 'web.zone'),
    path.join(dir, 'hosts', 'nested.zone'),
    path.join(dir, 'hosts', 'mail.zone'),
  ])
})

t.test('problems in an included file carry its own name and line', async (t) => {
  const dir = await tempDir(t)
  await files(dir, {
    'main.zone': `$TTL 300\n${APEX}$INCLUDE inc.zone\nbad A 192.0.2.256\n`,
    'inc.zone': '\n\nwww A 192.0.2.1\nwww CNAME other\noops A nope\n',
  })
  const r = await loadZoneFile('example.com', path.join(dir, 'main.zone'))
  t.same(
    r.problems.map((p) => [path.basename(p.file), p.line, p.code]),
    [
      ['inc.zone', 5, ZONE_PROBLEM.BAD_RDATA],
      ['main.zone', 6, ZONE_PROBLEM.BAD_RDATA],
      ['inc.zone', 4, ZONE_PROBLEM.CNAME_AND_OTHER_DATA],
    ],
  )
})

t.test('an included file starts with no previous owner (as Knot)', async (t) => {
  const dir = await tempDir(t)
  await files(dir, { 'main.zone': `$TTL 300\n${APEX}$INCLUDE inc.zone\n`, 'inc.zone': '  A 192.0.2.1\n' })
  const r = await loadZoneFile('example.com', path.join(dir, 'main.zone'))
  t.match(r.problems, [{ file: path.join(dir, 'inc.zone'), line: 1, code: ZONE_PROBLEM.NO_PREVIOUS_OWNER }])
})

t.test('include loops, missing includes and depth are problems at the $INCLUDE line', async (t) => {
  const dir = await tempDir(t)
  await files(dir, {
    'loop.zone': `$TTL 300\n${APEX}$INCLUDE a.zone\n`,
    'a.zone': 'a A 192.0.2.1\n$INCLUDE b.zone\n',
    'b.zone': 'b A 192.0.2.2\n$INCLUDE ./a.zone\n',
    'self.zone': `$TTL 300\n${APEX}$INCLUDE self.zone\n`,
    'missing.zone': `$TTL 300\n${APEX}$INCLUDE nowhere.zone\n`,
  })
  const loop = await loadZoneFile('example.com', path.join(dir, 'loop.zone'))
  t.same(
    loop.problems.map((p) => [path.basename(p.file), p.line, p.code]),
    [['b.zone', 2, ZONE_PROBLEM.INCLUDE_LOOP]],
  )
  t.same(loop.records.map((rr) => rr.name).slice(3), ['a.example.com', 'b.example.com'], 'records before the loop load')
  const self = await loadZoneFile('example.com', path.join(dir, 'self.zone'))
  t.same(self.problems.map((p) => [p.line, p.code]), [[5, ZONE_PROBLEM.INCLUDE_LOOP]])
  const missing = await loadZoneFile('example.com', path.join(dir, 'missing.zone'))
  t.same(missing.problems.map((p) => [p.line, p.code]), [[5, ZONE_PROBLEM.INCLUDE_UNREADABLE]])
  t.match(missing.problems[0]?.message, /ENOENT/)
  t.same(missing.files, [path.join(dir, 'missing.zone'), path.join(dir, 'nowhere.zone')], 'a missing include is still watched')

  const chain: Record<string, string> = { 'd0.zone': `$TTL 300\n${APEX}$INCLUDE d1.zone\n` }
  for (let k = 1; k <= 20; k++) chain[`d${k}.zone`] = `$INCLUDE d${k + 1}.zone\n`
  await files(dir, chain)
  const deep = await loadZoneFile('example.com', path.join(dir, 'd0.zone'))
  t.same(deep.problems.map((p) => [path.basename(p.file), p.line, p.code]), [['d16.zone', 1, ZONE_PROBLEM.INCLUDE_TOO_DEEP]])
})

t.test('unreadable main file is one problem at line 0; loadZoneFile never rejects', async (t) => {
  const dir = await tempDir(t)
  const r = await loadZoneFile('example.com', path.join(dir, 'absent.zone'))
  t.same(r.records, [])
  t.match(r.problems, [{ file: path.join(dir, 'absent.zone'), line: 0, severity: 'error', code: ZONE_PROBLEM.FILE_UNREADABLE }])
  const asDir = await loadZoneFile('example.com', dir)
  t.match(asDir.problems, [{ line: 0, code: ZONE_PROBLEM.FILE_UNREADABLE }])
})

t.test('parseZoneText with a readInclude callback', async (t) => {
  const texts: Record<string, string> = { 'zones/inc.zone': 'www A 192.0.2.1\n' }
  const r = parseZoneText(`$TTL 60\n${APEX}$INCLUDE inc.zone\n`, {
    origin: 'example.com',
    fileName: 'zones/main.zone',
    readInclude: (p) => {
      const text = texts[p]
      if (text === undefined) throw new Error(`no ${p}`)
      return text
    },
  })
  t.same(r.problems, [])
  t.same(r.files, ['zones/main.zone', 'zones/inc.zone'])
  t.equal(r.records.at(-1)?.name, 'www.example.com')
})

t.test('checkZone and formatProblem', async (t) => {
  const dir = await tempDir(t)
  await files(dir, { 'bad.zone': `$TTL 300\n${APEX}www CNAME a\nwww A 192.0.2.1\nx 60 A 192.0.2.2\nx 70 A 192.0.2.3\n` })
  const file = path.join(dir, 'bad.zone')
  const r = await checkZone('example.com', file)
  t.equal(r.recordCount, 7)
  t.same(r.problems.map(formatProblem), [
    `${file}:8: warning: TTL 70 differs from 60 of earlier x.example.com. A records; the RRset TTL is set to 70 (RFC 2181 section 5.2)`,
    `${file}:6: error: www.example.com. has a CNAME and other data (A) (RFC 1034 section 3.6.2)`,
  ])
  t.equal(
    formatProblem({ file: 'z.zone', line: 0, severity: 'error', code: ZONE_PROBLEM.SOA_MISSING, message: 'no SOA' }),
    'z.zone: error: no SOA',
  )
})

t.test('the differential-test fixtures load cleanly', async (t) => {
  const dir = path.join(import.meta.dirname, '..', 'fixtures', 'diff')
  for (const [origin, file, count] of [
    ['diff.test', 'diff.test.zone', 62],
    ['other.test', 'other.test.zone', 8],
    ['sub.diff.test', 'sub.diff.test.zone', 7],
  ] as const) {
    const r = await loadZoneFile(origin, path.join(dir, file))
    t.same(r.problems, [], file)
    t.equal(r.records.length, count, `${file}: record count`)
  }
  const text = readFileSync(path.join(dir, 'diff.test.zone'), 'utf8')
  const r = parseZoneText(text, { origin: 'diff.test', fileName: 'diff.test.zone' })
  const ptr = r.records.find((rr) => rr.name === '2.ptr.diff.test')
  t.same(ptr?.rdata, [{ name: 'host.other.test', compress: true }], 'rdata names stored lowercase, as Knot serves them')
})
