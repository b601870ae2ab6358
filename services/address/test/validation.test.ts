import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { CreateAddressRequestSchema } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { createRequestCheck } from "@local-e-grocery/platform/validate-interceptor.js";
import { countries, isCountryCode } from "../src/countries.js";
import type { AddressFields } from "../src/model.js";
import { checkPostalCode, countriesWithoutPostalCodes, normalisePostalCode, postalFormats } from "../src/postal-codes.js";
import { validateAddress } from "../src/validation.js";

const base: AddressFields = {
  kind: "home",
  label: " Home ",
  recipientName: "Asha Rao",
  phoneNumber: "+919876543210",
  line1: "12 MG Road",
  line2: "",
  landmark: "",
  city: "Bengaluru",
  district: "",
  state: "Karnataka",
  postalCode: "560 001",
  countryCode: "in",
  location: { latitude: 12.9716, longitude: 77.5946 },
  shopName: "",
};

const kinds = { home: AddressKind.HOME, work: AddressKind.WORK, other: AddressKind.OTHER, shop: AddressKind.SHOP } as const;
const check = createRequestCheck();

/**
 * Runs what a CreateAddress request meets before it is stored, in order: the schema's buf.validate rules (as the
 * platform's validate interceptor does) and then validateAddress. Returns the field of the INVALID_ARGUMENT
 * thrown, or undefined when the address is accepted.
 */
function rejectedField(fields: Partial<AddressFields>): string | undefined {
  const address = { ...base, ...fields };
  try {
    check(CreateAddressRequestSchema, create(CreateAddressRequestSchema, { address: { ...address, kind: kinds[address.kind], location: address.location ?? undefined } }));
    validateAddress(address);
    return undefined;
  } catch (e) {
    assert.ok(e instanceof DomainError);
    assert.equal(e.code, Code.InvalidArgument);
    return e.field;
  }
}

/** Longest accepted value of each text field, in Unicode code points, as address.proto declares them. */
const maxLengths = {
  label: 50,
  recipientName: 100,
  line1: 200,
  line2: 200,
  landmark: 200,
  city: 100,
  district: 100,
  state: 100,
  postalCode: 16,
  shopName: 100,
} as const;

describe("country table", () => {
  it("holds every ISO 3166-1 alpha-2 code once", () => {
    assert.equal(countries.size, 249);
    for (const code of countries.keys()) assert.match(code, /^[A-Z]{2}$/);
    for (const code of ["IN", "US", "GB", "CA", "DE", "FR", "AU", "NL", "JP", "SG", "AX", "SS", "CW"]) assert.ok(isCountryCode(code), code);
    for (const code of ["UK", "EU", "XX", "ZZ", "in", "USA", ""]) assert.ok(!isCountryCode(code), code);
  });
});

describe("postal-code table", () => {
  it("covers at least the required countries, all with assigned codes", () => {
    for (const code of ["IN", "US", "GB", "CA", "DE", "FR", "AU", "NL", "JP", "SG"]) assert.ok(postalFormats.has(code), code);
    for (const code of [...postalFormats.keys(), ...countriesWithoutPostalCodes]) assert.ok(isCountryCode(code), code);
    for (const code of countriesWithoutPostalCodes) assert.ok(!postalFormats.has(code), code);
  });

  for (const [country, format] of postalFormats) {
    it(`${country}: accepts its examples and refuses its counter-examples`, () => {
      assert.ok(format.examples.length > 0);
      for (const example of format.examples) assert.equal(checkPostalCode(country, normalisePostalCode(example)), "ok", `${country} ${example}`);
      assert.ok(format.counterExamples.length > 0, `add counter-examples for ${country}`);
      for (const code of format.counterExamples) assert.equal(checkPostalCode(country, normalisePostalCode(code)), "malformed", `${country} ${code}`);
      assert.equal(checkPostalCode(country, ""), "required");
    });
  }

  it("makes the postal code optional only where there is no postal system", () => {
    assert.equal(checkPostalCode("AE", ""), "ok");
    assert.equal(checkPostalCode("HK", ""), "ok");
    assert.equal(checkPostalCode("KE", ""), "required");
    assert.equal(checkPostalCode("KE", "00100"), "ok");
    assert.equal(checkPostalCode("KE", "00100!"), "malformed");
    assert.equal(checkPostalCode("KE", "A"), "malformed");
  });

  it("normalises case and spacing", () => {
    assert.equal(normalisePostalCode("  sw1a \t 1aa "), "SW1A 1AA");
  });
});

