// The state directory: creation, the lock (in-process, stale pids, boot ids),
// documents, names, temp-file cleanup and close. Locks held by other live
// processes and kill -9 are in processes.test.ts.
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { openStateDir } from '../../src/state/index.js'
import type * as DirLockModule from '../../src/state/dir-lock.js'
import type { StateError } from '../../src/state/index.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-statedir-'))
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

function thrown(fn: () => unknown): StateError {
  try {
    fn()
  } catch (err) {
    return err as StateError
  }
  throw new Error('expected a throw')
}

const bootId = (): Promise<string> => readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((s) => s.trim(), () => '')

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  const pid = child.pid as number
  await new Promise((resolve) => child.once('exit', resolve))
  return pid
}

t.test('creates the directory (0700, parents too), locks it with our pid, releases on close', async (t) => {
  const base = await tempDir(t)
  const dir = join(base, 'a', 'state')
  const stateDir = await openStateDir(dir)
  t.equal(stateDir.dir, dir)
  if (process.platform !== 'win32') t.equal((await stat(dir)).mode & 0o777, 0o700)
  t.equal(stateDir.lockPath, join(dir, 'steerdns.lock'))
  t.equal(await readFile(stateDir.lockPath, 'utf8'), `${process.pid}\n${await bootId()}\n`)
  t.same(await readdir(dir), ['steerdns.lock'], 'no temporary file of the lock left')
  await stateDir.close()
  await stateDir.close()
  t.same(await readdir(dir), [], 'lock removed')
  const again = await openStateDir(dir)
  await again.close()
})

t.test('a relative path is resolved against the working directory', async (t) => {
  const base = await tempDir(t)
  const stateDir = await openStateDir(relative(process.cwd(), join(base, 'rel')))
  t.equal(stateDir.dir, join(base, 'rel'))
  await stateDir.close()
})

t.test('a second open in the same process is LOCKED naming the lock file and our pid', async (t) => {
  const dir = await tempDir(t)
  const stateDir = await openStateDir(dir)
  const err = await rejection(openStateDir(dir))
  t.equal(err.code, 'STEER_ERR_STATE_LOCKED')
  t.equal(err.file, join(dir, 'steerdns.lock'))
  t.equal(err.pid, process.pid)
  t.match(err.message, String(process.pid))
  await stateDir.close()
})

t.test('stale locks are taken over: a dead pid, our own pid from a past life, another boot, garbage', async (t) => {
  const boot = await bootId()
  const cases: [string, string][] = [
    ['a dead pid', `${await deadPid()}\n${boot}\n`],
    ['a dead pid, no boot id (another platform)', `${await deadPid()}\n`],
    ['our own pid, not held by this process (a container restarted as the same pid)', `${process.pid}\n${boot}\n`],
    ['empty', ''],
    ['not a pid', 'hello\n'],
    ['pid 0 (would signal our process group)', '0\n'],
  ]
  if (boot !== '') cases.push(['a live pid from another boot', `1\n00000000-0000-0000-0000-000000000000\n`])
  for (const [name, content] of cases) {
    const dir = await tempDir(t)
    await writeFile(join(dir, 'steerdns.lock'), content)
    const stateDir = await openStateDir(dir)
    t.equal(await readFile(stateDir.lockPath, 'utf8'), `${process.pid}\n${boot}\n`, name)
    await stateDir.close()
    t.same(await readdir(dir), [], `${name}: nothing left behind`)
  }
})

t.test('a live pid of this boot holds the lock (pid 1 always runs)', { skip: process.platform === 'win32' && 'no pid 1' }, async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'steerdns.lock'), `1\n${await bootId()}\n`)
  const err = await rejection(openStateDir(dir))
  t.equal(err.code, 'STEER_ERR_STATE_LOCKED')
  t.equal(err.pid, 1)
  t.equal(err.file, join(dir, 'steerdns.lock'))
  t.equal(await readFile(join(dir, 'steerdns.lock'), 'utf8'), `1\n${await bootId()}\n`, 'left alone')
})

