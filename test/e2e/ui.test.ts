/**
 * The /ui status page in a real browser: the real server (startServer) with
 * its API on a free port, a map file, one target drained, one with load and a
 * pin override; Debian's chromium driven by playwright-core opens
 * /ui#token=… with a read-only token and must show every target with its
 * health, admin state and serving state as text, the map summary and the
 * prefixes per target. A full-page screenshot is saved to a temp folder
 * (its path is printed). A wrong token brings the token form back with the
 * API's reason. Chromium missing is a failure that says to run
 * test/setup.sh, never a skip.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import { EXAMPLE_ZONE_FILE } from '../helpers/test-server.js'

const CHROMIUM = '/usr/bin/chromium'
const OPS = 'ops-token-for-ui-tests-01'
const VIEWER = 'viewer-token-for-ui-test1'
/** Every browser wait is bounded by this; none is a timing assertion. */
const WAIT_MS = 20_000

const TARGETS = [
  { id: 'sea-1', site: 'seattle', ipv4: '192.0.2.11', lat: 47.61, lon: -122.33 },
  { id: 'ord-1', site: 'chicago', ipv4: '192.0.2.12', lat: 41.88, lon: -87.63 },
  { id: 'lhr-1', site: 'london', ipv4: '198.51.100.15', lat: 51.51, lon: -0.13 },
  { id: 'nrt-1', site: 'tokyo', ipv4: '203.0.113.19', lat: 35.68, lon: 139.69 },
] as const
const DRAINED = 'lhr-1'

const work = mkdtempSync(join(tmpdir(), 'steerdns-ui-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
// Kept after the run: the screenshot is what this test leaves behind for a person to look at.
const shots = mkdtempSync(join(tmpdir(), 'steerdns-ui-screenshot-'))

const mapFile = join(work, 'map.json')
const entry = (prefix: string, ...ids: string[]) => ({ prefix, targets: ids.map((id, i) => ({ id, score: 10 + 15 * i, samples: 50 - 10 * i })) })
writeFileSync(
  mapFile,
  JSON.stringify({
    version: 7,
    generatedAt: new Date().toISOString(),
    entries: [
      entry('198.51.100.0/24', 'ord-1', 'sea-1'),
      entry('198.51.100.0/26', 'sea-1', 'ord-1'),
      entry('192.0.2.0/24', 'sea-1', 'ord-1'),
      entry('10.1.0.0/16', 'lhr-1', 'ord-1'),
      entry('10.1.2.0/24', 'lhr-1', 'nrt-1'),
      entry('2001:db8:5::/48', 'lhr-1', 'sea-1'),
      entry('203.0.113.0/27', 'nrt-1', 'sea-1'),
    ],
  }),
)

const config = parseConfigText(
  [
    'listen: ["127.0.0.1:0"]',
    'identity: ui-test',
    `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
    'dns: { zonePollIntervalMs: 0 }',
    'log: { level: silent }',
    'targets:',
    ...TARGETS.map((x) => `  - { id: ${x.id}, site: ${x.site}, ipv4: [${x.ipv4}], location: { lat: ${x.lat}, lon: ${x.lon} } }`),
    `services: [{ name: api.edge.example.net, pool: [${TARGETS.map((x) => x.id).join(', ')}], ttl: { min: 10, max: 60 } }]`,
    'map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 }',
    'api:',
    '  listen: 127.0.0.1:0',
    '  tokens:',
    `    - { name: ops, token: ${OPS}, roles: [operate, read] }`,
    `    - { name: viewer, token: ${VIEWER}, roles: [read] }`,
    `state: { dir: ${JSON.stringify(join(work, 'state'))} }`,
  ].join('\n'),
  { file: join(work, 'steerdns.yaml'), env: {} },
)

const server = await startServer({ config, mapFile, logDestination: new PassThrough() })
t.teardown(() => server.close())
const address = server.control.apiAddress
if (!address) throw new Error('the API is not listening')
const base = `http://${address.host}:${address.port}`

async function api(method: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
}

await api('PATCH', `/v1/targets/${DRAINED}`, { state: 'drain', reason: 'maintenance window' })
await api('PATCH', '/v1/targets/ord-1', { load: 0.42 })
await api('POST', '/v1/overrides', { prefix: '192.0.2.128/25', targets: ['ord-1'], reason: 'peering test' })

// Launched before any subtest starts: tap ends the root test when its first subtests finish.
let browser: Browser | undefined
if (existsSync(CHROMIUM)) {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser?.close())
} else t.fail(`${CHROMIUM} is missing: run test/setup.sh (it installs the Debian chromium package)`)

async function openPage(token: string): Promise<{ page: Page; pageErrors: string[]; cspErrors: string[] }> {
  if (!browser) throw new Error(`${CHROMIUM} is missing: run test/setup.sh`)
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const pageErrors: string[] = []
  const cspErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) cspErrors.push(msg.text())
  })
  await page.goto(`${base}/ui#token=${encodeURIComponent(token)}`, { timeout: WAIT_MS })
  return { page, pageErrors, cspErrors }
}

