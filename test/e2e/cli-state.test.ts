/**
 * `steerdns state` and `steerdns map stats` as scripts run them: the built
 * CLI as a child process. `state` reads a real server's API (started in
 * process on a free port, one target drained, one pin) in text and JSON,
 * with the token from --token or STEERDNS_TOKEN, and fails with exit 1 and a
 * reason for a refused token (401), a token without the read role (403) and
 * a server that is not there. `map stats` summarises the example map and
 * lists every problem of a bad file with its JSON path (exit 1).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import { getFreePort } from '../helpers/free-port.js'
import { isSteerdnsBuilt, REPO_ROOT } from '../helpers/steerdns-process.js'
import { EXAMPLE_ZONE_FILE } from '../helpers/test-server.js'

const BIN = join(REPO_ROOT, 'bin', 'steerdns.js')
const OPS = 'ops-token-for-cli-tests-1'
const VIEWER = 'viewer-token-for-cli-test'
const PROBES = 'probe-token-for-cli-tests'

if (!isSteerdnsBuilt()) throw new Error('dist/cli.js is missing: run `npm run build` before this test')

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // STEERDNS_TOKEN from the developer's shell must not leak into cases that test its absence.
    const base = { ...process.env }
    delete base.STEERDNS_TOKEN
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

const work = mkdtempSync(join(tmpdir(), 'steerdns-cli-state-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

const config = parseConfigText(
  [
    'listen: ["127.0.0.1:0"]',
    'identity: cli-state-test',
    `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
    'dns: { zonePollIntervalMs: 0 }',
    'log: { level: silent }',
    'targets:',
    '  - { id: sea-1, site: seattle, ipv4: [192.0.2.11], location: { lat: 47.61, lon: -122.33 } }',
    '  - { id: ord-1, site: chicago, ipv4: [192.0.2.12], location: { lat: 41.88, lon: -87.63 } }',
    '  - { id: lhr-1, site: london, ipv4: [198.51.100.15], location: { lat: 51.51, lon: -0.13 } }',
    'services: [{ name: api.edge.example.net, pool: [sea-1, ord-1, lhr-1], ttl: { min: 10, max: 60 } }]',
    'api:',
    '  listen: 127.0.0.1:0',
    '  tokens:',
    `    - { name: ops, token: ${OPS}, roles: [operate, read] }`,
    `    - { name: viewer, token: ${VIEWER}, roles: [read] }`,
    `    - { name: probes, token: ${PROBES}, roles: [ingest] }`,
    `state: { dir: ${JSON.stringify(join(work, 'state'))} }`,
  ].join('\n'),
  { file: join(work, 'steerdns.yaml'), env: {} },
)
const server = await startServer({ config, logDestination: new PassThrough() })
t.teardown(() => server.close())
const address = server.control.apiAddress
if (!address) throw new Error('the API is not listening')
const API = `http://${address.host}:${address.port}`

async function operate(method: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(API + path, { method, headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
}
await operate('PATCH', '/v1/targets/lhr-1', { state: 'drain', reason: 'fibre cut' })
await operate('POST', '/v1/overrides', { prefix: '203.0.113.0/24', targets: ['ord-1', 'sea-1'], reason: 'peering test' })

t.test('state: targets, overrides and the map, readable', async (t) => {
  const r = await runCli(['state', '--api', API, '--token', VIEWER])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `steerdns control plane at ${API}`)
  t.match(r.stdout, /^map: version \d+ from empty; 0 entries \(0 IPv4, 0 IPv6\), 0 stale/m)
  t.match(r.stdout, /^targets: 3 \(2 serving\)$/m)
  t.match(r.stdout, /^\s+ID\s+SITE\s+HEALTH\s+ADMIN\s+SERVING\s+WEIGHT\s+LOAD\s+NOTE$/m, 'a header row')
  t.match(r.stdout, /^\s+lhr-1\s+london\s+\S+\s+drain\s+not serving\s+\d+\s+-\s+"fibre cut" by ops$/m, 'the drained target, its reason and who')
  t.match(r.stdout, /^\s+sea-1\s+seattle\s+\S+\s+up\s+serving\b/m)
  t.match(r.stdout, /^overrides: 1$/m)
  t.match(r.stdout, /^\s+\S+\s+pin\s+203\.0\.113\.0\/24\s+answer ord-1, then sea-1\s+never\s+ops\s+peering test$/m)
})

t.test('state --json: the three API answers as one document; the token from STEERDNS_TOKEN; HOST:PORT works', async (t) => {
  const r = await runCli(['state', '--api', `${address.host}:${address.port}`, '--json'], { STEERDNS_TOKEN: VIEWER })
  t.equal(r.code, 0, r.stderr)
  const state = JSON.parse(r.stdout) as { api: string; targets: { id: string; admin: { state: string }; serving: boolean }[]; overrides: { kind: string }[]; map: { version: number } }
  t.equal(state.api, API)
  t.same(
    state.targets.map((x) => [x.id, x.admin.state, x.serving]),
    [
      ['sea-1', 'up', true],
      ['ord-1', 'up', true],
      ['lhr-1', 'drain', false],
    ],
  )
  t.same(state.overrides.map((o) => o.kind), ['pin'])
  t.type(state.map.version, 'number')
})

t.test('state: refusals and a missing server exit 1 with the reason; no token is a usage error', async (t) => {
  const unknown = await runCli(['state', '--api', API, '--token', 'not-a-token-anyone-has'])
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /the API refused the token \(401: .*unknown token\); check --token or STEERDNS_TOKEN/)
  t.equal(unknown.stdout, '')

  const noRead = await runCli(['state', '--api', API, '--token', PROBES])
  t.equal(noRead.code, 1)
  t.match(noRead.stderr, /\(403: token probes lacks the read role\); the token needs the read role/)

  const port = await getFreePort()
  const down = await runCli(['state', '--api', `http://127.0.0.1:${port}`, '--token', VIEWER])
  t.equal(down.code, 1)
  t.match(down.stderr, new RegExp(`cannot reach the control plane at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`))

  const none = await runCli(['state', '--api', API])
  t.equal(none.code, 2)
  t.match(none.stderr, /no token: pass --token TOKEN or set STEERDNS_TOKEN/)
  t.equal((await runCli(['state', '--api', 'ftp://example.net', '--token', VIEWER])).code, 2, 'not an http URL')
})

t.test('explain --api: the running server\'s decision, its pin and drain included', async (t) => {
  const pinned = await runCli(['explain', 'api.edge.example.net', '--client', '203.0.113.0/24', '--api', API, '--token', VIEWER])
  t.equal(pinned.code, 0, pinned.stderr)
  t.match(pinned.stdout, /answer: 192\.0\.2\.12 \(ord-1\)/, 'the pin answers')
  t.match(pinned.stdout, /rule:\s+override/)
  const json = await runCli(['explain', 'api.edge.example.net', '--resolver', '192.0.2.1', '--api', API, '--json'], { STEERDNS_TOKEN: VIEWER })
  t.equal(json.code, 0, json.stderr)
  const result = JSON.parse(json.stdout) as { answerTargets: string[] }
  t.notOk(result.answerTargets.includes('lhr-1'), 'the drained target is not answered')
  const refused = await runCli(['explain', 'api.edge.example.net', '--client', '203.0.113.0/24', '--api', API, '--token', PROBES])
  t.equal(refused.code, 1, 'an ingest-only token is refused')
  t.match(refused.stderr, /403/)
})

t.test('map stats: the example map by family, prefix length and first place', async (t) => {
  const r = await runCli(['map', 'stats', 'maps/example-map.json'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^maps\/example-map\.json: version 1, 7 entries \(6 IPv4, 1 IPv6\), 16 candidates/m)
  t.match(r.stdout, /^\s+IPv4\s+\/24\s+2\s+#+$/m, 'prefix-length histogram')
  t.match(r.stdout, /^\s+IPv6\s+\/48\s+1\s+#+$/m)
  t.match(r.stdout, /^\s+lhr-1\s+2\s+3\s+700$/m, 'lhr-1 first in 2 entries, listed in 3, 700 samples')
  t.match(r.stdout, /^\s+in no entry: jnb-1$/m, 'configured targets the map never uses')
  t.match(r.stdout, /^samples: 1,922 in all; behind each first place: min 50, median 90, max 500$/m)
  t.match(r.stdout, /^generated: not stated in the file$/m)

  const json = await runCli(['map', 'stats', 'maps/example-map.json', '--json'])
  t.equal(json.code, 0)
  const stats = JSON.parse(json.stdout) as { entries: number; ipv4Entries: number; targets: { id: string; first: number }[]; prefixLengths: { family: number; prefixLen: number; entries: number }[] }
  t.equal(stats.entries, 7)
  t.equal(stats.ipv4Entries, 6)
  t.same(stats.targets[0], { id: 'lhr-1', first: 2, listed: 3, samples: 700 })
  t.same(stats.prefixLengths.find((p) => p.family === 6), { family: 6, prefixLen: 48, entries: 1 })
})

t.test('map stats: a bad file lists every problem with its JSON path, exit 1', async (t) => {
  const bad = join(work, 'bad-map.json')
  writeFileSync(
    bad,
    JSON.stringify({
      version: 2,
      entries: [
        { prefix: '198.51.100.0/33', targets: [{ id: 'sea-1', score: 10, samples: 5 }] },
        { prefix: '192.0.2.0/24', targets: [{ id: 'nowhere-1', score: 10, samples: 5 }] },
        { prefix: '10.0.0.0/8' },
      ],
    }),
  )
  const r = await runCli(['map', 'stats', bad])
  t.equal(r.code, 1)
  t.equal(r.stdout, '')
  t.match(r.stderr, `${bad}: 3 problems; the map would be rejected`)
  t.match(r.stderr, /^\s+entries\[0\]\.prefix: /m)
  t.match(r.stderr, /^\s+entries\[1\]\.targets\[0\]\.id: unknown target "nowhere-1"/m, 'ids are checked against the configuration')
  t.match(r.stderr, /^\s+entries\[2\]\.targets: is required/m)

  const missing = await runCli(['map', 'stats', join(work, 'no-such-map.json')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /cannot read the map file/)
  t.equal((await runCli(['map', 'stats'])).code, 2, 'FILE is required')
  t.equal((await runCli(['map', 'frobnicate'])).code, 2, 'unknown subcommand')
})
