/**
 * kill -9 in the middle of steady ingestion and operator changes, then a
 * restart on the same state directory: every acknowledged measurement batch,
 * override and target change is present, and the map version is not older
 * than any version seen before the crash. The server is the real CLI in its
 * own process; the kill is SIGKILL by PID while requests are in flight.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { getFreePort } from '../helpers/free-port.js'
import { startSteerdns } from '../helpers/steerdns-process.js'
import type { SteerdnsProcess } from '../helpers/steerdns-process.js'
import { EXAMPLE_ZONE_FILE } from '../helpers/test-server.js'

const TOKEN = 'crash-test-token-000001'
const dir = mkdtempSync(join(tmpdir(), 'steerdns-crash-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const configFile = join(dir, 'steerdns.yaml')
writeFileSync(
  configFile,
  [
    'identity: crash-test',
    `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
    'dns: { zonePollIntervalMs: 0 }',
    'log: { level: warn }',
    'targets:',
    '  - { id: a, ipv4: [192.0.2.101], location: { lat: 0, lon: 0 } }',
    '  - { id: b, ipv4: [192.0.2.102], location: { lat: 0, lon: 0 } }',
    'services: [{ name: api.edge.example.net, pool: [a, b] }]',
    'measure: { compileIntervalSec: 0.2, minSamples: 2 }',
    `api: { rateLimitPerMinute: 0, tokens: [{ name: loader, token: ${TOKEN}, roles: [ingest, operate, read] }] }`,
  ].join('\n'),
)

async function start(): Promise<{ process: SteerdnsProcess; api: string }> {
  const dnsPort = await getFreePort()
  const apiPort = await getFreePort()
  const process = await startSteerdns(['serve', '--config', configFile, '--listen', `127.0.0.1:${dnsPort}`, '--api', `127.0.0.1:${apiPort}`, '--state', join(dir, 'state')])
  return { process, api: `http://127.0.0.1:${apiPort}` }
}

async function call(api: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined }
}

/** Batch i: two reports for prefix 10.i.0.0/24 (not adjacent to any other batch's, so never merged). */
const prefixOf = (i: number): string => `10.${Math.floor(i / 250) + 1}.${(i % 250) * 2}.0/24`
const batchOf = (i: number) => ({
  reports: [
    { client: prefixOf(i).replace('.0/24', '.1'), target: i % 2 === 0 ? 'a' : 'b', rttMs: 10 + (i % 7) },
    { client: prefixOf(i).replace('.0/24', '.2'), target: i % 2 === 0 ? 'a' : 'b', rttMs: 11 + (i % 7) },
  ],
})

