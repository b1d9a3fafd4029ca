// The geo-data tool: list file in, database out, atomically; nothing written
// while the list has problems; the committed example is what the tool builds.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { GEO_ERROR, buildGeoDatabase, openGeoDatabase } from '../../src/geo/index.js'
import { parseTreeNetwork } from '../../src/geo/ip-network.js'

const REPO = resolve(import.meta.dirname, '../..')
const v4 = (ip: string) => parseTreeNetwork(`${ip}/32`).treeBits.subarray(12)

t.test('builds a database that answers for the listed networks', async (t) => {
  const dir = t.testdir({ 'list.txt': '192.0.2.0/24 GB EU 51.51 -0.13 London\n198.51.100.0/24 JP AS 35.68 139.69 Tokyo\n' })
  const out = join(dir, 'city.mmdb')
  const result = await buildGeoDatabase(join(dir, 'list.txt'), out, { buildEpochSec: 1_700_000_000, description: 'test' })
  t.same(result, { networks: 2, problems: [] })
  const db = await openGeoDatabase(out)
  t.equal(db.lookup(v4('198.51.100.1'))?.city, 'Tokyo')
  t.same(db.metadata.buildEpochSec, 1_700_000_000)
  t.equal(db.metadata.description, 'test')
  t.same(readdirSync(dir).sort(), ['city.mmdb', 'list.txt'], 'no temporary file left behind')
})

t.test('a list with problems writes nothing and leaves an existing database alone', async (t) => {
  const dir = t.testdir({ 'bad.txt': '192.0.2.0/24 GB EU 51.51 -0.13 London\n198.51.100.0/24 JP AS 95 139.69 Tokyo\n', 'city.mmdb': 'previous' })
  const result = await buildGeoDatabase(join(dir, 'bad.txt'), join(dir, 'city.mmdb'))
  t.same(
    result.problems.map((p) => [p.file, p.line, p.code]),
    [[join(dir, 'bad.txt'), 2, GEO_ERROR.BAD_LIST_LINE]],
  )
  t.equal(result.networks, 0)
  t.equal(readFileSync(join(dir, 'city.mmdb'), 'utf8'), 'previous')
  t.same(readdirSync(dir).sort(), ['bad.txt', 'city.mmdb'])
})

t.test('an unreadable list is a problem at line 0; an unwritable output throws STEER_ERR_GEO_WRITE_FAILED', async (t) => {
  const dir = t.testdir({ 'list.txt': '192.0.2.0/24 GB EU 51.51 -0.13 London\n' })
  const missing = await buildGeoDatabase(join(dir, 'nope.txt'), join(dir, 'out.mmdb'))
  t.same(missing.problems.map((p) => [p.line, p.code]), [[0, GEO_ERROR.UNREADABLE]])
  await t.rejects(buildGeoDatabase(join(dir, 'list.txt'), join(dir, 'no-such-dir', 'out.mmdb')), { code: GEO_ERROR.WRITE_FAILED })
})

t.test('the committed geo-data/example-city.mmdb is what the tool builds from example-city.txt', async (t) => {
  const committed = join(REPO, 'geo-data/example-city.mmdb')
  const example = await openGeoDatabase(committed)
  const dir = t.testdir({})
  const rebuilt = join(dir, 'example-city.mmdb')
  const result = await buildGeoDatabase(join(REPO, 'geo-data/example-city.txt'), rebuilt, {
    buildEpochSec: example.metadata.buildEpochSec,
    description: 'steerdns geo database built from example-city.txt',
  })
  t.same(result.problems, [])
  t.ok(readFileSync(rebuilt).equals(readFileSync(committed)), 'identical bytes (rebuild with geo-data/README.md if the list changed)')
  // The example's nesting, as the README describes it.
  t.equal(example.lookup(v4('198.51.100.10'))?.city, 'Seattle')
  t.equal(example.lookup(v4('198.51.100.200'))?.city, undefined)
  t.equal(example.lookup(v4('198.51.100.200'))?.countryCode, 'US')
  t.equal(example.lookup(v4('10.1.2.3'))?.city, 'Frankfurt')
  t.equal(example.lookup(v4('10.1.200.3'))?.city, 'London')
  t.equal(example.lookup(v4('192.0.2.100'))?.city, 'São Paulo')
})

t.test('geo-data/build.mjs runs the compiled tool', async (t) => {
  const dist = join(REPO, 'dist/geo/index.js')
  if (!existsSync(dist)) {
    t.fail(`${dist} is missing: run \`npm run build\` first (npm test does)`)
    return
  }
  const dir = t.testdir({ 'ok.txt': '192.0.2.0/24 GB EU 51.51 -0.13 London\n', 'bad.txt': '192.0.2.0/24 GB EU 51.51 -0.13\n192.0.2.0/24 GB EU 51.51 -0.13\n' })
  const ok = spawnSync(process.execPath, [join(REPO, 'geo-data/build.mjs'), join(dir, 'ok.txt'), join(dir, 'ok.mmdb')], { encoding: 'utf8' })
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /ok\.mmdb: 1 networks/)
  t.equal((await openGeoDatabase(join(dir, 'ok.mmdb'))).lookup(v4('192.0.2.1'))?.city, 'London')
  const bad = spawnSync(process.execPath, [join(REPO, 'geo-data/build.mjs'), join(dir, 'bad.txt'), join(dir, 'bad.mmdb')], { encoding: 'utf8' })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /bad\.txt:2: .*line 1/)
  t.notOk(existsSync(join(dir, 'bad.mmdb')))
  const usage = spawnSync(process.execPath, [join(REPO, 'geo-data/build.mjs')], { encoding: 'utf8' })
  t.equal(usage.status, 2)
})
