import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { AddressSchema } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { ConfigError } from "@local-e-grocery/platform/config.js";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { resolvePageSize } from "@local-e-grocery/platform/pagination.js";
import { addressPageSizes } from "../src/address-book.js";
import { readAddressConfig } from "../src/config.js";
import { boundingBox, haversineKm } from "../src/geo.js";
import type { LatLng } from "../src/model.js";
import { fieldsToUpdate } from "../src/routes.js";
import { destination } from "./support.js";

function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof DomainError);
    assert.equal(e.code, Code.InvalidArgument);
    return e.field;
  }
}

// The resolver itself is the shared one (platform/src/update-mask.test.ts); these pin Address's writable fields.
describe("fieldsToUpdate", () => {
  const none = create(AddressSchema);
  it("maps proto paths (and their JSON names) to fields", () => {
    assert.deepEqual([...fieldsToUpdate(["line1", "postal_code", "location", "kind"], none)], ["line1", "postalCode", "location", "kind"]);
    assert.deepEqual([...fieldsToUpdate(["recipientName", "shopName"], none)], ["recipientName", "shopName"]);
  });
  it("uses the populated fields when the mask is empty or absent, and every field for *", () => {
    const set = create(AddressSchema, { id: "x", city: "Pune", label: "Home", isDefault: true, version: 3n });
    assert.deepEqual([...fieldsToUpdate([], set)].sort(), ["city", "label"]);
    assert.deepEqual([...fieldsToUpdate(undefined, set)].sort(), ["city", "label"]);
    assert.equal(fieldsToUpdate(["*"], none).size, 14);
  });
  it("refuses unknown, output-only and sub-field paths", () => {
    for (const path of ["is_default", "id", "version", "create_time", "update_time", "owner_id", "location.latitude", "lineOne", ""]) {
      assert.equal(invalidField(() => fieldsToUpdate([path], none)), "update_mask", path);
    }
    assert.equal(invalidField(() => fieldsToUpdate(["*", "city"], none)), "update_mask");
  });
});

// The page token format is the shared one (platform/src/pagination.test.ts); ListAddresses and FindNearbyShops
// tokens are tested through the API (address.test.ts, nearby.test.ts).
describe("page sizes", () => {
  it("default to 20, cap at 100 and refuse negative sizes", () => {
    assert.equal(resolvePageSize(0, addressPageSizes), 20);
    assert.equal(resolvePageSize(7, addressPageSizes), 7);
    assert.equal(resolvePageSize(100, addressPageSizes), 100);
    assert.equal(resolvePageSize(5000, addressPageSizes), 100);
    assert.equal(invalidField(() => resolvePageSize(-1, addressPageSizes)), "page_size");
  });
});

function inBox(p: LatLng, box: ReturnType<typeof boundingBox>): boolean {
  return p.latitude >= box.minLatitude && p.latitude <= box.maxLatitude && box.longitudeRanges.some(([a, b]) => p.longitude >= a && p.longitude <= b);
}

describe("geo", () => {
  it("measures great-circle distances", () => {
    const bengaluru = { latitude: 12.9716, longitude: 77.5946 };
    const mumbai = { latitude: 19.076, longitude: 72.8777 };
    assert.ok(Math.abs(haversineKm(bengaluru, mumbai) - 845) < 5);
    assert.equal(haversineKm(bengaluru, bengaluru), 0);
    assert.ok(Math.abs(haversineKm({ latitude: 0, longitude: 179.95 }, { latitude: 0, longitude: -179.95 }) - 11.12) < 0.05);
  });

  it("puts every point of the circle inside the bounding box, across the antimeridian and near the poles", () => {
    const centres: LatLng[] = [
      { latitude: 12.9716, longitude: 77.5946 },
      { latitude: 51.5074, longitude: -0.1278 },
      { latitude: -16.8, longitude: 179.95 },
      { latitude: 10, longitude: -179.99 },
      { latitude: 89.8, longitude: 20 },
      { latitude: -89.95, longitude: -100 },
      { latitude: 70, longitude: 0 },
    ];
    for (const centre of centres) {
      for (const radius of [0.5, 10, 50]) {
        const box = boundingBox(centre, radius);
        for (let bearing = 0; bearing < 360; bearing += 7.5) {
          const p = destination(centre, radius * 0.999999, bearing);
          assert.ok(inBox(p, box), `${JSON.stringify(centre)} r=${radius} bearing=${bearing} ${JSON.stringify(p)} ${JSON.stringify(box)}`);
        }
        const outside = destination(centre, radius * 3, 90);
        if (Math.abs(centre.latitude) < 80) assert.ok(!inBox(outside, box), "box is tight enough to prefilter");
      }
    }
  });
});

describe("readAddressConfig", () => {
  it("has the documented defaults", () => {
    assert.deepEqual(readAddressConfig({}), { maxPerOwner: 20, defaultRadiusKm: 10, maxRadiusKm: 50, purgeTombstoneTtlMs: 990_000 });
  });
  it("reads overrides and names the variable at fault", () => {
    assert.deepEqual(readAddressConfig({ ADDRESS_MAX_PER_OWNER: "5", ADDRESS_MAX_RADIUS_KM: "8" }), { maxPerOwner: 5, defaultRadiusKm: 8, maxRadiusKm: 8, purgeTombstoneTtlMs: 990_000 });
    assert.throws(() => readAddressConfig({ ADDRESS_MAX_PER_OWNER: "0" }), (e: unknown) => e instanceof ConfigError && e.message.includes("ADDRESS_MAX_PER_OWNER"));
    assert.throws(() => readAddressConfig({ ADDRESS_MAX_RADIUS_KM: "ten" }), (e: unknown) => e instanceof ConfigError && e.message.includes("ADDRESS_MAX_RADIUS_KM"));
    assert.throws(
      () => readAddressConfig({ ADDRESS_MAX_RADIUS_KM: "20", ADDRESS_DEFAULT_RADIUS_KM: "30" }),
      (e: unknown) => e instanceof ConfigError && e.message.includes("ADDRESS_DEFAULT_RADIUS_KM"),
    );
  });
});
