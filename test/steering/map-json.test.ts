// Map JSON: every problem at once with its exact JSON path, the text scanner
// agreeing with JSON.parse, export/import round trips, and map files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseClientKey } from '../../src/steering/client-key.js'
import { createMapMatch } from '../../src/steering/latency-map.js'
import type { MapError } from '../../src/steering/map-error.js'
import { formatMapJson, loadMapFile, mapToJson, parseMapJson } from '../../src/steering/map-json.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

const TARGETS = ['sea-1', 'ord-1', 'fra-1', 'ams-1']
const resolve = (id: string): number | undefined => {
  const i = TARGETS.indexOf(id)
  return i < 0 ? undefined : i
}
const targetId = (index: number): string => TARGETS[index] as string

const VALID = {
  version: 7,
  generatedAt: '2026-01-02T03:04:05.123Z',
  entries: [
    {
      prefix: '198.51.100.0/24',
      targets: [
        { id: 'sea-1', score: 12.5, samples: 40 },
        { id: 'ord-1', score: 31.0, samples: 12 },
      ],
    },
    { prefix: '2001:db8::/48', targets: [{ id: 'fra-1', score: 0.1, samples: 0 }], updatedAt: '2026-01-02T04:00:00+01:00' },
    { prefix: '::ffff:203.0.113.0/120', targets: [{ id: 'ams-1', score: 3, samples: 1 }] },
    { prefix: '0.0.0.0/0', targets: [{ id: 'ord-1', score: 80, samples: 1000 }, { id: 'sea-1', score: 70, samples: 2 }] },
  ],
}

/** The problems of a document that must fail, as `path: message` strings is too brittle; paths only. */
function problemsOf(input: unknown): { path: string; message: string }[] {
  try {
    parseMapJson(input, resolve)
  } catch (err) {
    const e = err as MapError
    if (e.code !== 'STEER_ERR_MAP_INVALID') throw err
    return e.problems.map((p) => ({ path: p.path, message: p.message }))
  }
  throw new Error('expected STEER_ERR_MAP_INVALID')
}
const pathsOf = (input: unknown): string[] => problemsOf(input).map((p) => p.path)

t.test('a valid document builds a map (text and parsed value alike)', async (t) => {
  for (const input of [JSON.stringify(VALID), JSON.stringify(VALID, null, 2), VALID]) {
    const map = parseMapJson(input, resolve)
    t.equal(map.version, 7)
    t.equal(map.size, 4)
    t.equal(map.generatedAtMs, Date.parse('2026-01-02T03:04:05.123Z'))
    t.equal(map.entryUpdatedAtMs(1), Date.parse('2026-01-02T03:00:00Z'))
    t.equal(map.entryPrefix(2), '203.0.113.0/24', 'IPv4-mapped stored as IPv4')
    const out = createMapMatch()
    map.lookup(parseClientKey('198.51.100.9', 'resolver'), out)
    t.same([out.entry, map.candidateTarget(out.entry, 0), map.candidateScoreMs(out.entry, 1)], [0, 0, 31])
    map.lookup(parseClientKey('203.0.113.1', 'resolver'), out)
    t.equal(out.entry, 2)
    map.lookup(parseClientKey('192.0.2.1', 'resolver'), out)
    t.same([out.entry, out.matchedLen], [3, 0])
    t.equal(map.candidateTarget(3, 0), 0, 'ranked by score whatever the file order')
  }
  t.equal(parseMapJson('{"version":0,"entries":[]}', resolve).size, 0)
  t.equal(parseMapJson(' \n{ "entries" : [ ] , "version" : 3 }\r\n', resolve).version, 3)
  t.equal(parseMapJson('\ufeff{"version":1,"entries":[]}', resolve).version, 1, 'a byte-order mark is skipped')
})

