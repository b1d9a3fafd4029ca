/**
 * An opened MaxMind DB (GeoIP2/GeoLite2 City, or the ASN layout) and its
 * lookups. geo/ is the only user of the `maxmind` package. Opening is control
 * plane work (async read, validation that yields to the event loop); lookup()
 * is on the query path: synchronous, never throws, and allocates only the
 * address text `maxmind` needs (results are frozen and shared per record and
 * prefix length). Must not watch files (geo-watcher.ts does) or choose targets.
 */
import { readFile } from 'node:fs/promises'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { Reader } from 'maxmind'
import type { Response } from 'maxmind'
import { GEO_ERROR, geoError } from './geo-error.js'

/** Where an address is, from a City-layout record. */
export interface GeoLocation {
  /** Degrees. */
  readonly latitude: number
  /** Degrees. */
  readonly longitude: number
  /** ISO 3166-1 alpha-2 of `country`, when the record has one. */
  readonly countryCode: string | undefined
  /** GeoIP2 continent code (AF AN AS EU NA OC SA), when the record has one. */
  readonly continentCode: string | undefined
  /** English city name, when the record has one. */
  readonly city: string | undefined
  /** traits.autonomous_system_number (Enterprise layout), when the record has one. */
  readonly asn: number | undefined
  /**
   * Length of the database network that holds the address, relative to the
   * queried family: 0..32 for a 4-byte address even in an IPv6-tree database,
   * 0..128 for a 16-byte one. The ECS scope of an answer decided by geo.
   */
  readonly networkPrefixLen: number
}

/** Which autonomous system an address is in. */
export interface GeoAsn {
  readonly asn: number
  readonly organization: string | undefined
  /** As GeoLocation.networkPrefixLen. */
  readonly networkPrefixLen: number
}

/** The record layout, from the metadata database_type. */
export const GEO_LAYOUT = { city: 'city', asn: 'asn', other: 'other' } as const
export type GeoLayout = (typeof GEO_LAYOUT)[keyof typeof GEO_LAYOUT]

export interface GeoDatabaseMetadata {
  /** E.g. "GeoIP2-City", "GeoLite2-ASN". */
  readonly databaseType: string
  readonly layout: GeoLayout
  /** Build time, seconds since the Unix epoch. */
  readonly buildEpochSec: number
  readonly nodeCount: number
  readonly recordSizeBits: number
  readonly ipVersion: 4 | 6
  /** description.en, when present. */
  readonly description: string | undefined
}

export interface GeoDatabase {
  /** The file it was read from. */
  readonly path: string
  /** Size of the file that was read, bytes. */
  readonly sizeBytes: number
  readonly metadata: GeoDatabaseMetadata
  /**
   * Location of a 4- or 16-byte address (pass IPv4-mapped addresses as 4
   * bytes: a 16-byte address is an IPv6 lookup). Undefined when the address
   * is in no network, the record has no coordinates (ASN and Country
   * databases), the length is neither 4 nor 16, or the record cannot be
   * decoded. Never throws. The result is frozen and shared: do not mutate.
   */
  lookup(address: Uint8Array): GeoLocation | undefined
  /**
   * Autonomous system of an address: autonomous_system_number (ASN and ISP
   * layouts) or traits.autonomous_system_number (Enterprise). Same contract
   * as lookup().
   */
  lookupAsn(address: Uint8Array): GeoAsn | undefined
  /** Lookups that found a record `maxmind` could not decode (a corrupt data section); for telemetry. */
  readonly decodeFailures: number
}

export interface OpenGeoDatabaseOptions {
  /** Refuse (STEER_ERR_GEO_INVALID) a database of another layout, e.g. an ASN file configured as the City database. */
  readonly layout?: Exclude<GeoLayout, 'other'>
  /** Decoded records kept for reuse (each a few KB for GeoIP2 City). Default 8192. */
  readonly cacheRecords?: number
}

