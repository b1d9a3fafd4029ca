/**
 * The immutable set of served zones: the snapshot the query path reads. A reload
 * builds a new ZoneSet and swaps the reference; a ZoneSet is never mutated.
 */
import { RRTYPE, splitName } from '../wire/index.js'
import type { ZoneFinder } from './lookup.js'
import type { Zone } from './zone-tree.js'

export class ZoneSet implements ZoneFinder {
  readonly #zones: ReadonlyMap<string, Zone>
  /** Increments with every published set (for logs and metrics). */
  readonly version: number

  constructor(zones: Iterable<Zone>, version: number) {
    this.#zones = new Map([...zones].map((z) => [z.origin, z]))
    this.version = version
  }

  get zones(): readonly Zone[] {
    return [...this.#zones.values()]
  }

  get(origin: string): Zone | undefined {
    return this.#zones.get(origin)
  }

  /**
   * The most specific served zone containing qname. A DS query for a zone's own
   * apex goes to the served parent, which holds the DS (RFC 4035 section 3.1.4.1).
   */
  findZone(qname: string, qtype: number): Zone | undefined {
    const labels = splitName(qname)
    const first = qtype === RRTYPE.DS && labels.length > 0 && this.#zones.has(qname) ? 1 : 0
    return this.#findBelow(labels, first) ?? this.#findBelow(labels, 0)
  }

  #findBelow(labels: readonly string[], from: number): Zone | undefined {
    for (let i = from; i <= labels.length; i++) {
      const zone = this.#zones.get(labels.slice(i).join('.'))
      if (zone) return zone
    }
    return undefined
  }
}