t.test('the page shows every target and its states, the map and the prefixes per target', async (t) => {
  if (!browser) return t.fail(`${CHROMIUM} is missing: run test/setup.sh`)
  const { page, pageErrors, cspErrors } = await openPage(VIEWER)
  t.teardown(() => page.close())
  await page.waitForSelector('main[data-state="ready"]', { timeout: WAIT_MS })

  for (const target of TARGETS) {
    const row = page.locator(`#targets tbody tr[data-target="${target.id}"]`)
    t.equal(await row.count(), 1, `${target.id} has a row`)
    const text = await row.innerText()
    t.match(text, target.id, `${target.id} named`)
    t.match(text, target.site, `${target.id} site`)
    t.match(text, /unknown|up|down|degraded/, `${target.id} health as text`)
  }
  const drained = await page.locator(`#targets tbody tr[data-target="${DRAINED}"]`).innerText()
  t.match(drained, /\bdrain\b/, 'the drained target says "drain"')
  t.match(drained, /not serving/, 'and "not serving"')
  t.match(drained, /maintenance window/, 'with the reason')
  t.match(drained, /by ops/, 'and who')
  const loaded = await page.locator('#targets tbody tr[data-target="ord-1"]').innerText()
  t.match(loaded, /42 %/, 'reported load as a percentage')
  t.match(loaded, /\bserving\b/)
  t.notMatch(loaded, /not serving/)
  t.match(await page.locator('#targets tbody tr[data-target="sea-1"]').innerText(), /\b2\s*$/, 'sea-1 is first choice for 2 map entries')

  const map = await page.locator('#map-summary').innerText()
  t.match(map, /Version\s+7/, 'map version')
  t.match(map, /7: 6 IPv4, 1 IPv6/, 'coverage by family')
  t.match(map, /Age/, 'map age')
  t.match(await page.locator(`#world li.tile[data-target="${DRAINED}"]`).innerText(), /3 prefixes[\s\S]*not serving/, 'world view: the drained target had 3 prefixes')
  // GET /v1/targets has no coordinates yet: the page draws the map once it does, a grid until then.
  t.ok([0, TARGETS.length].includes(await page.locator('#world svg.worldmap circle').count()), 'a circle per target, or none without coordinates')
  t.match(await page.locator('#overrides tbody').innerText(), /192\.0\.2\.128\/25[\s\S]*answer ord-1[\s\S]*peering test/, 'the pin is listed')
  t.match(await page.locator('#audit tbody').innerText(), /ops/, 'changes list who made them')

  t.notMatch(page.url(), /token/, 'the token is taken out of the address bar')
  t.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('steerdns.token')), VIEWER, 'kept in sessionStorage')
  t.same(pageErrors, [], 'no script errors')
  t.same(cspErrors, [], 'nothing blocked by the content security policy')

  await page.fill('#explain-name', 'api.edge.example.net')
  await page.fill('#explain-client', '198.51.100.0/24')
  await page.click('#explain button[type="submit"]')
  await page.waitForFunction(() => /answer:/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('explain-result')?.textContent ?? ''), undefined, { timeout: WAIT_MS })
  t.match(await page.locator('#explain-result').innerText(), /answer: 192\.0\.2\.12 \(ord-1\)[\s\S]*rule:/, 'explain answers from the same map')

  const shot = join(shots, 'ui.png')
  await page.screenshot({ path: shot, fullPage: true, timeout: WAIT_MS })
  t.ok(existsSync(shot), 'screenshot saved')
  t.comment(`screenshot: ${shot}`)
})

t.test('a token the API refuses brings back the token form with the reason', async (t) => {
  if (!browser) return t.fail(`${CHROMIUM} is missing: run test/setup.sh`)
  const { page } = await openPage('not-a-token-anyone-has-000')
  t.teardown(() => page.close())
  await page.waitForSelector('#login:not([hidden])', { timeout: WAIT_MS })
  t.match(await page.locator('#login-reason').innerText(), /refused the token \(401\): .*unknown token/)
  t.equal(await page.locator('#content').isHidden(), true, 'no data shown')
})

t.test('targets with coordinates are plotted on a world map', async (t) => {
  if (!browser) return t.fail(`${CHROMIUM} is missing: run test/setup.sh`)
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  t.teardown(() => page.close())
  // GET /v1/targets carries no coordinates yet: add the configured ones to the real answer, as the API would.
  await page.route('**/v1/targets', async (route) => {
    const response = await route.fetch()
    const targets = (await response.json()) as { id: string }[]
    const located = targets.map((x) => {
      const known = TARGETS.find((c) => c.id === x.id)
      return known ? { ...x, location: { lat: known.lat, lon: known.lon } } : x
    })
    await route.fulfill({ response, json: located })
  })
  await page.goto(`${base}/ui#token=${VIEWER}`, { timeout: WAIT_MS })
  await page.waitForSelector('#world svg.worldmap', { timeout: WAIT_MS })
  t.equal(await page.locator('#world svg.worldmap g.site').count(), TARGETS.length, 'one mark per target')
  t.equal(await page.locator('#world svg.worldmap g.site-out').count(), 1, 'the drained target is marked as out')
  t.match(await page.locator('#world svg.worldmap').innerHTML(), /lhr-1 \(london\): 3 prefixes, not serving/, 'each mark has a text title')
  const shot = join(shots, 'ui-world.png')
  await page.locator('#world').screenshot({ path: shot, timeout: WAIT_MS })
  t.comment(`world view screenshot: ${shot}`)
})
