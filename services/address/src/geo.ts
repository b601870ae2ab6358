import type { LatLng } from "./model.js";

/** Mean Earth radius (IUGG), in kilometres: the sphere distances are measured on. */
export const earthRadiusKm = 6371.0088;

const toRadians = (deg: number) => (deg * Math.PI) / 180;
const toDegrees = (rad: number) => (rad * 180) / Math.PI;

/** Great-circle distance by the haversine formula; the same maths store.ts runs in SQL. */
export function haversineKm(a: LatLng, b: LatLng): number {
  const dLat = toRadians(b.latitude - a.latitude);
  const dLng = toRadians(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRadians(a.latitude)) * Math.cos(toRadians(b.latitude)) * Math.sin(dLng / 2) ** 2;
  return 2 * earthRadiusKm * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A latitude band and one or two longitude ranges (two when the box crosses the antimeridian). */
export interface BoundingBox {
  readonly minLatitude: number;
  readonly maxLatitude: number;
  readonly longitudeRanges: readonly (readonly [min: number, max: number])[];
}

// Widens the box a hair so rounding never drops a point that lies exactly on the circle.
const slackDegrees = 1e-6;

/**
 * The smallest latitude/longitude box holding every point within `radiusKm` of `center` (J. P. Matuschek,
 * "Finding Points Within a Distance of a Latitude/Longitude"): a cheap, index-friendly prefilter for the exact
 * distance test. Near a pole the box spans every longitude.
 */
export function boundingBox(center: LatLng, radiusKm: number): BoundingBox {
  const angular = radiusKm / earthRadiusKm;
  const lat = toRadians(center.latitude);
  const minLat = lat - angular;
  const maxLat = lat + angular;
  if (minLat <= -Math.PI / 2 || maxLat >= Math.PI / 2) {
    return {
      minLatitude: Math.max(-90, toDegrees(minLat) - slackDegrees),
      maxLatitude: Math.min(90, toDegrees(maxLat) + slackDegrees),
      longitudeRanges: [[-180, 180]],
    };
  }
  const dLng = toDegrees(Math.asin(Math.min(1, Math.sin(angular) / Math.cos(lat)))) + slackDegrees;
  const minLng = center.longitude - dLng;
  const maxLng = center.longitude + dLng;
  const longitudeRanges: [number, number][] =
    dLng >= 180
      ? [[-180, 180]]
      : minLng < -180
        ? [[minLng + 360, 180], [-180, maxLng]]
        : maxLng > 180
          ? [[minLng, 180], [-180, maxLng - 360]]
          : [[minLng, maxLng]];
  return { minLatitude: toDegrees(minLat) - slackDegrees, maxLatitude: toDegrees(maxLat) + slackDegrees, longitudeRanges };
}
