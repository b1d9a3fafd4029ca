/**
 * The shared store against a real redis-server (random port, no
 * persistence, killed by PID): the compile lock and fencing, map publishes
 * that only move forward, operator writes by revision, the audit cap, the
 * measurement stream and the checkpoint that trims it, seeding an empty
 * store, announcements, and StoreError UNAVAILABLE (not a hang) without
 * Redis. Each test uses its own key prefix.
 */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { createRedisStore, isStoreError, StoreErrorCode } from '../../src/store/index.js'
import type { SharedStore, StoreEvent } from '../../src/store/index.js'
import { getFreePort } from '../helpers/free-port.js'

const port = await getFreePort()
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
t.teardown(() => {
  if (redis.pid !== undefined && redis.exitCode === null) process.kill(redis.pid, 'SIGKILL')
})

function ping(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => done(chunk.toString().startsWith('+PONG')))
  })
}
for (let i = 0; i < 200 && !(await ping()); i++) await new Promise((r) => setTimeout(r, 25))

let prefixes = 0
async function open(t: Test, prefix = `t${++prefixes}:`, auditKeep = 100): Promise<SharedStore> {
  const store = createRedisStore({ url: `redis://127.0.0.1:${port}/0`, keyPrefix: prefix, timeoutMs: 1000, auditKeep })
  t.teardown(() => store.close())
  t.ok(await store.waitConnected(5000), 'connected')
  return store
}

t.test('the compile lock fences map publishes; versions only move forward', async (t) => {
  const a = await open(t, 'lock:')
  const b = await open(t, 'lock:')
  t.ok(await a.tryLock(5000), 'a takes the lock')
  t.notOk(await b.tryLock(5000), 'b cannot')
  t.ok(await a.renewLock(5000), 'a renews')
  t.notOk(await b.renewLock(5000), 'b cannot renew what it does not hold')
  t.same(await b.publishMap({ fenced: true, mapVersion: 1, mapJson: '{"version":1,"entries":[]}', source: 'compiled' }), { status: 'fenced' }, 'b publishing as leader is fenced out')
  t.same(await a.publishMap({ fenced: true, mapVersion: 1, mapJson: '{"version":1,"entries":[]}', source: 'compiled' }), { status: 'published', version: 1 })
  t.same(await a.publishMap({ fenced: true, mapVersion: 1, mapJson: '{"version":1,"entries":[]}', source: 'compiled' }), { status: 'stale', currentMapVersion: 1 }, 'the same version again is refused')
  t.same(await b.publishMap({ fenced: false, mapVersion: 5, mapJson: '{"version":5,"entries":[]}', source: 'imported', audit: '{"action":"map.import"}' }), { status: 'published', version: 2 }, 'an import needs no lock')
  t.equal(await a.readMapVersion(), 5)
  t.same(await a.readAudit(10), ['{"action":"map.import"}'])
  await a.releaseLock()
  t.ok(await b.tryLock(5000), 'released: b takes it')
  await a.releaseLock()
  t.notOk(await a.tryLock(5000), 'a release by a non-holder leaves it held')
  const state = await a.fetchState(-1, -1)
  t.not(state, 'unchanged')
  if (state !== 'unchanged') {
    t.equal(state.version, 2)
    t.equal(state.mapVersion, 5)
    t.equal(state.mapSource, 'imported')
    t.equal(state.mapJson, '{"version":5,"entries":[]}')
  }
  t.equal(await a.fetchState(2, 5), 'unchanged', 'nothing new: one integer comes back')
  const sameMap = await a.fetchState(1, 5)
  t.equal(sameMap !== 'unchanged' && sameMap.mapJson, undefined, 'the map is left out when the caller holds its version')
})

