// Atomic file writes: round trips, replacement, modes, errors that name the
// file, no temporary file left behind, and crash leftovers removed.
import { mkdtemp, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { readFileIfExists, removeStaleTempFiles, syncDirectory, writeFileAtomic } from '../../src/state/atomic-file.js'
import type { StateError } from '../../src/state/state-error.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-atomic-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function rejection(promise: Promise<unknown>): Promise<StateError> {
  try {
    await promise
  } catch (err) {
    return err as StateError
  }
  throw new Error('expected a rejection')
}

t.test('writes, replaces and reads back strings and bytes; nothing else left in the directory', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'doc.json')
  t.equal(await readFileIfExists(path), undefined, 'missing is undefined')
  await writeFileAtomic(path, '{"a":1}')
  t.equal((await readFileIfExists(path))?.toString(), '{"a":1}')
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]))
  t.same([...((await readFileIfExists(path)) ?? [])], [1, 2, 3])
  await writeFileAtomic(path, '')
  t.equal((await readFileIfExists(path))?.length, 0, 'an empty file is not missing')
  t.same(await readdir(dir), ['doc.json'])
})

t.test('new files are 0600 unless asked otherwise', { skip: process.platform === 'win32' && 'POSIX modes' }, async (t) => {
  const dir = await tempDir(t)
  await writeFileAtomic(join(dir, 'a'), 'x')
  await writeFileAtomic(join(dir, 'b'), 'x', { mode: 0o644 })
  t.equal((await stat(join(dir, 'a'))).mode & 0o777, 0o600)
  t.equal((await stat(join(dir, 'b'))).mode & 0o777, 0o644 & ~process.umask())
})

t.test('failures are STEER_ERR_STATE_IO naming the path, and leave no temporary file', async (t) => {
  const dir = await tempDir(t)
  const missingDir = join(dir, 'nope', 'doc.json')
  const err = await rejection(writeFileAtomic(missingDir, 'x'))
  t.equal(err.code, 'STEER_ERR_STATE_IO')
  t.equal(err.file, missingDir)
  t.match(err.message, missingDir)

  // Renaming over a non-empty directory fails after the temporary file was written.
  const blocked = join(dir, 'blocked')
  await mkdir(blocked)
  await writeFile(join(blocked, 'inside'), 'x')
  const renameErr = await rejection(writeFileAtomic(blocked, 'x'))
  t.equal(renameErr.code, 'STEER_ERR_STATE_IO')
  t.equal(renameErr.file, blocked)
  t.same((await readdir(dir)).sort(), ['blocked'], 'the temporary file was removed')

  const readErr = await rejection(readFileIfExists(blocked))
  t.equal(readErr.code, 'STEER_ERR_STATE_IO', 'a directory is not "missing"')
  t.equal(readErr.file, blocked)

  const syncErr = await rejection(syncDirectory(join(dir, 'nope')))
  t.equal(syncErr.file, join(dir, 'nope'))
})

t.test('temporary files a crash left are removed; other files are kept', async (t) => {
  const dir = await tempDir(t)
  const leftovers = ['.doc.json.tmp-0123456789abcdef', '.m.snapshot.tmp-fedcba9876543210']
  const keep = ['doc.json', '.hidden', 'x.tmp-0123456789abcdef', '.y.tmp-short', 'm.0000000000000001.wal']
  for (const name of [...leftovers, ...keep]) await writeFile(join(dir, name), 'x')
  const removed = await removeStaleTempFiles(dir)
  t.same(removed.sort(), leftovers.map((n) => join(dir, n)).sort())
  t.same((await readdir(dir)).sort(), [...keep].sort())
  t.same(await removeStaleTempFiles(dir), [], 'idempotent')
  const err = await rejection(removeStaleTempFiles(join(dir, 'nope')))
  t.equal(err.code, 'STEER_ERR_STATE_IO')
  t.equal(err.file, join(dir, 'nope'))
})
