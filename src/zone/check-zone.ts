/**
 * The offline zone check behind `steerdns check-zone ORIGIN FILE`: the same
 * loader the server uses (as gdnsd's checker runs the server's own code), and
 * the one-line problem format that kzonecheck and named-checkzone users know.
 * Printing and exit codes are the CLI's business.
 */
import { loadZoneFile } from './load-zone-file.js'
import type { ZoneProblem } from './zone-problem.js'

export interface ZoneCheckResult {
  /** Every problem, errors and warnings, in report order. */
  readonly problems: ZoneProblem[]
  /** Records that would be served (after deduplication). */
  readonly recordCount: number
}

/**
 * Loads and validates a zone file without serving it. Never rejects; the zone
 * is unusable when any problem has severity 'error'.
 */
export async function checkZone(origin: string, file: string): Promise<ZoneCheckResult> {
  const result = await loadZoneFile(origin, file)
  return { problems: result.problems, recordCount: result.records.length }
}

/**
 * One line per problem: `file:line: error: message` (named-checkzone style).
 * Problems about the file as a whole (line 0) print as `file: error: message`.
 */
export function formatProblem(p: ZoneProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}` : p.file
  return `${where}: ${p.severity}: ${p.message}`
}
