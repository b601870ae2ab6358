/** Configurable limits may only tighten what the schema's buf.validate rules declare. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AddressSchema } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { FindNearbyShopsRequestSchema, FindNearbyShopsResponseSchema } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { ConfigError } from "@local-e-grocery/platform/config.js";
import { schemaMaximum } from "@local-e-grocery/platform/field-rules.js";
import { readAddressConfig } from "../src/config.js";

describe("address limits against the schema", () => {
  it("reads the largest searched radius from the response's rule", () => {
    assert.equal(schemaMaximum(FindNearbyShopsResponseSchema.field.radiusKm), 1000);
    // The requested radius is capped, not refused, so it declares no maximum of its own.
    assert.throws(() => schemaMaximum(FindNearbyShopsRequestSchema.field.radiusKm));
    assert.equal(schemaMaximum(AddressSchema.field.line1), 200);
  });
  it("accepts ADDRESS_MAX_RADIUS_KM up to the schema's maximum and refuses one above it", () => {
    assert.equal(readAddressConfig({ ADDRESS_MAX_RADIUS_KM: "1000" }).maxRadiusKm, 1000);
    assert.throws(() => readAddressConfig({ ADDRESS_MAX_RADIUS_KM: "1001" }), (e: unknown) => e instanceof ConfigError && /ADDRESS_MAX_RADIUS_KM/.test(e.message));
  });
});