describe("validateAddress", () => {
  it("trims and normalises a good address", () => {
    const out = validateAddress(base);
    assert.equal(out.label, "Home");
    assert.equal(out.countryCode, "IN");
    assert.equal(out.postalCode, "560 001");
  });

  it("names the field of each required value", () => {
    assert.equal(rejectedField({ line1: "  " }), "address.line1");
    assert.equal(rejectedField({ city: "" }), "address.city");
    assert.equal(rejectedField({ countryCode: "" }), "address.country_code");
    assert.equal(rejectedField({ postalCode: "" }), "address.postal_code");
  });

  it("refuses unknown countries, malformed postal codes and phone numbers", () => {
    assert.equal(rejectedField({ countryCode: "XX" }), "address.country_code");
    assert.equal(rejectedField({ countryCode: "IND" }), "address.country_code");
    // Letters that only toUpperCase turns into ASCII are not country codes ("ß" would become SS, South Sudan).
    assert.equal(rejectedField({ countryCode: "ß", postalCode: "" }), "address.country_code");
    assert.equal(rejectedField({ countryCode: "\u0131n" }), "address.country_code");
    assert.equal(rejectedField({ countryCode: "GB", postalCode: "\u017Fw1a 1aa" }), "address.postal_code");
    assert.equal(rejectedField({ postalCode: "56001" }), "address.postal_code");
    assert.equal(rejectedField({ countryCode: "US", postalCode: "560001" }), "address.postal_code");
    // The one rule for phone numbers (grocery.validate.v1.phone_number, as identity's): E.164, 7–15 digits.
    for (const phone of ["9876543210", "+0123456", "+1234567890123456", "+12345", "+91 98765 4321x", "+91/9876543210"]) {
      assert.equal(rejectedField({ phoneNumber: phone }), "address.phone_number", phone);
    }
    // Separators between the digits are dropped before anything is stored.
    for (const phone of ["+91 98765 43210", "+91-98765-43210", "+91 (80) 4123.4567"]) {
      assert.equal(rejectedField({ phoneNumber: phone }), undefined, phone);
    }
    assert.equal(validateAddress({ ...base, phoneNumber: "+91 (80) 4123-4567" }).phoneNumber, "+918041234567");
    assert.equal(rejectedField({ phoneNumber: "" }), undefined);
    // Surrounding spaces are trimmed before anything is stored, so the rules let them through.
    assert.equal(rejectedField({ phoneNumber: " +919876543210\u00a0" }), undefined);
    assert.equal(validateAddress({ ...base, phoneNumber: " +919876543210\u00a0" }).phoneNumber, "+919876543210");
    assert.equal(rejectedField({ countryCode: " in " }), undefined);
    assert.equal(rejectedField({ countryCode: "  " }), "address.country_code");
  });

  it("checks coordinate ranges", () => {
    assert.equal(rejectedField({ location: { latitude: 90.0001, longitude: 0 } }), "address.location.latitude");
    assert.equal(rejectedField({ location: { latitude: -91, longitude: 0 } }), "address.location.latitude");
    assert.equal(rejectedField({ location: { latitude: 0, longitude: 180.5 } }), "address.location.longitude");
    assert.equal(rejectedField({ location: { latitude: Number.NaN, longitude: 0 } }), "address.location.latitude");
    assert.equal(rejectedField({ location: { latitude: 0, longitude: Number.POSITIVE_INFINITY } }), "address.location.longitude");
    assert.equal(rejectedField({ location: { latitude: -90, longitude: 180 } }), undefined);
    assert.equal(rejectedField({ location: null }), undefined);
    // Magnitudes below 1e-9 degrees become 0: PostgreSQL's float8 arithmetic would underflow on them.
    assert.deepEqual(validateAddress({ ...base, location: { latitude: 5e-324, longitude: -1e-170 } }).location, { latitude: 0, longitude: 0 });
    assert.deepEqual(validateAddress({ ...base, location: { latitude: -0, longitude: 1e-9 } }).location, { latitude: 0, longitude: 1e-9 });
  });

  it("caps every text field and refuses control characters", () => {
    for (const [field, max] of Object.entries(maxLengths) as [keyof typeof maxLengths, number][]) {
      if (field === "postalCode") continue;
      const ok = { [field]: "é".repeat(max) } as Partial<AddressFields>;
      assert.equal(rejectedField(field === "shopName" ? { ...ok, kind: "shop" } : ok), undefined, field);
      assert.ok(rejectedField({ [field]: "x".repeat(max + 1) }), field);
    }
    assert.equal(rejectedField({ postalCode: "1".repeat(17) }), "address.postal_code");
    assert.equal(rejectedField({ line2: "flat 4\u0000" }), "address.line2");
    assert.equal(rejectedField({ landmark: "near\nthe temple" }), "address.landmark");
    assert.equal(rejectedField({ recipientName: "\uD800" }), "address.recipient_name");
    assert.equal(rejectedField({ recipientName: "😀 Asha" }), undefined);
  });

  it("requires a shop name and a location on SHOP addresses, and only there", () => {
    assert.equal(rejectedField({ kind: "shop", shopName: "" }), "address.shop_name");
    assert.equal(rejectedField({ kind: "shop", shopName: "Rao Stores", location: null }), "address.location");
    assert.equal(rejectedField({ kind: "shop", shopName: "Rao Stores" }), undefined);
    assert.equal(rejectedField({ kind: "work", shopName: "Rao Stores" }), "address.shop_name");
  });
});