t.test('every problem is reported at once, each with its JSON path', async (t) => {
  const doc = {
    version: 7,
    entries: [
      { prefix: '198.51.100.0/24', targets: [{ id: 'sea-1', score: 12.5, samples: 40 }] }, // 0: fine
      { prefix: '198.51.100.7/24', targets: [{ id: 'sea-1', score: 1, samples: 1 }] }, // 1: host bits
      { prefix: '::ffff:198.51.100.0/120', targets: [{ id: 'sea-1', score: 1, samples: 1 }] }, // 2: duplicate of 0
      {
        prefix: '192.0.2.0/24',
        targets: [
          { id: 'sea-1', score: 1, samples: 1 },
          { id: 'nope-9', score: -1, samples: 1.5 }, // 3.1: unknown id, score, samples
          { id: 'sea-1', score: '5', samples: -2 }, // 3.2: duplicate, score, samples
          { score: 1 }, // 3.3: id and samples missing
          'sea-1', // 3.4: not an object
        ],
      },
      { prefix: '10.0.0.0/33', targets: [] }, // 4: length, empty targets
      { prefix: 'example.net/24', targets: 'sea-1', colour: 'blue' }, // 5: address, targets type, unknown key
      { targets: [{ id: 'sea-1', score: 1, samples: 1, weight: 2 }], updatedAt: '2026-02-30T00:00:00Z' }, // 6
      7, // 7
      { prefix: 24, targets: [{ id: 5, score: 1, samples: 1 }] }, // 8
      { prefix: '198.51.100.0/24', targets: [{ id: 'ord-1', score: 1, samples: 1 }] }, // 9: duplicate of 0
    ],
    generatedAt: 'yesterday',
    extra: true,
  }
  const want = [
    ['entries[1].prefix', /bits set past \/24; the network is 198\.51\.100\.0\/24/],
    ['entries[2].prefix', /entries\[0\]\.prefix/],
    ['entries[3].targets[1].id', /unknown target "nope-9"/],
    ['entries[3].targets[1].score', /number ≥ 0/],
    ['entries[3].targets[1].samples', /integer/],
    ['entries[3].targets[2].id', /already listed at entries\[3\]\.targets\[0\]/],
    ['entries[3].targets[2].score', /number ≥ 0/],
    ['entries[3].targets[2].samples', /integer/],
    ['entries[3].targets[3].id', /required/],
    ['entries[3].targets[3].samples', /required/],
    ['entries[3].targets[4]', /object/],
    ['entries[4].prefix', /0-32/],
    ['entries[4].targets', /at least one/],
    ['entries[5].colour', /unknown property/],
    ['entries[5].prefix', /not an IPv4 or IPv6 address/],
    ['entries[5].targets', /array/],
    ['entries[6].prefix', /required/],
    ['entries[6].updatedAt', /RFC 3339/],
    ['entries[6].targets[0].weight', /unknown property/],
    ['entries[7]', /object/],
    ['entries[8].prefix', /string/],
    ['entries[8].targets[0].id', /string/],
    ['entries[9].prefix', /entries\[0\]\.prefix/],
    ['generatedAt', /RFC 3339/],
    ['extra', /unknown property/],
  ] as const
  for (const input of [JSON.stringify(doc), doc]) {
    const got = problemsOf(input)
    t.same(
      got.map((p) => p.path),
      want.map(([path]) => path),
      typeof input,
    )
    for (const [i, [path, message]] of want.entries()) t.match(got[i]?.message, message, path)
  }
})

t.test('document-level problems', async (t) => {
  const cases: [unknown, string[]][] = [
    ['[]', ['']],
    ['"map"', ['']],
    ['null', ['']],
    ['{}', ['version', 'entries']],
    ['{"version":1}', ['entries']],
    ['{"entries":[]}', ['version']],
    ['{"version":-1,"entries":[]}', ['version']],
    ['{"version":1.5,"entries":[]}', ['version']],
    ['{"version":"7","entries":[]}', ['version']],
    ['{"version":1,"entries":{}}', ['entries']],
    ['{"version":1,"entries":[],"version":2}', ['version']], // duplicate keys: text only
    ['{"version":1,"entries":[],"entries":[{}]}', ['entries']],
    ['{"version":1,"entries":[],"odd key":1}', ['["odd key"]']],
    [{ version: 1, entries: [], generatedAt: 5 }, ['generatedAt']],
    [42, ['']],
  ]
  for (const [input, paths] of cases) t.same(pathsOf(input), paths, JSON.stringify(input))
})

