/**
 * One process per state directory: a lock file holding the owner's pid (and
 * the Linux boot id). Node has no flock(2), so the lock is a file created
 * with link(2), which fails if the name exists and publishes the content in
 * the same step (no window where another opener reads an empty lock). A lock
 * left by a dead process is taken over: its pid no longer runs
 * (process.kill(pid, 0) fails with ESRCH), it was written before the last
 * reboot (another boot id: after a reboot the pid may belong to anyone), or
 * it holds our own pid while this process does not hold it (a container
 * restarted as pid 1 again).
 *
 * Limits: pids are per pid namespace, so two containers sharing one volume
 * cannot see each other's pid; give each its own state directory.
 */
import { randomBytes } from 'node:crypto'
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ioError, StateError, StateErrorCode } from './state-error.js'

export const LOCK_FILE_NAME = 'steerdns.lock'
/** Directories this process holds, by absolute path: a second open in-process is refused too. */
const held = new Set<string>()
/** Attempts before giving up when other processes keep creating and removing the lock. */
const MAX_ATTEMPTS = 8

export interface DirLock {
  readonly path: string
  /** Removes the lock file if it is still ours. Idempotent; never rejects. */
  release(): Promise<void>
}

interface LockHolder {
  readonly pid: number
  readonly bootId: string | undefined
}

let cachedBootId: Promise<string | undefined> | undefined
function bootId(): Promise<string | undefined> {
  cachedBootId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  )
  return cachedBootId
}

function parseHolder(text: string): LockHolder | undefined {
  const [pidLine, bootLine] = text.split('\n')
  if (pidLine === undefined || !/^[1-9]\d{0,9}$/.test(pidLine)) return undefined
  return { pid: Number(pidLine), bootId: bootLine?.trim() || undefined }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function isStale(holder: LockHolder | undefined, dir: string): Promise<boolean> {
  // A lock we cannot parse was not written by link(2) from a whole temp file: not ours, not live.
  if (holder === undefined) return true
  const ours = await bootId()
  if (holder.bootId !== undefined && ours !== undefined && holder.bootId !== ours) return true
  if (holder.pid === process.pid) return !held.has(dir)
  return !isRunning(holder.pid)
}

async function readLock(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError(path, 'read the lock file', err)
  }
}

/**
 * Takes the lock of `dir` (absolute, existing). Throws StateError
 * STEER_ERR_STATE_LOCKED naming the lock file and the holder's pid when a
 * live process (this one included) holds it; STEER_ERR_STATE_IO otherwise.
 */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE_NAME)
  if (held.has(dir)) throw lockedError(path, process.pid)
  const content = `${process.pid}\n${(await bootId()) ?? ''}\n`
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    // Same shape as atomic-file.ts temporaries, so a crash here leaves nothing the next open keeps.
    const temp = join(dir, `.${LOCK_FILE_NAME}.tmp-${randomBytes(8).toString('hex')}`)
    try {
      await writeFile(temp, content, { mode: 0o600, flag: 'wx' })
    } catch (err) {
      throw ioError(temp, 'write the lock file', err)
    }
    let linked: boolean
    try {
      linked = await createLockFile(temp, path, content)
    } catch (err) {
      await unlink(temp).catch(() => undefined)
      // ENOENT: another opener's cleanup removed our temp file; try again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw ioError(path, 'create the lock file', err)
    }
    await unlink(temp).catch(() => undefined)
    if (linked) {
      held.add(dir)
      return createLock(dir, path, content)
    }
    const found = await readLock(path)
    if (found === undefined) continue
    const holder = parseHolder(found)
    if (!(await isStale(holder, dir))) throw lockedError(path, (holder as LockHolder).pid)
    await takeOver(path, found)
  }
  throw new StateError(StateErrorCode.LOCKED, path, `could not take the lock after ${MAX_ATTEMPTS} attempts: other processes keep taking and releasing it`)
}

/** Filesystems without hard links (some FUSE and SMB mounts) answer link(2) with one of these. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'])

/**
 * Publishes the lock: true when created, false when a lock file exists.
 * Without hard links, an exclusive create and write stands in; a reader may
 * then see it empty for an instant, and takes it for stale.
 */
async function createLockFile(temp: string, path: string, content: string): Promise<boolean> {
  try {
    await link(temp, path)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    if (code === undefined || !NO_HARD_LINKS.has(code)) throw err
  }
  try {
    await writeFile(path, content, { mode: 0o600, flag: 'wx' })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

/**
 * Removes a stale lock whose content was `stale`. It is moved aside first and
 * checked: if another opener replaced it in the meantime, it is put back.
 */
async function takeOver(path: string, stale: string): Promise<void> {
  const aside = `${path}.stale-${randomBytes(8).toString('hex')}`
  try {
    await rename(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw ioError(path, 'move a stale lock file aside', err)
  }
  const moved = await readLock(aside)
  if (moved !== stale) await link(aside, path).catch(() => undefined)
  await unlink(aside).catch(() => undefined)
}

function createLock(dir: string, path: string, content: string): DirLock {
  let released = false
  return {
    path,
    async release() {
      if (released) return
      released = true
      held.delete(dir)
      // Only remove the file if it is still ours (an operator may have removed or replaced it).
      const found = await readLock(path).catch(() => undefined)
      if (found === content) await unlink(path).catch(() => undefined)
    },
  }
}

function lockedError(path: string, pid: number): StateError {
  const who = pid === process.pid ? `this process (pid ${pid}) already has it open` : `process ${pid} is using it`
  return new StateError(StateErrorCode.LOCKED, path, `the state directory is locked: ${who}`, { pid })
}
