/**
 * geo/: the public surface. Geo fallback (DESIGN.md, "A steering decision",
 * step 4): MaxMind DB reading and reloading (the only user of `maxmind`),
 * great-circle distance, and the tool that writes the synthetic databases in
 * geo-data/. Other folders import only this file. Ranking targets by distance
 * is steering's job: it calls lookup() and greatCircleKm().
 */
export { GEO_ERROR } from './geo-error.js'
export type { GeoError, GeoErrorCode } from './geo-error.js'
export { EARTH_MEAN_RADIUS_KM, greatCircleKm } from './distance.js'
export { GEO_LAYOUT, openGeoDatabase } from './geo-database.js'
export type { GeoAsn, GeoDatabase, GeoDatabaseMetadata, GeoLayout, GeoLocation, OpenGeoDatabaseOptions } from './geo-database.js'
export { watchGeoDatabase } from './geo-watcher.js'
export type { GeoWatcher, GeoWatchOptions } from './geo-watcher.js'
export { MMDB_NUMBER_TYPE, MmdbTypedNumber, mmdbTyped, writeMmdb } from './mmdb-writer.js'
export type { MmdbMap, MmdbMetadata, MmdbNetwork, MmdbNumberType, MmdbValue } from './mmdb-writer.js'
export { ACCURACY_RADIUS_KM, CONTINENT_NAMES, formatGeoListProblem, parseNetworkList } from './network-list.js'
export type { ContinentCode, GeoListEntry, GeoListProblem } from './network-list.js'
export { buildGeoDatabase } from './build-geo-database.js'
export type { BuildGeoDatabaseOptions } from './build-geo-database.js'