t.test('a path that cannot be a directory is STEER_ERR_STATE_IO naming it', async (t) => {
  const base = await tempDir(t)
  const file = join(base, 'file')
  await writeFile(file, 'x')
  for (const dir of [file, join(file, 'below')]) {
    const err = await rejection(openStateDir(dir))
    t.equal(err.code, 'STEER_ERR_STATE_IO')
    t.equal(err.file, dir)
  }
})

t.test('a state directory that cannot be created is STEER_ERR_STATE_IO naming it', async (t) => {
  // A regular file where a parent directory should be: ENOTDIR even for root (tests run as root here).
  const dir = await tempDir(t)
  await writeFile(join(dir, 'not-a-dir'), 'x')
  const wanted = join(dir, 'not-a-dir', 'state')
  const err = await rejection(openStateDir(wanted))
  t.equal(err.code, 'STEER_ERR_STATE_IO')
  t.match(err.file, wanted)
})

t.test('temporary files a crash left are removed at open', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, '.overrides.json.tmp-0123456789abcdef'), '{"half')
  await writeFile(join(dir, '.steerdns.lock.tmp-0123456789abcdef'), '123\n')
  await writeFile(join(dir, 'overrides.json'), '{}\n')
  const stateDir = await openStateDir(dir)
  t.same(stateDir.removedTempFiles.map((p) => relative(dir, p)).sort(), ['.overrides.json.tmp-0123456789abcdef', '.steerdns.lock.tmp-0123456789abcdef'])
  t.same((await readdir(dir)).sort(), ['overrides.json', 'steerdns.lock'])
  await stateDir.close()
})

t.test('documents: missing is undefined, writes replace atomically in call order, pretty JSON on disk', async (t) => {
  const dir = await tempDir(t)
  const stateDir = await openStateDir(dir)
  const doc = stateDir.document<{ v: number; rules?: string[] }>('overrides')
  t.equal(stateDir.document('overrides'), doc, 'one object per name')
  t.equal(doc.path, join(dir, 'overrides.json'))
  t.equal(await doc.read(), undefined)
  await doc.write({ v: 1, rules: ['a'] })
  t.same(await doc.read(), { v: 1, rules: ['a'] })
  t.equal(await readFile(doc.path, 'utf8'), '{\n  "v": 1,\n  "rules": [\n    "a"\n  ]\n}\n')
  const writes = Array.from({ length: 20 }, (_, i) => doc.write({ v: i + 2 }))
  await Promise.all(writes)
  t.same(await doc.read(), { v: 21 }, 'the last write wins')
  t.same((await readdir(dir)).sort(), ['overrides.json', 'steerdns.lock'])
  const cyclic: Record<string, unknown> = {}
  cyclic['me'] = cyclic
  for (const bad of [undefined, 1n, cyclic]) {
    const err = await rejection(doc.write(bad as never))
    t.equal(err.code, 'STEER_ERR_STATE_BAD_VALUE')
    t.equal(err.file, doc.path)
  }
  t.same(await doc.read(), { v: 21 }, 'refused writes change nothing')
  await stateDir.close()
})

t.test('a document that is not JSON is DOCUMENT_CORRUPT naming the file, and left in place', async (t) => {
  const dir = await tempDir(t)
  for (const text of ['{"v":', '', 'not json']) {
    await writeFile(join(dir, 'targets.json'), text)
    const stateDir = await openStateDir(dir)
    const err = await rejection(stateDir.document('targets').read())
    t.equal(err.code, 'STEER_ERR_STATE_DOCUMENT_CORRUPT')
    t.equal(err.file, join(dir, 'targets.json'))
    t.equal(await readFile(join(dir, 'targets.json'), 'utf8'), text)
    await stateDir.close()
  }
})

