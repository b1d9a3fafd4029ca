/**
 * The state directory: where the server keeps what must survive a restart or
 * a `kill -9` (the map, overrides, target admin states, measurements or the
 * estimator state they produce, the audit log). It owns the directory's
 * lifecycle (create, lock, clean up after a crash, release) and hands out
 * two kinds of named store, knowing nothing of what they hold:
 *   journal(name)   an append-only journal with checkpoints (journal.ts)
 *   document(name)  one JSON value, replaced atomically on every write (NAME.json)
 * Names are kebab-case, so they are safe file names and cannot escape the directory.
 */
import { mkdir, realpath } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { readFileIfExists, removeStaleTempFiles, writeFileAtomic } from './atomic-file.js'
import { acquireDirLock } from './dir-lock.js'
import type { DirLock } from './dir-lock.js'
import { openJournal } from './journal.js'
import type { Journal } from './journal.js'
import { ioError, StateError, StateErrorCode } from './state-error.js'

export interface StateDocument<T> {
  readonly name: string
  readonly path: string
  /**
   * The value last written, or undefined when the file does not exist (a first
   * start). Throws StateError STEER_ERR_STATE_DOCUMENT_CORRUPT naming the file
   * when it is not JSON (it is left in place), STEER_ERR_STATE_IO.
   */
  read(): Promise<T | undefined>
  /**
   * Replaces the value atomically and durably (pretty JSON, so an operator can
   * read it). Writes land in call order. Throws StateError BAD_VALUE when JSON
   * cannot carry `value`, IO, MISUSE after close.
   */
  write(value: T): Promise<void>
}

export interface StateDir {
  /** Absolute, symlinks resolved. */
  readonly dir: string
  readonly lockPath: string
  /** Temporary files of writes a crash interrupted, removed at open. */
  readonly removedTempFiles: readonly string[]
  /**
   * The journal `name` (files NAME.*.wal and NAME.snapshot). Call replay()
   * before appending. Throws StateError MISUSE for a bad name, a name already
   * open as a journal or used as a document, or after close.
   */
  journal<R = unknown, S = unknown>(name: string): Journal<R, S>
  /** The document `name` (file NAME.json); the same object for the same name. Throws like journal(). */
  document<T = unknown>(name: string): StateDocument<T>
  /** Closes every journal (waiting for pending appends), waits for document writes, releases the lock. Idempotent. */
  close(): Promise<void>
}

const NAME_PATTERN = /^[a-z][a-z0-9-]{0,63}$/

/**
 * Opens (creating it with mode 0700 if missing, parents included) and locks
 * the state directory, then removes temporary files a crash left. A relative
 * `dir` is resolved against the working directory; callers resolve a
 * configured path against the config file first. Throws StateError:
 * STEER_ERR_STATE_LOCKED (another live process, or this one, has it open;
 * `pid` says which), STEER_ERR_STATE_IO (cannot create, not a directory).
 */
export async function openStateDir(dir: string): Promise<StateDir> {
  const wanted = resolve(dir)
  try {
    await mkdir(wanted, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw ioError(wanted, 'create the state directory', err)
  }
  const absolute = await realpath(wanted).catch((err: unknown) => {
    throw ioError(wanted, 'resolve the state directory', err)
  })
  const lock = await acquireDirLock(absolute)
  try {
    const removedTempFiles = await removeStaleTempFiles(absolute)
    return new FileStateDir(absolute, lock, removedTempFiles)
  } catch (err) {
    await lock.release()
    throw err
  }
}

class FileStateDir implements StateDir {
  readonly lockPath: string
  private readonly journals = new Map<string, Journal<unknown, unknown>>()
  private readonly documents = new Map<string, FileDocument<unknown>>()
  private closed = false

  constructor(
    readonly dir: string,
    private readonly lock: DirLock,
    readonly removedTempFiles: readonly string[],
  ) {
    this.lockPath = lock.path
  }

  journal<R = unknown, S = unknown>(name: string): Journal<R, S> {
    this.checkName(name, 'journal')
    if (this.journals.has(name)) throw this.misuse(name, `journal "${name}" is already open: one writer per journal`)
    const journal = openJournal<R, S>(this.dir, name, { onClose: () => this.journals.delete(name) })
    this.journals.set(name, journal as Journal<unknown, unknown>)
    return journal
  }

  document<T = unknown>(name: string): StateDocument<T> {
    this.checkName(name, 'document')
    let doc = this.documents.get(name)
    if (doc === undefined) {
      doc = new FileDocument<unknown>(name, join(this.dir, `${name}.json`), () => this.closed)
      this.documents.set(name, doc)
    }
    return doc as StateDocument<T>
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.journals.values()].map((j) => j.close()))
    await Promise.all([...this.documents.values()].map((d) => d.settled()))
    await this.lock.release()
  }

  private checkName(name: string, kind: 'journal' | 'document'): void {
    if (this.closed) throw this.misuse(name, 'the state directory is closed')
    if (!NAME_PATTERN.test(name)) throw this.misuse(name, `"${name}" is not a ${kind} name (kebab-case: a-z, 0-9 and "-", starting with a letter, at most 64)`)
    const other = kind === 'journal' ? this.documents.has(name) : this.journals.has(name)
    if (other) throw this.misuse(name, `"${name}" is already used as a ${kind === 'journal' ? 'document' : 'journal'}`)
  }

  private misuse(name: string, message: string): StateError {
    return new StateError(StateErrorCode.MISUSE, join(this.dir, name), message)
  }
}

class FileDocument<T> implements StateDocument<T> {
  private writes: Promise<unknown> = Promise.resolve()

  constructor(
    readonly name: string,
    readonly path: string,
    private readonly isClosed: () => boolean,
  ) {}

  async read(): Promise<T | undefined> {
    const bytes = await readFileIfExists(this.path)
    if (bytes === undefined) return undefined
    try {
      return JSON.parse(bytes.toString('utf8')) as T
    } catch (err) {
      // Atomic writes never leave a partial file, so this is damage or a bad hand edit: the operator decides.
      throw new StateError(StateErrorCode.DOCUMENT_CORRUPT, this.path, 'not valid JSON; it is left in place for inspection', { cause: err })
    }
  }

  write(value: T): Promise<void> {
    if (this.isClosed()) return Promise.reject(new StateError(StateErrorCode.MISUSE, this.path, 'the state directory is closed'))
    let text: string | undefined
    try {
      text = JSON.stringify(value, null, 2) as string | undefined
    } catch {
      text = undefined
    }
    if (typeof text !== 'string') return Promise.reject(new StateError(StateErrorCode.BAD_VALUE, this.path, 'the value cannot be written as JSON'))
    const data = `${text}\n`
    const run = this.writes.then(() => writeFileAtomic(this.path, data))
    this.writes = run.catch(() => undefined)
    return run
  }

  /** Resolves once every write issued so far has finished (either way). */
  settled(): Promise<unknown> {
    return this.writes
  }
}
