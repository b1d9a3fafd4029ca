/**
 * Whole-file writes that a crash or power loss cannot leave half done, and the
 * reads that go with them. The recipe is the one SQLite, LevelDB and
 * PostgreSQL rely on: write a temporary file in the target's directory, fsync
 * it, rename it over the target (rename(2) replaces atomically within one
 * filesystem), then fsync the directory so the rename itself is durable
 * (without it, ext4 and XFS may forget the new directory entry after power
 * loss; see "Files are hard", Dan Luu 2015, and the ALICE study, OSDI 2014).
 * A crash leaves either the old file or the new one, plus perhaps a
 * temporary file that `removeStaleTempFiles` deletes at the next open.
 * Control plane only: everything here is async I/O.
 */
import { randomBytes } from 'node:crypto'
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { ioError } from './state-error.js'

/** `.NAME.tmp-HEX`: hidden, and never a name a state/ file can have (they start with a letter). */
const TEMP_PATTERN = /^\..+\.tmp-[0-9a-f]{16}$/

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(8).toString('hex')}`)
}

export interface WriteFileAtomicOptions {
  /** Permission bits for a newly written file; default 0o600 (state files are the operator's, nobody else's). */
  readonly mode?: number
}

/**
 * Replaces `path` with `data` atomically and durably: when the promise
 * resolves, the new content survives a crash or power loss, and no reader
 * ever sees a partial file. The directory must exist. Throws StateError
 * STEER_ERR_STATE_IO naming `path` (the temporary file is removed then).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteFileAtomicOptions = {}): Promise<void> {
  const temp = tempPathFor(path)
  let step = 'create a temporary file'
  try {
    const handle = await open(temp, 'wx', opts.mode ?? 0o600)
    try {
      step = 'write'
      await handle.writeFile(data)
      step = 'fsync'
      await handle.sync()
    } finally {
      await handle.close()
    }
    step = 'rename the temporary file over it'
    await rename(temp, path)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    throw ioError(path, step, err)
  }
  await syncDirectory(dirname(path))
}

/**
 * fsyncs a directory so entries created, renamed or removed in it are durable.
 * A no-op on Windows, where directories cannot be opened for fsync (and
 * NTFS journals renames). Throws StateError STEER_ERR_STATE_IO naming `dir`.
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw ioError(dir, 'fsync the directory', err)
  }
}

/**
 * The bytes of `path`, or undefined when it does not exist. Throws StateError
 * STEER_ERR_STATE_IO naming `path` for any other failure (permissions, a
 * directory): a file that is there but unreadable is not "missing".
 */
export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError(path, 'read', err)
  }
}

/**
 * Deletes the temporary files `writeFileAtomic` leaves in `dir` when a crash
 * interrupts it, and returns their paths. Only call it on a directory whose
 * writers are all stopped (the state directory, under its lock): a
 * temporary file of a running write would be deleted under it. Throws
 * StateError STEER_ERR_STATE_IO naming the directory or file.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw ioError(dir, 'list', err)
  }
  const removed: string[] = []
  for (const name of names) {
    if (!TEMP_PATTERN.test(name)) continue
    const path = join(dir, name)
    try {
      await unlink(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw ioError(path, 'remove a stale temporary file', err)
    }
    removed.push(path)
  }
  if (removed.length > 0) await syncDirectory(dir)
  return removed
}
