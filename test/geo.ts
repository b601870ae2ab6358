import { earthRadiusKm } from "@local-e-grocery/address/geo.js";

export interface Point {
  latitude: number;
  longitude: number;
}

/** The point `km` away from `from` on initial bearing `bearingDeg` (the standard destination-point formula). */
export function destination(from: Point, km: number, bearingDeg: number): Point {
  const rad = Math.PI / 180;
  const d = km / earthRadiusKm;
  const b = bearingDeg * rad;
  const lat1 = from.latitude * rad;
  const lng1 = from.longitude * rad;
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(b));
  const lng2 = lng1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
  return { latitude: lat2 / rad, longitude: ((lng2 / rad + 540) % 360) - 180 };
}
