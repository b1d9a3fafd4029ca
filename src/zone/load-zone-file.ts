/**
 * Reading a zone: master file (and its $INCLUDEs) → parsed, validated records
 * plus every problem found and every file read. The only zone/ code that
 * touches the file system. Runs in the control plane; never throws for bad
 * content or missing files, which become problems instead.
 */
import { readFile } from 'node:fs/promises'
import type { ResourceRecord } from '../wire/index.js'
import { parseMasterFile, runParserAsync, runParserSync } from './master-file-parser.js'
import type { IncludeReply, ParseOutput } from './master-file-parser.js'
import { parseNameText } from './rdata-fields.js'
import { validateZone } from './validate-zone.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'
import type { ZoneProblem } from './zone-problem.js'

export interface ZoneLoadResult {
  /** Zone origin, internal form ("" for the root). */
  readonly origin: string
  /**
   * Records in file order, deduplicated, one TTL per RRset, out-of-zone data
   * dropped. Serve them only when no problem has severity 'error'.
   */
  readonly records: ResourceRecord[]
  /** Parse problems first (in file order), then zone-level ones. */
  readonly problems: ZoneProblem[]
  /** Every file the zone needs (main file first, then includes, even unreadable ones), for change watching. */
  readonly files: string[]
}

export interface ParseZoneTextOptions {
  /** Zone origin in presentation form ("example.com" or "example.com."). */
  readonly origin: string
  /** Name reported in problems; relative $INCLUDE paths resolve against its directory. */
  readonly fileName: string
  /** Returns the text of an $INCLUDE file, or throws when it cannot. Without it $INCLUDE is a problem. */
  readonly readInclude?: (path: string) => string
  /** TTL when neither $TTL nor an earlier explicit TTL applies (default 3600, Knot's default-ttl). */
  readonly defaultTtlSec?: number
}

/** Internal-form origin, or a problem when the text is not a domain name. */
function parseOrigin(originText: string, file: string): { origin: string } | { problem: ZoneProblem } {
  try {
    // The origin is always absolute: a missing trailing dot does not make it relative.
    return { origin: parseNameText(originText === '' ? '.' : originText, '', 'zone origin') }
  } catch (err) {
    const message = err instanceof ZoneSyntaxError ? err.message : String(err)
    return { problem: { file, line: 0, severity: 'error', code: ZONE_PROBLEM.BAD_ORIGIN, message } }
  }
}

function finish(origin: string, mainFile: string, parsed: ParseOutput): ZoneLoadResult {
  const checked = validateZone(origin, parsed.records, mainFile)
  return { origin, records: checked.records, problems: [...parsed.problems, ...checked.problems], files: parsed.files }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message
  return String(err)
}

/**
 * Parses and validates master-file text synchronously (tests, tools). Never
 * throws: a failing `readInclude` becomes an INCLUDE_UNREADABLE problem.
 */
export function parseZoneText(text: string, opts: ParseZoneTextOptions): ZoneLoadResult {
  const o = parseOrigin(opts.origin, opts.fileName)
  if ('problem' in o) return { origin: '', records: [], problems: [o.problem], files: [opts.fileName] }
  const read = (p: string): IncludeReply => {
    if (opts.readInclude === undefined) return { error: 'no include reader given to parseZoneText' }
    try {
      return { text: opts.readInclude(p) }
    } catch (err) {
      return { error: errorText(err) }
    }
  }
  const gen = parseMasterFile(text, { origin: o.origin, fileName: opts.fileName, defaultTtlSec: opts.defaultTtlSec })
  return finish(o.origin, opts.fileName, runParserSync(gen, read))
}

async function readText(p: string): Promise<IncludeReply> {
  try {
    return { text: await readFile(p, 'utf8') }
  } catch (err) {
    return { error: errorText(err) }
  }
}

/**
 * Loads the zone `origin` (presentation form) from `filePath` and its includes.
 * Relative $INCLUDE paths resolve against the including file's directory.
 * Never rejects: an unreadable main file is a FILE_UNREADABLE problem at line 0.
 */
export async function loadZoneFile(origin: string, filePath: string): Promise<ZoneLoadResult> {
  const o = parseOrigin(origin, filePath)
  if ('problem' in o) return { origin: '', records: [], problems: [o.problem], files: [filePath] }
  const main = await readText(filePath)
  if ('error' in main) {
    const problem: ZoneProblem = {
      file: filePath,
      line: 0,
      severity: 'error',
      code: ZONE_PROBLEM.FILE_UNREADABLE,
      message: `cannot read zone file: ${main.error}`,
    }
    return { origin: o.origin, records: [], problems: [problem], files: [filePath] }
  }
  const gen = parseMasterFile(main.text, { origin: o.origin, fileName: filePath })
  return finish(o.origin, filePath, await runParserAsync(gen, readText))
}