t.test('names: kebab-case only, one journal writer per name, no name both journal and document', async (t) => {
  const dir = await tempDir(t)
  const stateDir = await openStateDir(dir)
  for (const bad of ['', '../x', 'a/b', 'a.b', 'Map', '-x', '1x', 'x'.repeat(65), 'steerdns lock']) {
    t.equal(thrown(() => stateDir.journal(bad)).code, 'STEER_ERR_STATE_MISUSE', `journal ${JSON.stringify(bad)}`)
    t.equal(thrown(() => stateDir.document(bad)).code, 'STEER_ERR_STATE_MISUSE', `document ${JSON.stringify(bad)}`)
  }
  const journal = stateDir.journal('measurements')
  const twice = thrown(() => stateDir.journal('measurements'))
  t.equal(twice.code, 'STEER_ERR_STATE_MISUSE')
  t.equal(twice.file, join(dir, 'measurements'))
  t.equal(thrown(() => stateDir.document('measurements')).code, 'STEER_ERR_STATE_MISUSE')
  const auditLog = stateDir.document('audit-log')
  t.equal(thrown(() => stateDir.journal('audit-log')).code, 'STEER_ERR_STATE_MISUSE')
  await journal.close()
  const reopened = stateDir.journal('measurements')
  t.not(reopened, journal, 'a closed journal can be opened again')
  await stateDir.close()
  t.equal(thrown(() => stateDir.journal('other')).code, 'STEER_ERR_STATE_MISUSE')
  t.equal(thrown(() => stateDir.document('audit-log')).code, 'STEER_ERR_STATE_MISUSE')
  t.equal((await rejection(auditLog.write({}))).code, 'STEER_ERR_STATE_MISUSE', 'a document object kept past close')
})

t.test('close waits for pending appends and document writes, then releases the lock', async (t) => {
  const dir = await tempDir(t)
  const stateDir = await openStateDir(dir)
  const journal = stateDir.journal('m')
  await journal.replay()
  const appended = Promise.all(Array.from({ length: 50 }, (_, i) => journal.append([i])))
  const written = stateDir.document('doc').write({ done: true })
  await stateDir.close()
  t.equal((await appended).length, 50)
  await written
  t.notOk((await readdir(dir)).includes('steerdns.lock'))
  const again = await openStateDir(dir)
  const r = await again.journal('m').replay()
  t.equal(r.records.length, 50)
  t.same(await again.document('doc').read(), { done: true })
  await again.close()
})

t.test('two directories are independent', async (t) => {
  const a = await openStateDir(join(await tempDir(t), 'a'))
  const b = await openStateDir(join(await tempDir(t), 'b'))
  await a.document('x').write(1)
  t.equal(await b.document('x').read(), undefined)
  await Promise.all([a.close(), b.close()])
})

t.test('without hard links (link(2) refused) the lock falls back to an exclusive create', async (t) => {
  const realFs = await import('node:fs/promises')
  const noLinks = {
    ...realFs,
    link: async () => {
      throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' })
    },
  }
  const dirLock = await t.mockImport<typeof DirLockModule>('../../src/state/dir-lock.js', { 'node:fs/promises': noLinks })
  const dir = await tempDir(t)
  const lock = await dirLock.acquireDirLock(dir)
  t.equal(await readFile(lock.path, 'utf8'), `${process.pid}\n${await bootId()}\n`)
  const err = await rejection(dirLock.acquireDirLock(dir))
  t.equal(err.code, 'STEER_ERR_STATE_LOCKED', 'still exclusive in-process')
  await lock.release()
  await writeFile(join(dir, 'steerdns.lock'), `1\n${await bootId()}\n`)
  t.equal((await rejection(dirLock.acquireDirLock(dir))).code, 'STEER_ERR_STATE_LOCKED', 'and against a live holder')
  await writeFile(join(dir, 'steerdns.lock'), `${await deadPid()}\n`)
  const taken = await dirLock.acquireDirLock(dir)
  t.same((await readdir(dir)).sort(), ['steerdns.lock'], 'a stale lock is taken over, nothing left aside')
  await taken.release()
})