/**
 * Reads and validates a MaxMind DB. The whole file is read into memory first
 * and checked (metadata, every search-tree record in bounds, a sample of data
 * records decodable), so a half-written or corrupt file fails here and not on
 * the query path. Throws STEER_ERR_GEO_UNREADABLE (the file could not be
 * read) or STEER_ERR_GEO_INVALID (it is not a usable database), with cause.
 */
export async function openGeoDatabase(path: string, options: OpenGeoDatabaseOptions = {}): Promise<GeoDatabase> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    throw geoError(GEO_ERROR.UNREADABLE, `cannot read geo database ${path}: ${(err as Error).message}`, err)
  }
  let reader: Reader<Response>
  try {
    reader = new Reader<Response>(bytes, { cache: new BoundedCache(options.cacheRecords ?? 8192) })
  } catch (err) {
    throw invalid(path, `not a MaxMind DB (${(err as Error).message})`, err)
  }
  const metadata = checkMetadata(path, reader)
  if (options.layout !== undefined && metadata.layout !== options.layout) {
    throw invalid(path, `database_type "${metadata.databaseType}" is not a ${options.layout} database`)
  }
  const sampleAddresses = await checkSearchTree(path, bytes, reader)
  const db = new MaxmindGeoDatabase(path, bytes.length, reader, metadata)
  for (const address of sampleAddresses) {
    try {
      reader.getWithPrefixLength(address)
    } catch (err) {
      throw invalid(path, `data record for ${address} cannot be decoded (${(err as Error).message})`, err)
    }
  }
  return db
}

type MmdbRecord = { readonly [key: string]: unknown }

/** What one decoded record says, computed once and shared by every lookup that lands on it. */
interface RecordFacts {
  readonly place: Omit<GeoLocation, 'networkPrefixLen'> | undefined
  readonly asn: Omit<GeoAsn, 'networkPrefixLen'> | undefined
  /** Results by prefix length, built on first use. */
  readonly locations: (GeoLocation | undefined)[]
  readonly asns: (GeoAsn | undefined)[]
}

class MaxmindGeoDatabase implements GeoDatabase {
  decodeFailures = 0
  // Keyed by the decoded record, which the reader's cache keeps stable per data offset. Measured
  // (Node 20, GeoIP2-City-Test.mmdb, 2M lookups): 1.5 µs per IPv4 lookup against 32 µs when
  // `maxmind` decodes the record every time.
  private readonly facts = new WeakMap<object, RecordFacts>()

  constructor(
    readonly path: string,
    readonly sizeBytes: number,
    private readonly reader: Reader<Response>,
    readonly metadata: GeoDatabaseMetadata,
  ) {}

  lookup(address: Uint8Array): GeoLocation | undefined {
    const found = this.find(address)
    if (found === undefined || found.facts.place === undefined) return undefined
    return (found.facts.locations[found.prefixLen] ??= Object.freeze({ ...found.facts.place, networkPrefixLen: found.prefixLen }))
  }

  lookupAsn(address: Uint8Array): GeoAsn | undefined {
    const found = this.find(address)
    if (found === undefined || found.facts.asn === undefined) return undefined
    return (found.facts.asns[found.prefixLen] ??= Object.freeze({ ...found.facts.asn, networkPrefixLen: found.prefixLen }))
  }

  private find(address: Uint8Array): { facts: RecordFacts; prefixLen: number } | undefined {
    if (address.length !== 4 && (address.length !== 16 || this.metadata.ipVersion !== 6)) return undefined
    let record: Response | null
    let prefixLen: number
    try {
      // maxmind reports an IPv4 address's depth from the IPv4 subtree, so 0..32 here as GeoLocation promises.
      ;[record, prefixLen] = this.reader.getWithPrefixLength(addressText(address))
    } catch {
      this.decodeFailures++
      return undefined
    }
    if (record === null || typeof record !== 'object') return undefined
    let facts = this.facts.get(record)
    if (facts === undefined) {
      facts = recordFacts(record as MmdbRecord)
      this.facts.set(record, facts)
    }
    return { facts, prefixLen }
  }
}

