import { invalidArgument } from "../../platform/src/errors.js";
import { isCountryCode } from "./countries.js";
import { protoFieldNames, type AddressFields, type LatLng } from "./model.js";
import { checkPostalCode, normalizePostalCode } from "./postal-codes.js";

type TextField = Exclude<keyof AddressFields, "kind" | "location">;

/** Longest accepted value of each text field, in Unicode code points. */
export const maxLengths: Readonly<Record<TextField, number>> = {
  label: 50,
  recipientName: 100,
  phoneNumber: 16,
  line1: 200,
  line2: 200,
  landmark: 200,
  city: 100,
  district: 100,
  state: 100,
  postalCode: 16,
  countryCode: 2,
  shopName: 100,
};

/** E.164: a plus sign, a country calling code not starting with 0, at most 15 digits in all. */
export const e164 = /^\+[1-9]\d{1,14}$/;

// Control characters break couriers' labels and Postgres refuses NUL; lone surrogates are not text.
const forbiddenCharacters = /[\p{Cc}\p{Cs}]/u;

/**
 * Checks and normalises an address an owner wants stored; returns the normalised copy. Throws INVALID_ARGUMENT
 * naming the first bad field as `<prefix>.<proto field>`; the kind/role rule is the caller's (address-book.ts).
 */
export function validateAddress(fields: AddressFields, prefix = "address"): AddressFields {
  const name = (field: keyof AddressFields) => `${prefix}.${protoFieldNames[field]}`;
  const text = (field: TextField, value: string): string => {
    if (forbiddenCharacters.test(value)) throw invalidArgument(name(field), "contains control characters");
    const trimmed = value.trim();
    const max = maxLengths[field];
    if ([...trimmed].length > max) throw invalidArgument(name(field), `longer than ${max} characters`);
    return trimmed;
  };
  const out: AddressFields = {
    kind: fields.kind,
    label: text("label", fields.label),
    recipientName: text("recipientName", fields.recipientName),
    phoneNumber: text("phoneNumber", fields.phoneNumber),
    line1: text("line1", fields.line1),
    line2: text("line2", fields.line2),
    landmark: text("landmark", fields.landmark),
    city: text("city", fields.city),
    district: text("district", fields.district),
    state: text("state", fields.state),
    postalCode: normalizePostalCode(text("postalCode", fields.postalCode)),
    countryCode: asciiUpperCase(text("countryCode", fields.countryCode)),
    location: fields.location,
    shopName: text("shopName", fields.shopName),
  };
  if (out.line1 === "") throw invalidArgument(name("line1"), "required");
  if (out.city === "") throw invalidArgument(name("city"), "required");
  if (out.countryCode === "") throw invalidArgument(name("countryCode"), "required");
  if (!isCountryCode(out.countryCode)) throw invalidArgument(name("countryCode"), "not an ISO 3166-1 alpha-2 country code");
  switch (checkPostalCode(out.countryCode, out.postalCode)) {
    case "required":
      throw invalidArgument(name("postalCode"), "required");
    case "malformed":
      throw invalidArgument(name("postalCode"), `not a valid postal code for ${out.countryCode}`);
    case "ok":
      break;
  }
  if (out.phoneNumber !== "" && !e164.test(out.phoneNumber)) {
    throw invalidArgument(name("phoneNumber"), "must be in E.164 form, such as +919876543210");
  }
  if (out.location) out.location = normalizeLatLng(out.location, name("location"));
  if (out.kind === "shop") {
    if (out.shopName === "") throw invalidArgument(name("shopName"), "required for a SHOP address");
    if (!out.location) throw invalidArgument(name("location"), "required for a SHOP address");
  } else if (out.shopName !== "") {
    throw invalidArgument(name("shopName"), "only SHOP addresses have a shop name");
  }
  return out;
}

/**
 * Upper-cases ASCII letters only. String.prototype.toUpperCase maps some other letters onto ASCII ("ß" → "SS",
 * dotless "ı" → "I"), which would turn input that is no country code into one ("ß" into South Sudan).
 */
export function asciiUpperCase(value: string): string {
  return value.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/**
 * Coordinates nearer to 0 than this (about 0.1 mm on the ground) are taken as 0. PostgreSQL raises "value out of
 * range: underflow" when a float8 product rounds to 0, so a coordinate such as 1e-170 or 5e-324 would make the
 * distance SQL of FindNearbyShops fail (INTERNAL) for every search that reaches it. Above this magnitude the
 * smallest difference between two coordinates is about 1e-25 degrees, whose square is still a normal double.
 */
export const coordinateEpsilon = 1e-9;

/**
 * A point checked by checkLatLng, with coordinates nearer to 0 than `coordinateEpsilon` (and -0) set to 0: the
 * form the service stores and searches with.
 */
export function normalizeLatLng(point: LatLng, field: string): LatLng {
  checkLatLng(point, field);
  const snap = (v: number) => (Math.abs(v) < coordinateEpsilon ? 0 : v);
  return { latitude: snap(point.latitude), longitude: snap(point.longitude) };
}

/** Throws INVALID_ARGUMENT naming `<field>.latitude` or `<field>.longitude` when a coordinate is out of range. */
export function checkLatLng(point: LatLng, field: string): void {
  if (!Number.isFinite(point.latitude) || point.latitude < -90 || point.latitude > 90) {
    throw invalidArgument(`${field}.latitude`, "must be between -90 and 90");
  }
  if (!Number.isFinite(point.longitude) || point.longitude < -180 || point.longitude > 180) {
    throw invalidArgument(`${field}.longitude`, "must be between -180 and 180");
  }
}
