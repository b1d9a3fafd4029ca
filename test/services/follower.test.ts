/**
 * The follower against a fake StateFeed (the interface a process-IPC feed
 * will implement too): it applies published states into the steering
 * snapshot, fetches on announcements and reconnections, keeps serving when
 * the feed fails (never clears), ignores an empty store, saves what it
 * applied in the state directory and serves that at the next start when the
 * feed is unreachable.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { greatCircleKm } from '../../src/geo/index.js'
import { createFollower, emptyOperatorSnapshot, PUBLISHED_FORMAT } from '../../src/services/index.js'
import type { PublishedState, StateFeed } from '../../src/services/index.js'
import { createFollowerCache } from '../../src/services/follower-cache.js'
import { openStateDir } from '../../src/state/index.js'
import { buildSteeringSetup, createSteeringState, emptyLatencyMap, explain, parseClientKey } from '../../src/steering/index.js'
import { createLogger } from '../../src/telemetry/index.js'

const config = parseConfigText(
  [
    'zones: [{ origin: edge.example.net, file: x.zone }]',
    'targets:',
    '  - { id: a, ipv4: [192.0.2.1], location: { lat: 0, lon: 0 } }',
    '  - { id: b, ipv4: [192.0.2.2], location: { lat: 0, lon: 0 } }',
    'services: [{ name: api.edge.example.net, pool: [a, b] }]',
    'map: { tolerancePct: 0 }',
  ].join('\n'),
  { file: '/tmp/steerdns.yaml', env: {} },
)
const setup = buildSteeringSetup(config)
const log = createLogger({ level: 'silent', identity: 'test' })

function mapJson(version: number, target: string) {
  return { version, entries: [{ prefix: '198.51.100.0/24', targets: [{ id: target, score: 10, samples: 50 }] }] }
}

function published(version: number, opts: { mapVersion?: number; target?: string; pin?: string; drain?: string } = {}): PublishedState {
  const operator = emptyOperatorSnapshot()
  const overrides = opts.pin ? [{ record: { id: 'ovr-1', kind: 'pin' as const, prefix: '203.0.113.0/24', targets: [opts.pin], reason: 'test' }, createdAtMs: 0, createdBy: 'ops' }] : []
  const admin = opts.drain ? { [opts.drain]: { admin: 'drain' as const, reason: 'test', changedAtMs: 0 } } : {}
  const mapVersion = opts.mapVersion ?? 0
  return {
    format: PUBLISHED_FORMAT,
    version,
    mapVersion,
    ...(mapVersion > 0 ? { map: mapJson(mapVersion, opts.target ?? 'a') } : {}),
    mapSource: 'compiled',
    operator: { ...operator, overrides, admin },
    operatorRev: 1,
    health: {},
  }
}

/** An in-memory feed: `state` is what the store holds; `down` makes every fetch fail. */
function fakeFeed() {
  const listeners: ((version: number | undefined) => void)[] = []
  const feed = {
    state: published(0),
    down: false,
    fetches: 0,
    announce: (version: number | undefined) => listeners.forEach((l) => l(version)),
    async fetchAll(have?: { version: number; mapVersion: number }) {
      feed.fetches++
      if (feed.down) throw new Error('feed unreachable')
      if (have && have.version === feed.state.version) return undefined
      if (have && have.mapVersion === feed.state.mapVersion) {
        const rest: PublishedState = { ...feed.state }
        delete (rest as { map?: unknown }).map
        return rest
      }
      return feed.state
    },
    onAnnounce: (listener: (version: number | undefined) => void) => void listeners.push(listener),
    close: async () => undefined,
  }
  return feed satisfies StateFeed
}

function answerFor(steering: ReturnType<typeof createSteeringState>, client: string): string | undefined {
  return explain(steering.current(), 'api.edge.example.net', parseClientKey(client, 'ecs'), 4, Date.now())?.answerTargets.join(',')
}

function newSteering() {
  return createSteeringState({ setup, map: emptyLatencyMap(), geo: undefined, distanceKm: greatCircleKm })
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5))
}

