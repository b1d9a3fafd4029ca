/**
 * CHAOS-class identity names (RFC 4892): id.server and hostname.bind carry the
 * node identity, version.bind and version.server the configured version string.
 * The records are built once from config; the query path only picks one.
 */
import { RRCLASS, RRTYPE } from '../wire/index.js'
import type { ResourceRecord } from '../wire/index.js'

export interface ChaosIdentity {
  /** Node identity for id.server / hostname.bind (and NSID). */
  readonly identity: string
  /** Answer for version.bind / version.server; empty refuses those names (hides the version). */
  readonly version: string
}

/** Prebuilt TXT records by internal name. */
export type ChaosRecords = ReadonlyMap<string, ResourceRecord>

/** TXT rdata of one or more character-strings, each at most 255 bytes (RFC 1035 section 3.3.14). */
function txtRdata(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8')
  const parts: number[] = []
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255)
    parts.push(chunk.length, ...chunk)
  }
  return Uint8Array.from(parts)
}

function chaosTxt(name: string, text: string): ResourceRecord {
  return { name, type: RRTYPE.TXT, class: RRCLASS.CH, ttlSec: 0, rdata: [txtRdata(text)] }
}

/** Builds the CHAOS answers. Pure. */
export function buildChaosRecords(id: ChaosIdentity): ChaosRecords {
  const records = new Map<string, ResourceRecord>()
  for (const name of ['id.server', 'hostname.bind']) records.set(name, chaosTxt(name, id.identity))
  if (id.version !== '') {
    for (const name of ['version.bind', 'version.server']) records.set(name, chaosTxt(name, id.version))
  }
  return records
}
