/**
 * The one pino logger: structured JSON, one line per event, to stdout. Modules
 * take a child logger with their name bound (`logger.child({ module: 'zone' })`).
 */
import { pino } from 'pino'
import type { Logger } from 'pino'

export type { Logger }

export interface LoggerOptions {
  readonly level: string
  /** Bound on every line: the node identity (NSID/CHAOS name). */
  readonly identity: string
  /** Defaults to stdout; tests pass a stream to read the lines back. */
  readonly destination?: NodeJS.WritableStream
}

/** Creates the root logger. Throws if the level is not a pino level. */
export function createLogger(opts: LoggerOptions): Logger {
  const options = { level: opts.level, base: { node: opts.identity }, timestamp: pino.stdTimeFunctions.isoTime }
  return opts.destination ? pino(options, opts.destination) : pino(options)
}
