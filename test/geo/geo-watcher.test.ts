// The watcher: a good new file is handed over once it has settled, a bad one
// is reported and the last good one stays with the caller. Driven by an
// injected clock and checkNow(); one short test runs the real timers.
import t from 'tap'
import type { Test } from 'tap'
import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GEO_ERROR, watchGeoDatabase, writeMmdb } from '../../src/geo/index.js'
import type { GeoDatabase, GeoWatchOptions } from '../../src/geo/index.js'

const SETTLE_MS = 1000

const database = (name: string) =>
  writeMmdb([{ network: '192.0.2.0/24', record: { city: { names: { en: name } }, location: { latitude: 1.5, longitude: 2.5 } } }], {
    databaseType: 'GeoIP2-City',
    description: name,
    buildEpochSec: 1_767_225_600,
  })

/** A watcher on an injected clock whose poll timer never fires by itself; `served` is what a caller would serve. */
function harness(t: Test, file: string, options: Partial<GeoWatchOptions> = {}) {
  let nowMs = 0
  const state = { served: undefined as GeoDatabase | undefined, loads: 0, errors: [] as Error[] }
  let cancelled = 0
  const watcher = watchGeoDatabase(file, {
    pollIntervalMs: 50,
    settleMs: SETTLE_MS,
    nowMs: () => nowMs,
    schedule: () => ({ cancel: () => void cancelled++ }),
    onLoad: (db) => {
      state.served = db
      state.loads++
    },
    onError: (err) => state.errors.push(err),
    ...options,
  })
  t.teardown(() => watcher.stop())
  const city = () => state.served?.metadata.description
  return {
    state,
    city,
    watcher,
    cancelled: () => cancelled,
    advance: (ms: number) => {
      nowMs += ms
    },
  }
}

t.test('good file at start, bad replacement kept out, good replacement swapped in after it settles', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'city.mmdb')
  writeFileSync(file, database('first'))
  const h = harness(t, file)
  await h.watcher.checkNow()
  t.equal(h.city(), 'first', 'loaded at start without waiting to settle')
  await h.watcher.checkNow()
  t.equal(h.state.loads, 1, 'an unchanged file is not reopened')

  writeFileSync(file, 'half a database') // rewritten in place: a copy in progress, or just broken
  await h.watcher.checkNow()
  h.advance(SETTLE_MS - 1)
  await h.watcher.checkNow()
  t.same(h.state.errors, [], 'not opened before it settles')
  h.advance(1)
  await h.watcher.checkNow()
  t.same(h.state.errors.map((e) => (e as Error & { code: string }).code), [GEO_ERROR.INVALID])
  t.equal(h.city(), 'first', 'the last good database stays')
  h.advance(SETTLE_MS * 5)
  await h.watcher.checkNow()
  t.equal(h.state.errors.length, 1, 'a bad file is reported once, not on every poll')

  // The usual way to publish: write a temporary file, rename it over the old one.
  writeFileSync(join(dir, 'next.tmp'), database('second'))
  renameSync(join(dir, 'next.tmp'), file)
  await h.watcher.checkNow()
  t.equal(h.city(), 'first')
  h.advance(SETTLE_MS)
  await h.watcher.checkNow()
  t.equal(h.city(), 'second')
  t.equal(h.state.loads, 2)
})

t.test('a file that keeps changing is not opened until it holds still', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'city.mmdb')
  const h = harness(t, file, { loadAtStart: false })
  writeFileSync(file, database('x').subarray(0, 10))
  await h.watcher.checkNow()
  h.advance(SETTLE_MS / 2)
  writeFileSync(file, database('x').subarray(0, 100))
  await h.watcher.checkNow()
  h.advance(SETTLE_MS / 2)
  await h.watcher.checkNow()
  t.equal(h.state.loads + h.state.errors.length, 0, 'the settle time restarts on every change')
  writeFileSync(file, database('complete'))
  await h.watcher.checkNow()
  h.advance(SETTLE_MS)
  await h.watcher.checkNow()
  t.equal(h.city(), 'complete')
  t.same(h.state.errors, [])
})

t.test('a missing file is reported once (UNREADABLE); when it appears it is loaded', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'city.mmdb')
  const h = harness(t, file)
  await h.watcher.checkNow()
  t.same(h.state.errors.map((e) => (e as Error & { code: string }).code), [GEO_ERROR.UNREADABLE])
  await h.watcher.checkNow()
  t.equal(h.state.errors.length, 1)
  writeFileSync(file, database('appeared'))
  await h.watcher.checkNow()
  h.advance(SETTLE_MS)
  await h.watcher.checkNow()
  t.equal(h.city(), 'appeared')
  rmSync(file)
  await h.watcher.checkNow()
  h.advance(SETTLE_MS)
  await h.watcher.checkNow()
  t.equal(h.state.errors.length, 2, 'deleted: reported')
  t.equal(h.city(), 'appeared', 'and the caller keeps serving what it had')
})

t.test('after stop() nothing is reported and the poll timer is cancelled', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'city.mmdb')
  writeFileSync(file, database('first'))
  const h = harness(t, file)
  await h.watcher.checkNow()
  h.watcher.stop()
  t.equal(h.cancelled(), 1)
  writeFileSync(file, database('second, longer'))
  await h.watcher.checkNow()
  h.advance(SETTLE_MS)
  await h.watcher.checkNow()
  t.equal(h.city(), 'first')
  t.equal(h.state.loads, 1)
})

t.test('with the real timers a change is picked up by polling alone', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'city.mmdb')
  writeFileSync(file, database('first'))
  const seen: string[] = []
  let resolveSecond: () => void = () => undefined
  const second = new Promise<void>((resolve) => (resolveSecond = resolve))
  const watcher = watchGeoDatabase(file, {
    pollIntervalMs: 10,
    settleMs: 20,
    onLoad: (db) => {
      seen.push(db.metadata.description ?? '')
      if (seen.length === 2) resolveSecond()
    },
    onError: (err) => t.fail(err.message),
  })
  t.teardown(() => watcher.stop())
  await watcher.checkNow()
  writeFileSync(join(dir, 'next.tmp'), database('second'))
  renameSync(join(dir, 'next.tmp'), file)
  // The watcher's timers are unref'd: this one keeps the process alive while we wait (and bounds the wait).
  let keepAlive: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => (keepAlive = setTimeout(resolve, 5000)))
  await Promise.race([second, timeout])
  clearTimeout(keepAlive)
  t.same(seen, ['first', 'second'])
})