function recordFacts(record: MmdbRecord): RecordFacts {
  const location = field(record, 'location')
  const latitude = field(location, 'latitude')
  const longitude = field(location, 'longitude')
  const traitsAsn = field(field(record, 'traits'), 'autonomous_system_number')
  const topAsn = field(record, 'autonomous_system_number')
  const asn = typeof topAsn === 'number' ? topAsn : typeof traitsAsn === 'number' ? traitsAsn : undefined
  const organization =
    field(record, 'autonomous_system_organization') ?? field(field(record, 'traits'), 'autonomous_system_organization')
  const place =
    typeof latitude === 'number' && typeof longitude === 'number'
      ? {
          latitude,
          longitude,
          countryCode: stringOrUndefined(field(field(record, 'country'), 'iso_code')),
          continentCode: stringOrUndefined(field(field(record, 'continent'), 'code')),
          city: stringOrUndefined(field(field(field(record, 'city'), 'names'), 'en')),
          asn,
        }
      : undefined
  return {
    place,
    asn: asn === undefined ? undefined : { asn, organization: stringOrUndefined(organization) },
    locations: [],
    asns: [],
  }
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as MmdbRecord)[key] : undefined
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

// "00".."ff": IPv6 text is built from two table entries per group, uncompressed (maxmind parses that form).
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** The one string a lookup allocates: dotted IPv4, or eight 4-digit hex groups. */
function addressText(a: Uint8Array): string {
  if (a.length === 4) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`
  let text = ''
  for (let i = 0; i < 16; i += 2) text += (i === 0 ? '' : ':') + HEX_BYTE[a[i] as number] + HEX_BYTE[a[i + 1] as number]
  return text
}

/** The decoder cache `maxmind` accepts: offset → decoded value; emptied whole when full (cheap, and the hot set refills it). */
class BoundedCache {
  private readonly entries = new Map<string | number, unknown>()
  constructor(private readonly maxEntries: number) {}
  get(key: string | number): unknown {
    return this.entries.get(key)
  }
  set(key: string | number, value: unknown): void {
    if (this.entries.size >= this.maxEntries) this.entries.clear()
    this.entries.set(key, value)
  }
}

function checkMetadata(path: string, reader: Reader<Response>): GeoDatabaseMetadata {
  const m = reader.metadata
  if (m.binaryFormatMajorVersion !== 2) throw invalid(path, `binary format ${m.binaryFormatMajorVersion} is not 2`)
  if (m.ipVersion !== 4 && m.ipVersion !== 6) throw invalid(path, `ip_version ${m.ipVersion} is not 4 or 6`)
  if (!Number.isInteger(m.nodeCount) || m.nodeCount <= 0) throw invalid(path, `node_count ${m.nodeCount} is not a positive integer`)
  if (typeof m.databaseType !== 'string') throw invalid(path, 'database_type is missing')
  const description = (m.description as unknown as Record<string, unknown> | undefined)?.['en']
  return {
    databaseType: m.databaseType,
    layout: /ASN/i.test(m.databaseType) ? GEO_LAYOUT.asn : /City|Enterprise/i.test(m.databaseType) ? GEO_LAYOUT.city : GEO_LAYOUT.other,
    buildEpochSec: Math.floor(m.buildEpoch.getTime() / 1000),
    nodeCount: m.nodeCount,
    recordSizeBits: m.recordSize,
    ipVersion: m.ipVersion,
    description: typeof description === 'string' ? description : undefined,
  }
}

const METADATA_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com', 'ascii')])
const DATA_SECTION_SEPARATOR_BYTES = 16
const SAMPLE_DATA_RECORDS = 256
const SAMPLE_NODE_BUDGET = 100_000
const NODES_PER_SLICE = 65536

/**
 * Every record of the search tree must be a node number, "no data"
 * (node_count) or a pointer into the data section (spec, "Pointer - Search
 * Tree to Data Section"). Checked in slices that yield to the event loop, so
 * a large database (GeoLite2 City: ~4M nodes) does not stall queries.
 * Returns sample addresses whose lookups reach distinct data records, to be
 * decoded before the database is accepted (a corrupt data section then fails
 * the open, not a query).
 */
async function checkSearchTree(path: string, bytes: Buffer, reader: Reader<Response>): Promise<string[]> {
  const { nodeCount, recordSize, searchTreeSize, ipVersion } = reader.metadata
  const metadataStart = bytes.lastIndexOf(METADATA_MARKER)
  const dataStart = searchTreeSize + DATA_SECTION_SEPARATOR_BYTES
  if (metadataStart < dataStart) throw invalid(path, `file too short for ${nodeCount} nodes (${bytes.length} bytes)`)
  for (let i = searchTreeSize; i < dataStart; i++) {
    if (bytes[i] !== 0) throw invalid(path, 'data section separator is not 16 zero bytes')
  }
  const dataSize = metadataStart - dataStart
  const nodeBytes = recordSize / 4
  for (let node = 0; node < nodeCount; node++) {
    if (node % NODES_PER_SLICE === NODES_PER_SLICE - 1) await yieldToEventLoop()
    for (let side = 0; side < 2; side++) {
      const value = readRecord(bytes, node * nodeBytes, recordSize, side)
      if (value > nodeCount && (value < nodeCount + DATA_SECTION_SEPARATOR_BYTES || value >= nodeCount + DATA_SECTION_SEPARATOR_BYTES + dataSize)) {
        throw invalid(path, `search tree node ${node} points outside the data section (record ${value})`)
      }
    }
  }
  return sampleAddresses(bytes, nodeCount, recordSize, ipVersion === 6 ? 16 : 4)
}

function readRecord(bytes: Buffer, offset: number, recordSize: number, side: number): number {
  if (recordSize === 24) return bytes.readUIntBE(offset + side * 3, 3)
  if (recordSize === 32) return bytes.readUInt32BE(offset + side * 4)
  const nibble = side === 0 ? (bytes[offset + 3] as number) >> 4 : (bytes[offset + 3] as number) & 0x0f
  return nibble * 2 ** 24 + bytes.readUIntBE(offset + side * 4, 3)
}

/**
 * Depth-first walk from the root collecting one address for each of the first
 * SAMPLE_DATA_RECORDS distinct data records met, visiting at most
 * SAMPLE_NODE_BUDGET nodes (so a huge tree costs a bounded few milliseconds).
 */
function sampleAddresses(bytes: Buffer, nodeCount: number, recordSize: number, addressBytes: number): string[] {
  const address = new Uint8Array(addressBytes)
  const seenPointers = new Set<number>()
  const visitedNodes = new Set<number>()
  const samples: string[] = []
  const walk = (node: number, depth: number): void => {
    if (samples.length >= SAMPLE_DATA_RECORDS || visitedNodes.size >= SAMPLE_NODE_BUDGET || depth >= addressBytes * 8) return
    if (visitedNodes.has(node)) return
    visitedNodes.add(node)
    const mask = 0x80 >> (depth & 7)
    for (let side = 0; side < 2; side++) {
      if (side === 1) address[depth >> 3] = (address[depth >> 3] as number) | mask
      const value = readRecord(bytes, node * (recordSize / 4), recordSize, side)
      if (value < nodeCount) walk(value, depth + 1)
      else if (value > nodeCount && !seenPointers.has(value) && samples.length < SAMPLE_DATA_RECORDS) {
        seenPointers.add(value)
        samples.push(addressText(address))
      }
    }
    address[depth >> 3] = (address[depth >> 3] as number) & ~mask
  }
  walk(0, 0)
  return samples
}

function invalid(path: string, why: string, cause?: unknown): Error {
  return geoError(GEO_ERROR.INVALID, `geo database ${path} is invalid: ${why}`, cause)
}
