/**
 * The plain-text network list that geo-data/ databases are built from, parsed
 * into GeoIP2 City layout records. One network per line:
 *
 *   NETWORK COUNTRY_ISO CONTINENT_CODE LAT LON [CITY NAME...]
 *   198.51.100.0/24 US NA 47.61 -122.33 Seattle
 *
 * `#` starts a comment (to the end of the line); blank lines are ignored.
 * Every problem is reported with its file and line, all at once. Pure: the
 * caller reads the file. Must not write databases (build-geo-database.ts does).
 */
import { GEO_ERROR } from './geo-error.js'
import type { GeoErrorCode } from './geo-error.js'
import { ipv4AliasContaining, parseTreeNetwork, treeNetworkKey } from './ip-network.js'
import { mmdbTyped } from './mmdb-writer.js'
import type { MmdbMap } from './mmdb-writer.js'

/** What is wrong with a list, and where. `line` is 1-based; 0 means the file as a whole. */
export interface GeoListProblem {
  readonly file: string
  readonly line: number
  readonly code: GeoErrorCode
  readonly message: string
}

/** One parsed line. */
export interface GeoListEntry {
  readonly line: number
  /** As written in the list. */
  readonly network: string
  /** Uppercase ISO 3166-1 alpha-2. */
  readonly countryCode: string
  readonly continentCode: ContinentCode
  /** Degrees, -90..90. */
  readonly latitude: number
  /** Degrees, -180..180. */
  readonly longitude: number
  readonly city: string | undefined
  /** The GeoIP2 City layout record written for this network (lat/lon as doubles, accuracy_radius as uint16, as MaxMind does). */
  readonly record: MmdbMap
}

/** GeoIP2 continent codes and their English names. */
export const CONTINENT_NAMES = {
  AF: 'Africa',
  AN: 'Antarctica',
  AS: 'Asia',
  EU: 'Europe',
  NA: 'North America',
  OC: 'Oceania',
  SA: 'South America',
} as const

export type ContinentCode = keyof typeof CONTINENT_NAMES

/**
 * accuracy_radius (km) written for every record: the list has no column for it.
 * A city entry is treated as city-level, an entry without a city as country-level.
 */
export const ACCURACY_RADIUS_KM = { city: 50, country: 500 } as const

const COORDINATE = /^[-+]?(\d+(\.\d*)?|\.\d+)$/
const COUNTRY_NAMES = new Intl.DisplayNames(['en'], { type: 'region' })

/**
 * Parses a network list. Never throws: every bad line becomes a problem
 * (STEER_ERR_GEO_BAD_NETWORK for the network column, including a network
 * listed twice; STEER_ERR_GEO_BAD_LIST_LINE for the others) and is left out
 * of `entries`. A list without any network is a problem too (line 0).
 */
export function parseNetworkList(text: string, file: string): { entries: GeoListEntry[]; problems: GeoListProblem[] } {
  const entries: GeoListEntry[] = []
  const problems: GeoListProblem[] = []
  const firstLineOf = new Map<string, number>()
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1
    const hash = raw.indexOf('#')
    const fields = (hash < 0 ? raw : raw.slice(0, hash)).trim().split(/\s+/).filter((f) => f !== '')
    if (fields.length === 0) return
    const problem = (code: GeoErrorCode, message: string) => problems.push({ file, line, code, message })
    const [network = '', countryField = '', continentField = '', latField = '', lonField = '', ...cityWords] = fields
    if (fields.length < 5) {
      problem(GEO_ERROR.BAD_LIST_LINE, `expected NETWORK COUNTRY_ISO CONTINENT_CODE LAT LON [CITY], got ${fields.length} field(s)`)
      return
    }
    const before = problems.length
    try {
      const net = parseTreeNetwork(network)
      const alias = ipv4AliasContaining(net)
      const key = treeNetworkKey(net)
      const first = firstLineOf.get(key)
      if (alias) problem(GEO_ERROR.BAD_NETWORK, `network ${network} lies in ${alias.text}, which the database aliases to IPv4`)
      else if (first !== undefined) problem(GEO_ERROR.BAD_NETWORK, `network ${network} is already listed on line ${first}`)
      else firstLineOf.set(key, line)
    } catch (err) {
      problem(GEO_ERROR.BAD_NETWORK, (err as Error).message)
    }
    const countryCode = countryField.toUpperCase()
    if (!/^[A-Z]{2}$/.test(countryCode)) problem(GEO_ERROR.BAD_LIST_LINE, `country "${countryField}" is not a two-letter ISO 3166-1 code`)
    const continentCode = continentField.toUpperCase()
    if (!Object.hasOwn(CONTINENT_NAMES, continentCode)) {
      problem(GEO_ERROR.BAD_LIST_LINE, `continent "${continentField}" is not one of ${Object.keys(CONTINENT_NAMES).join(' ')}`)
    }
    const latitude = Number(latField)
    if (!COORDINATE.test(latField) || latitude < -90 || latitude > 90) problem(GEO_ERROR.BAD_LIST_LINE, `latitude "${latField}" is not a number in -90..90`)
    const longitude = Number(lonField)
    if (!COORDINATE.test(lonField) || longitude < -180 || longitude > 180) {
      problem(GEO_ERROR.BAD_LIST_LINE, `longitude "${lonField}" is not a number in -180..180`)
    }
    if (problems.length > before) return
    const city = cityWords.length > 0 ? cityWords.join(' ') : undefined
    const continent = continentCode as ContinentCode
    entries.push({
      line,
      network,
      countryCode,
      continentCode: continent,
      latitude,
      longitude,
      city,
      record: cityRecord(countryCode, continent, latitude, longitude, city),
    })
  })
  if (entries.length === 0 && problems.length === 0) {
    problems.push({ file, line: 0, code: GEO_ERROR.BAD_LIST_LINE, message: 'the list has no networks' })
  }
  return { entries, problems }
}

/** `file:line: message` (`file: message` for line 0), the form check-zone prints too. */
export function formatGeoListProblem(p: GeoListProblem): string {
  return `${p.file}${p.line > 0 ? `:${p.line}` : ''}: ${p.message}`
}

function cityRecord(countryCode: string, continentCode: ContinentCode, latitude: number, longitude: number, city: string | undefined): MmdbMap {
  const location = {
    accuracy_radius: mmdbTyped('uint16', city === undefined ? ACCURACY_RADIUS_KM.country : ACCURACY_RADIUS_KM.city),
    latitude: mmdbTyped('double', latitude),
    longitude: mmdbTyped('double', longitude),
  }
  const record: MmdbMap = {
    continent: { code: continentCode, names: { en: CONTINENT_NAMES[continentCode] } },
    country: { iso_code: countryCode, names: { en: countryName(countryCode) } },
    location,
  }
  return city === undefined ? record : { ...record, city: { names: { en: city } } }
}

/** English name from the ICU region names Node ships; the code itself when ICU does not know it. */
function countryName(code: string): string {
  try {
    const name = COUNTRY_NAMES.of(code)
    return name === undefined || name === 'Unknown Region' ? code : name
  } catch {
    return code
  }
}