t.test('applies published states, follows announcements, keeps serving when the feed fails', async (t) => {
  const feed = fakeFeed()
  feed.state = published(3, { mapVersion: 1, target: 'b', pin: 'a' })
  const steering = newSteering()
  const follower = createFollower({ feed, steering, setup, initialMap: emptyLatencyMap(), initialSource: 'empty', overloadWatermark: 0.9, pollIntervalMs: 60_000, nowMs: Date.now, log })
  t.teardown(() => follower.close())
  await follower.start(async () => true)
  t.equal(follower.applied()?.version, 3)
  t.equal(steering.current().map.version, 1)
  t.equal(answerFor(steering, '198.51.100.0/24'), 'b', 'the map serves')
  t.equal(answerFor(steering, '203.0.113.0/24'), 'a', 'the pin serves')

  feed.state = published(4, { mapVersion: 2, target: 'a' })
  feed.announce(4)
  await waitFor(() => follower.applied()?.version === 4)
  t.equal(answerFor(steering, '198.51.100.0/24'), 'a', 'an announcement brings the new map')
  t.same(follower.applied()?.operator.overrides, [], 'and the pin is gone')

  const fetches = feed.fetches
  feed.announce(4)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(feed.fetches, fetches, 'an announcement of the version held fetches nothing')

  feed.down = true
  await t.rejects(follower.sync(), /unreachable/)
  t.equal(answerFor(steering, '198.51.100.0/24'), 'a', 'a failing feed leaves the state serving')
  t.equal(follower.status().reachable, false)

  feed.down = false
  feed.state = published(0)
  feed.announce(undefined)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(steering.current().map.version, 2, 'an empty store (version 0) clears nothing')
  t.equal(follower.status().reachable, true)

  feed.state = published(5, { mapVersion: 2, drain: 'a' })
  feed.announce(undefined)
  await waitFor(() => follower.applied()?.version === 5)
  t.equal(steering.current().map.version, 2, 'the map is not re-sent when its version is held')
  t.equal(answerFor(steering, '198.51.100.0/24'), 'b', 'a drained target loses its clients')
})

t.test('a state this configuration cannot compile is refused; the previous one keeps serving', async (t) => {
  const feed = fakeFeed()
  feed.state = published(1, { mapVersion: 1, target: 'b' })
  const steering = newSteering()
  const follower = createFollower({ feed, steering, setup, initialMap: emptyLatencyMap(), initialSource: 'empty', overloadWatermark: 0.9, pollIntervalMs: 60_000, nowMs: Date.now, log })
  t.teardown(() => follower.close())
  await follower.start(async () => true)
  feed.state = { ...published(2), mapVersion: 2, map: { version: 2, entries: [{ prefix: '198.51.100.0/24', targets: [{ id: 'zz', score: 1, samples: 9 }] }] } }
  await follower.sync()
  t.equal(follower.applied()?.version, 1)
  t.equal(answerFor(steering, '198.51.100.0/24'), 'b')
})

t.test('the applied state is saved and served at the next start when the feed is down', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'steerdns-follower-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  {
    const stateDir = await openStateDir(dir)
    const feed = fakeFeed()
    feed.state = published(7, { mapVersion: 4, target: 'b', pin: 'b' })
    const follower = createFollower({ feed, steering: newSteering(), setup, initialMap: emptyLatencyMap(), initialSource: 'empty', overloadWatermark: 0.9, cache: createFollowerCache(stateDir, setup), pollIntervalMs: 60_000, nowMs: Date.now, log })
    await follower.start(async () => true)
    await new Promise((r) => setTimeout(r, 100))
    await follower.close()
    await stateDir.close()
  }
  const stateDir = await openStateDir(dir)
  t.teardown(() => stateDir.close())
  const feed = fakeFeed()
  feed.down = true
  const steering = newSteering()
  const follower = createFollower({ feed, steering, setup, initialMap: emptyLatencyMap(), initialSource: 'empty', overloadWatermark: 0.9, cache: createFollowerCache(stateDir, setup), pollIntervalMs: 60_000, nowMs: Date.now, log })
  t.teardown(() => follower.close())
  await follower.start(async () => false)
  t.equal(follower.applied()?.from, 'cache')
  t.equal(follower.applied()?.version, 7)
  t.equal(steering.current().map.version, 4, 'the saved map serves from the first query')
  t.equal(answerFor(steering, '198.51.100.0/24'), 'b')
  t.equal(answerFor(steering, '203.0.113.0/24'), 'b', 'and the saved pin')

  feed.down = false
  feed.state = published(8, { mapVersion: 4, target: 'b' })
  feed.announce(undefined)
  await waitFor(() => follower.applied()?.version === 8)
  t.equal(follower.applied()?.from, 'feed', 'the feed takes over once it answers')
  t.equal(steering.current().map.version, 4, 'keeping the saved map, whose version the store still has')
})