t.test('not JSON: one problem, with line and column when JSON.parse gives a position', async (t) => {
  const texts = [
    '',
    '{',
    '{"version":1,"entries":[',
    '{"version":1,"entries":[{"prefix":"10.0.0.0/8","targets":[]},]}',
    '{"version":1,"entries":[]} x',
    '{"version":1,\n "entries":[]\n "x":1}',
    '{"version":01,"entries":[]}',
    "{'version':1}",
    '{"version":1,"entries":[{"prefix":"10.0.0.0/8\\x"}]}',
    '{"version":1,"entries":[{"prefix":"10.0.0.0/8"}}]}',
    '{"version":1,"entries":[1 2]}',
    '{"version":1 "entries":[]}',
    '{"version":1,"entries":[]\u000b}',
  ]
  for (const text of texts) {
    const got = problemsOf(text)
    t.same(
      got.map((p) => p.path),
      [''],
      JSON.stringify(text),
    )
    t.match(got[0]?.message, /^not valid JSON/, JSON.stringify(text))
  }
  t.match(problemsOf('{"version":1,\n "entries":[]\n "x":1}')[0]?.message, /line 3 column 2/)
})

t.test('prefix rules', async (t) => {
  const doc = (prefix: string) => ({ version: 1, entries: [{ prefix, targets: [{ id: 'sea-1', score: 1, samples: 1 }] }] })
  const good: [string, string][] = [
    ['198.51.100.0/24', '198.51.100.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['198.51.100.7/32', '198.51.100.7/32'],
    ['2001:DB8:0::/48', '2001:db8::/48'],
    ['::/0', '::/0'],
    ['2001:db8::1/128', '2001:db8::1/128'],
    ['::ffff:198.51.100.0/120', '198.51.100.0/24'],
    ['::ffff:0:0/96', '0.0.0.0/0'],
    ['::fffe:0:0/95', '::fffe:0:0/95'], // not IPv4-mapped: stays IPv6
  ]
  for (const [text, canonical] of good) t.equal(parseMapJson(doc(text), resolve).entryPrefix(0), canonical, text)
  const bad = ['198.51.100.0', '198.51.100.0/', '198.51.100.0/024', '198.51.100.0/+8', '198.51.100.0/ 8', '198.51.100.1/24', '01.2.3.0/24', '2001:db8::1/64', 'fe80::%eth0/64', '2001:db8::/129', '/8', '']
  for (const text of bad) t.same(pathsOf(doc(text)), ['entries[0].prefix'], text)
})

t.test('RFC 3339 times', async (t) => {
  const doc = (updatedAt: string) => ({ version: 1, entries: [{ prefix: '10.0.0.0/8', updatedAt, targets: [{ id: 'sea-1', score: 1, samples: 1 }] }] })
  const good: [string, number][] = [
    ['2026-01-02T03:04:05Z', Date.UTC(2026, 0, 2, 3, 4, 5)],
    ['2026-01-02t03:04:05.5z', Date.UTC(2026, 0, 2, 3, 4, 5, 500)],
    ['2024-02-29T00:00:00-08:30', Date.UTC(2024, 1, 29, 8, 30)],
    ['0050-06-01T00:00:00Z', Date.parse('0050-06-01T00:00:00Z')],
  ]
  for (const [text, ms] of good) t.equal(parseMapJson(doc(text), resolve).entryUpdatedAtMs(0), ms, text)
  for (const text of ['2026-01-02', '2026-01-02 03:04:05Z', '2023-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-01T24:00:00Z', '2016-12-31T23:59:60Z', '2026-01-01T00:00:00+24:00', '2026-01-01T00:00:00']) {
    t.same(pathsOf(doc(text)), ['entries[0].updatedAt'], text)
  }
})

t.test('export: object and text forms round-trip', async (t) => {
  const map = parseMapJson(VALID, resolve)
  const json = mapToJson(map, targetId)
  t.same(json, {
    version: 7,
    generatedAt: '2026-01-02T03:04:05.123Z',
    entries: [
      {
        prefix: '198.51.100.0/24',
        targets: [
          { id: 'sea-1', score: 12.5, samples: 40 },
          { id: 'ord-1', score: 31, samples: 12 },
        ],
      },
      { prefix: '2001:db8::/48', targets: [{ id: 'fra-1', score: 0.1, samples: 0 }], updatedAt: '2026-01-02T03:00:00.000Z' },
      { prefix: '203.0.113.0/24', targets: [{ id: 'ams-1', score: 3, samples: 1 }] },
      { prefix: '0.0.0.0/0', targets: [{ id: 'sea-1', score: 70, samples: 2 }, { id: 'ord-1', score: 80, samples: 1000 }] },
    ],
  })
  const text = formatMapJson(map, targetId)
  t.same(JSON.parse(text), json, 'text form is the same document')
  t.equal(text.split('\n').length, 4 + 3, 'one line per entry')
  t.same(mapToJson(parseMapJson(text, resolve), targetId), json, 'text round trip')
  t.same(mapToJson(parseMapJson(json, resolve), targetId), json, 'object round trip')
  const empty = parseMapJson('{"version":2,"entries":[]}', resolve)
  t.same(JSON.parse(formatMapJson(empty, targetId)), { version: 2, entries: [] })
})

t.test('problems beyond maxProblems are counted, not listed', async (t) => {
  const entries = Array.from({ length: 50 }, (_, i) => ({ prefix: `10.0.${i}.1/24`, targets: [{ id: 'sea-1', score: 1, samples: 1 }] }))
  try {
    parseMapJson({ version: 1, entries }, resolve, { maxProblems: 10 })
    t.fail('should throw')
  } catch (err) {
    const problems = (err as MapError).problems
    t.equal(problems.length, 11)
    t.same(problems[10], { path: '', message: '40 more problems not listed' })
  }
})

/** The shared mulberry32 generator (test/helpers/seeded-random.ts): failures reproduce from the seed. */
const prng = (seed: number): (() => number) => createSeededRandom(seed).next

t.test('the text scanner agrees with JSON.parse on mutated documents', async (t) => {
  const base = JSON.stringify({ ...VALID, entries: [...VALID.entries, { prefix: '10.0.0.0/8', targets: [{ id: 'sea-1', score: 1e-3, samples: 7 }] }] }, null, 1)
  const alphabet = '{}[]",:\\ 0123456789.-eE/ntrufalsx\n'
  const rand = prng(42)
  let checked = 0
  let disagreements = 0
  for (let n = 0; n < 3000; n++) {
    const chars = [...base]
    const edits = 1 + Math.floor(rand() * 3)
    for (let k = 0; k < edits; k++) {
      const at = Math.floor(rand() * chars.length)
      const c = alphabet[Math.floor(rand() * alphabet.length)] as string
      const op = rand()
      if (op < 0.4) chars[at] = c
      else if (op < 0.7) chars.splice(at, 0, c)
      else chars.splice(at, 1)
    }
    const text = chars.join('')
    let parsed: unknown
    let isJson = true
    try {
      parsed = JSON.parse(text)
    } catch {
      isJson = false
    }
    let fromText: string
    try {
      fromText = JSON.stringify(mapToJson(parseMapJson(text, resolve), targetId))
    } catch (err) {
      const e = err as MapError
      if (e.code !== 'STEER_ERR_MAP_INVALID') throw err
      if (!isJson) {
        if (e.problems.length !== 1 || e.problems[0]?.path !== '' || !/^not valid JSON/.test(e.problems[0].message)) disagreements++
        checked++
        continue
      }
      fromText = JSON.stringify(e.problems)
    }
    if (!isJson) {
      disagreements++
      t.fail(`accepted text JSON.parse rejects: ${JSON.stringify(text)}`)
      continue
    }
    // Repeated keys are reported from text but invisible once parsed.
    if (fromText.includes('duplicate property')) continue
    let fromValue: string
    try {
      fromValue = JSON.stringify(mapToJson(parseMapJson(parsed, resolve), targetId))
    } catch (err) {
      fromValue = JSON.stringify((err as MapError).problems)
    }
    if (fromText !== fromValue) {
      disagreements++
      if (disagreements < 4) t.fail('text and value disagree', { text, fromText, fromValue })
    }
    checked++
  }
  t.equal(disagreements, 0, `${checked} mutated documents`)
  t.ok(checked > 2500)
})

t.test('map files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-map-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const good = join(dir, 'good.json')
  await writeFile(good, '\ufeff' + JSON.stringify(VALID))
  t.equal((await loadMapFile(good, resolve)).size, 4)

  const missing = join(dir, 'missing.json')
  await t.rejects(loadMapFile(missing, resolve), { code: 'STEER_ERR_MAP_UNREADABLE', file: missing, problems: [{ path: '' }] })

  const bad = join(dir, 'bad.json')
  await writeFile(bad, JSON.stringify({ version: 1, entries: [{ prefix: '10.0.0.1/8', targets: [{ id: 'sea-1', score: 1, samples: 1 }] }] }))
  await t.rejects(loadMapFile(bad, resolve), { code: 'STEER_ERR_MAP_INVALID', file: bad, problems: [{ path: 'entries[0].prefix' }] })
  const err = await loadMapFile(bad, resolve).then(() => undefined, (e: unknown) => e as MapError)
  t.match(err?.message, `${bad}: entries[0].prefix: `)
})

