import { invalidArgument } from "@local-e-grocery/platform/errors.js";
import { isCountryCode } from "./countries.js";
import { addressTextFields, protoFieldName, type AddressFields, type AddressTextField, type LatLng } from "./model.js";
import { normalisePhoneNumber } from "@local-e-grocery/platform/phone-number.js";
import { checkPostalCode, normalisePostalCode } from "./postal-codes.js";

/*
 * Message shape is declared as buf.validate rules in address.proto / address_service.proto and enforced by the
 * platform's validate interceptor before a handler runs: text lengths, no control characters, the E.164 phone
 * number, the country code as two ASCII letters, coordinate ranges, defined kinds, required messages and ids,
 * radius and page-size ranges, expected_version >= 0. What stays here needs data or the stored address: the
 * required fields (checked on the merged result of an UpdateAddress), the table of assigned country codes, the
 * postal-code formats per country, the SHOP-only fields, and normalisation.
 */

/**
 * Normalises an address an owner wants stored (whose values the schema's rules have accepted) and checks what
 * the schema cannot; returns the normalised copy, of the writable fields only. Throws INVALID_ARGUMENT naming the
 * first bad field as `<prefix>.<proto field>`; the kind/role rule is the caller's (address-book.ts).
 */
export function validateAddress(fields: AddressFields, prefix = "address"): AddressFields {
  const name = (field: keyof AddressFields) => `${prefix}.${protoFieldName(field)}`;
  const text = Object.fromEntries(addressTextFields.map((f) => [f, fields[f].trim()])) as Record<AddressTextField, string>;
  const out: AddressFields = {
    ...text,
    kind: fields.kind,
    phoneNumber: normalisePhoneNumber(text.phoneNumber),
    postalCode: normalisePostalCode(text.postalCode),
    countryCode: asciiUpperCase(text.countryCode),
    location: fields.location && normaliseLatLng(fields.location),
  };
  // Blank counts as missing, and on UpdateAddress the value may come from the stored address, so these are not
  // field rules.
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
 * dotless "ı" → "I"), which would turn input that is no country code into one ("ß" into South Sudan). The schema
 * admits only ASCII letters already; this keeps normalisation from ever widening what it admitted.
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
 * A point (in range and finite by the schema's LatLng rules) with coordinates nearer to 0 than
 * `coordinateEpsilon` (and -0) set to 0: the form the service stores and searches with.
 */
export function normaliseLatLng(point: LatLng): LatLng {
  const snap = (v: number) => (Math.abs(v) < coordinateEpsilon ? 0 : v);
  return { latitude: snap(point.latitude), longitude: snap(point.longitude) };
}
