/**
 * Great-circle distance between two points, for ranking targets by distance
 * to a client's geo location. Pure arithmetic, no allocation: safe on the
 * query path. Knows nothing of targets or databases.
 */

/** IUGG mean Earth radius (R1), km. The spherical model is within ~0.5% of the ellipsoid: plenty for ranking. */
export const EARTH_MEAN_RADIUS_KM = 6371.0088

const RADIANS_PER_DEGREE = Math.PI / 180

/**
 * Haversine distance in km between (lat1Deg, lon1Deg) and (lat2Deg, lon2Deg),
 * in degrees. Never throws; NaN in, NaN out. Numerically stable for nearby
 * and antipodal points (the asin argument is clamped to 1).
 */
export function greatCircleKm(lat1Deg: number, lon1Deg: number, lat2Deg: number, lon2Deg: number): number {
  const sinHalfLat = Math.sin(((lat2Deg - lat1Deg) * RADIANS_PER_DEGREE) / 2)
  const sinHalfLon = Math.sin(((lon2Deg - lon1Deg) * RADIANS_PER_DEGREE) / 2)
  const h =
    sinHalfLat * sinHalfLat + Math.cos(lat1Deg * RADIANS_PER_DEGREE) * Math.cos(lat2Deg * RADIANS_PER_DEGREE) * sinHalfLon * sinHalfLon
  return 2 * EARTH_MEAN_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}