t.test('large files are read in chunks: values cut at chunk ends, multi-byte text, a value longer than a chunk', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-map-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ids = [...TARGETS, 'zürich-1', '東京-1']
  const resolveAll = (id: string) => {
    const i = ids.indexOf(id)
    return i < 0 ? undefined : i
  }
  const entries = Array.from({ length: 12_000 }, (_, i) => ({
    prefix: i % 2 ? `10.${i >> 8}.${i & 0xff}.0/24` : `2001:db8:${i.toString(16)}::/48`,
    targets: [
      { id: ids[i % ids.length] as string, score: i / 7, samples: i },
      { id: ids[(i + 1) % ids.length] as string, score: 1e-7 * i, samples: 1 },
    ],
    ...(i % 3 ? {} : { updatedAt: '2026-01-02T03:04:05.006+02:00' }),
  }))
  // Mixed layout: some entries pretty-printed, so cuts land inside whitespace, strings and numbers.
  const body = entries.map((e, i) => (i % 5 ? JSON.stringify(e) : JSON.stringify(e, null, 3))).join(',\n')
  const text = `{"version": 9, "entries": [\n${body}\n], "generatedAt": "2026-01-01T00:00:00Z"}`
  t.ok(Buffer.byteLength(text) > 3 * 512 * 1024, 'several chunks')
  const file = join(dir, 'large.json')
  await writeFile(file, text)
  const fromFile = await loadMapFile(file, resolveAll)
  const fromText = parseMapJson(text, resolveAll)
  t.equal(fromFile.size, 12_000)
  t.same(mapToJson(fromFile, (i) => ids[i] as string), mapToJson(fromText, (i) => ids[i] as string))
  t.same(mapToJson(fromFile, (i) => ids[i] as string), mapToJson(parseMapJson(JSON.parse(text), resolveAll), (i) => ids[i] as string))

  // A top-level value longer than a chunk, then a broken entry: still every problem, with paths.
  const long = join(dir, 'long.json')
  await writeFile(long, `{"note": "${'x'.repeat(1_500_000)}", "version": 1, "entries": [${body}, {"prefix": "10.0.0.1/8", "targets": []}]}`)
  await t.rejects(loadMapFile(long, resolveAll), {
    code: 'STEER_ERR_MAP_INVALID',
    problems: [{ path: 'note' }, { path: 'entries[12000].prefix' }, { path: 'entries[12000].targets' }],
  })
  // Broken JSON far into a large file: JSON.parse's position, as line and column.
  const broken = join(dir, 'broken.json')
  await writeFile(broken, text.replace('"samples":11999}', '"samples":11999,}'))
  const err = (await loadMapFile(broken, resolveAll).catch((e: unknown) => e)) as MapError
  t.equal(err.code, 'STEER_ERR_MAP_INVALID')
  t.match(err.problems[0]?.message, /^not valid JSON at line \d+ column \d+/)
})