t.test('kill -9 during ingestion and overrides loses nothing acknowledged', async (t) => {
  const first = await start()
  const ackedBatches: number[] = []
  const ackedOverrides: string[] = []
  const ackedDrains: string[] = []
  let maxVersionSeen = 0
  let killed = false

  const ingest = (async () => {
    for (let i = 0; !killed && i < 2000; i++) {
      try {
        const r = await call(first.api, 'POST', '/v1/measurements', batchOf(i))
        if (r.status === 200 && (r.json as { accepted: number }).accepted === 2) ackedBatches.push(i)
      } catch {
        return // the connection died with the server
      }
    }
  })()
  const operate = (async () => {
    for (let i = 0; !killed && i < 500; i++) {
      try {
        const r = await call(first.api, 'POST', '/v1/overrides', { prefix: `172.16.${i}.0/24`, targets: ['b'], reason: `crash ${i}` })
        if (r.status === 201) ackedOverrides.push((r.json as { id: string }).id)
        const target = i % 2 === 0 ? 'a' : 'b'
        const d = await call(first.api, 'PATCH', `/v1/targets/${target}`, { state: 'up', weight: i + 1, reason: `weight ${i}` })
        if (d.status === 200) ackedDrains.push(`${target}=${i + 1}`)
        const v = (await call(first.api, 'GET', '/v1/map')).json as { version: number }
        maxVersionSeen = Math.max(maxVersionSeen, v.version)
      } catch {
        return
      }
    }
  })()

  // Kill once enough is acknowledged and at least one compile has published (bounded wait).
  for (let waited = 0; waited < 30_000 && (ackedBatches.length < 60 || ackedOverrides.length < 15 || maxVersionSeen < 2); waited += 50) {
    await new Promise((r) => setTimeout(r, 50))
  }
  killed = true
  process.kill(first.process.pid, 'SIGKILL')
  await first.process.stop()
  await Promise.all([ingest, operate])
  t.ok(ackedBatches.length >= 60, `${ackedBatches.length} measurement batches acknowledged before the kill`)
  t.ok(ackedOverrides.length >= 15, `${ackedOverrides.length} overrides acknowledged`)
  t.ok(maxVersionSeen >= 2, `map version ${maxVersionSeen} seen before the kill`)

  const second = await start()
  t.teardown(() => second.process.stop())
  const version = ((await call(second.api, 'GET', '/v1/map')).json as { version: number }).version
  t.ok(version >= maxVersionSeen, `after the restart the map version is ${version}, not older than ${maxVersionSeen}`)

  const overrides = new Set(((await call(second.api, 'GET', '/v1/overrides')).json as { id: string }[]).map((o) => o.id))
  const lostOverrides = ackedOverrides.filter((id) => !overrides.has(id))
  t.same(lostOverrides, [], `every acknowledged override is present (${overrides.size} held)`)

  const lastWeight = ackedDrains.at(-1)
  const [target, weight] = (lastWeight ?? '=').split('=')
  const targets = (await call(second.api, 'GET', '/v1/targets')).json as { id: string; weight: number }[]
  t.ok(lastWeight !== undefined, 'target changes were acknowledged')
  // Weights only grow in this run, so a value below the last acknowledged one means a lost change.
  t.ok(
    (targets.find((x) => x.id === target)?.weight ?? 0) >= Number(weight),
    `the last acknowledged weight of ${target} (${weight}) or a later one is in force`,
  )
  t.not(targets.find((x) => x.id === target)?.weight, 100, 'not the configured capacity: the change survived')

  // Replayed reports make the restarted server compile once; every acknowledged prefix must be in that map.
  let entries = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const map = (await call(second.api, 'GET', '/v1/map/export')).json as { version: number; entries: { prefix: string }[] }
    entries = new Set(map.entries.map((e) => e.prefix))
    if (map.version > version || ackedBatches.every((b) => entries.has(prefixOf(b)))) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const lostBatches = ackedBatches.filter((b) => !entries.has(prefixOf(b)))
  t.same(lostBatches, [], `every acknowledged batch's prefix is in the map (${entries.size} entries)`)
})

t.test('an imported map survives kill -9 and a restart: reports from before the import do not compile over it', async (t) => {
  const stateDir = join(dir, 'state-import')
  const dnsPort = await getFreePort()
  const apiPort = await getFreePort()
  const args = ['serve', '--config', configFile, '--listen', `127.0.0.1:${dnsPort}`, '--api', `127.0.0.1:${apiPort}`, '--state', stateDir]
  const api = `http://127.0.0.1:${apiPort}`
  const first = await startSteerdns(args)
  // Reports that make a the best for 10.200.0.0/24, then an import that says b.
  t.equal((await call(api, 'POST', '/v1/measurements', { reports: [{ client: '10.200.0.1', target: 'a', rttMs: 5 }, { client: '10.200.0.2', target: 'a', rttMs: 6 }] })).status, 200)
  const imported = await call(api, 'PUT', '/v1/map', { version: 100, entries: [{ prefix: '10.200.0.0/24', targets: [{ id: 'b', score: 5, samples: 10 }] }] })
  t.equal(imported.status, 200)
  const importedVersion = (imported.json as { version: number }).version
  process.kill(first.pid, 'SIGKILL')
  await first.stop()

  const second = await startSteerdns(args)
  t.teardown(() => second.stop())
  // Several compile intervals (0.2 s): a compile from the replayed reports would have happened by now.
  await new Promise((r) => setTimeout(r, 1000))
  const map = (await call(api, 'GET', '/v1/map')).json as { version: number }
  t.equal(map.version, importedVersion, 'the imported version still serves')
  const exported = (await call(api, 'GET', '/v1/map/export')).json as { entries: { prefix: string; targets: { id: string }[] }[] }
  t.same(exported.entries.map((e) => `${e.prefix}=${e.targets[0]?.id}`), ['10.200.0.0/24=b'], 'with its own ranking')
})
