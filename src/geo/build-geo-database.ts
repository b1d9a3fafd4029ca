/**
 * The geo-data tool: a network list file in, a GeoIP2 City layout MaxMind DB
 * file out (written atomically: temp file in the same directory, then
 * rename, so a server polling the file never sees half of it). Used by the
 * CLI, geo-data/build.mjs and the tests. Downloads nothing; must not be used
 * on the query path.
 */
import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { basename } from 'node:path'
import { GEO_ERROR, geoError } from './geo-error.js'
import { parseNetworkList } from './network-list.js'
import type { GeoListProblem } from './network-list.js'
import { writeMmdb } from './mmdb-writer.js'

export interface BuildGeoDatabaseOptions {
  /** Metadata build_epoch, seconds. Default: $SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
  readonly buildEpochSec?: number
  /** Metadata database_type. Default "GeoIP2-City". */
  readonly databaseType?: string
  /** Metadata description.en. Default names the list file. */
  readonly description?: string
}

/**
 * Builds `outFile` from the list in `listFile`. When the list has problems
 * (an unreadable list is one, at line 0) nothing is written and they are
 * returned, every one with file:line. Throws STEER_ERR_GEO_WRITE_FAILED (with
 * cause) only when the output cannot be written; an existing `outFile` is then
 * left as it was.
 */
export async function buildGeoDatabase(
  listFile: string,
  outFile: string,
  options: BuildGeoDatabaseOptions = {},
): Promise<{ networks: number; problems: GeoListProblem[] }> {
  let text: string
  try {
    text = await readFile(listFile, 'utf8')
  } catch (err) {
    const message = `cannot read the network list: ${(err as Error).message}`
    return { networks: 0, problems: [{ file: listFile, line: 0, code: GEO_ERROR.UNREADABLE, message }] }
  }
  const { entries, problems } = parseNetworkList(text, listFile)
  if (problems.length > 0) return { networks: 0, problems }
  const sourceDateEpoch = Number(process.env['SOURCE_DATE_EPOCH'])
  const db = writeMmdb(
    entries.map((e) => ({ network: e.network, record: e.record })),
    {
      databaseType: options.databaseType ?? 'GeoIP2-City',
      description: options.description ?? `steerdns geo database built from ${basename(listFile)}`,
      buildEpochSec: options.buildEpochSec ?? (Number.isInteger(sourceDateEpoch) && sourceDateEpoch > 0 ? sourceDateEpoch : Math.floor(Date.now() / 1000)),
    },
  )
  await writeFileAtomic(outFile, db)
  return { networks: entries.length, problems: [] }
}

async function writeFileAtomic(path: string, bytes: Buffer): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'wx')
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    throw geoError(GEO_ERROR.WRITE_FAILED, `cannot write ${path}: ${(err as Error).message}`, err)
  }
}