t.test('operator writes succeed only on the revision they read; the audit list is capped', async (t) => {
  const store = await open(t, 'op:', 3)
  t.same(await store.readOperator(), { rev: 0, json: undefined })
  t.same(await store.writeOperator(0, '{"n":1}', ['1', '2']), { ok: true, version: 1, rev: 1 })
  t.same(await store.writeOperator(0, '{"n":2}', ['x']), { ok: false, rev: 1 }, 'a write computed from rev 0 loses')
  t.same(await store.writeOperator(1, '{"n":2}', ['3', '4']), { ok: true, version: 2, rev: 2 })
  t.same(await store.readOperator(), { rev: 2, json: '{"n":2}' })
  t.same(await store.readAudit(10), ['2', '3', '4'], 'the newest three')
})

t.test('measurements stream, checkpoints that trim it, and their fencing', async (t) => {
  const leader = await open(t, 'ms:')
  const other = await open(t, 'ms:')
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push(await leader.appendMeasurements(`{"i":${i}}`))
  t.same((await leader.readMeasurements('0-0', 100)).map((e) => e.json), ['{"i":0}', '{"i":1}', '{"i":2}', '{"i":3}', '{"i":4}'])
  t.same((await leader.readMeasurements(ids[2] as string, 100)).map((e) => e.id), ids.slice(3), 'after an id, exclusive')
  t.same((await leader.readMeasurements('0-0', 2)).length, 2, 'COUNT bounds a read')
  t.ok(await leader.tryLock(5000))
  t.equal(await other.saveCheckpoint(ids[2] as string, JSON.stringify({ lastId: ids[2] })), 'fenced', 'only the lock holder checkpoints')
  t.equal(await leader.saveCheckpoint(ids[2] as string, JSON.stringify({ lastId: ids[2], snapshot: {} })), 'written')
  t.same((await leader.readMeasurements('0-0', 100)).map((e) => e.id), ids.slice(2), 'trimmed below the checkpoint id, never past it')
  t.equal(await leader.saveCheckpoint(ids[1] as string, JSON.stringify({ lastId: ids[1] })), 'older', 'a checkpoint never goes back')
  t.same(JSON.parse((await leader.loadCheckpoint()) ?? '{}'), { lastId: ids[2], snapshot: {} })
})

t.test('an empty store is seeded once; announcements reach subscribers', async (t) => {
  const store = await open(t, 'seed:')
  const listener = await open(t, 'seed:')
  const events: StoreEvent[] = []
  listener.onEvent((e) => events.push(e))
  await new Promise((r) => setTimeout(r, 100))
  const seed = { version: 9, mapVersion: 4, mapJson: '{"version":4,"entries":[]}', mapSource: 'compiled', operatorJson: '{"o":1}', operatorRev: 3, healthJson: '{}' }
  t.ok(await store.seed(seed), 'seeded')
  t.notOk(await store.seed({ ...seed, version: 10 }), 'a store holding a state is not seeded again')
  const state = await store.fetchState(-1, -1)
  t.same(state, { version: 9, mapVersion: 4, mapJson: seed.mapJson, mapSource: 'compiled', operatorJson: '{"o":1}', operatorRev: 3, healthJson: '{}' })
  t.same(await store.writeOperator(3, '{"o":2}', []), { ok: true, version: 10, rev: 4 }, 'versions continue from the seed')
  for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
  t.same(events, [{ version: 9, kind: 'seed' }, { version: 10, kind: 'operator' }])
})

t.test('without Redis every call fails with STEER_ERR_STORE_UNAVAILABLE, at once', async (t) => {
  const deadPort = await getFreePort()
  const store = createRedisStore({ url: `redis://127.0.0.1:${deadPort}/0`, keyPrefix: 'x:', timeoutMs: 300, auditKeep: 10 })
  t.teardown(() => store.close())
  t.notOk(await store.waitConnected(300), 'never connects')
  t.notOk(store.isConnected())
  const err = await store.fetchState(-1, -1).catch((e: unknown) => e)
  t.ok(isStoreError(err, StoreErrorCode.UNAVAILABLE), 'fetch')
  const write = await store.appendMeasurements('{}').catch((e: unknown) => e)
  t.ok(isStoreError(write, StoreErrorCode.UNAVAILABLE), 'append')
})
