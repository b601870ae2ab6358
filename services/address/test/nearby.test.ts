/**
 * FindNearbyShops end to end on a fixture of shops around two cities (and a few across the antimeridian),
 * against the real platform and database.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { NearbyShop } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { backends, registerAndLogin, startTestPlatform, type TestPlatform } from "../../../test/harness.js";
import { haversineKm } from "../src/geo.js";
import { addressClient, destination, home, invalidFieldOf, shop, type AddressClient } from "./support.js";

const bengaluru = { latitude: 12.9716, longitude: 77.5946 };
const london = { latitude: 51.5074, longitude: -0.1278 };
const pune = { latitude: 18.5204, longitude: 73.8567 };
const londonAddress = { line1: "1 Whitehall", city: "London", state: "", countryCode: "GB", postalCode: "SW1A 2AA", phoneNumber: "+442079460000" };

/** Shops around each city: [distance in km, bearing in degrees]. */
const ring: [number, number][] = [
  [0.3, 10],
  [1.1, 80],
  [2.5, 200],
  [4.2, 300],
  [6, 45],
  [9.5, 135],
  [14, 250],
  [30, 0],
  [49, 90],
  [55, 180],
];

interface FixtureShop {
  id: string;
  name: string;
  location: { latitude: number; longitude: number };
}

for (const backend of backends) {
  describe(`FindNearbyShops on ${backend}`, () => {
    let tp: TestPlatform;
    let customer: AddressClient;
    const fixture: FixtureShop[] = [];

    /** Fixture shops within `radiusKm` of `centre`, nearest first, as the service must return them. */
    const expected = (centre: { latitude: number; longitude: number }, radiusKm: number) =>
      fixture
        .map((s) => ({ ...s, distanceKm: haversineKm(centre, s.location) }))
        .filter((s) => s.distanceKm <= radiusKm)
        .sort((a, b) => a.distanceKm - b.distanceKm || (a.id < b.id ? -1 : 1));

    const assertSameShops = (actual: NearbyShop[], want: ReturnType<typeof expected>) => {
      assert.deepEqual(
        actual.map((s) => s.shopName),
        want.map((s) => s.name),
      );
      for (const [i, s] of actual.entries()) {
        const w = want[i]!;
        assert.equal(s.addressId, w.id);
        // Owners' user ids are not public: the deprecated field is always empty.
        assert.equal(s.ownerId, "");
        assert.ok(Math.abs(s.distanceKm - w.distanceKm) < 1e-6, `${s.shopName}: ${s.distanceKm} vs ${w.distanceKm}`);
      }
    };

    before(async () => {
      // Room for the page-size cap fixture below (more than 100 shops of one owner).
      tp = await startTestPlatform({ backend, env: { ADDRESS_MAX_PER_OWNER: "110" } });
      const addShops = async (centre: typeof bengaluru, city: string, where: Parameters<typeof home>[0], extra: (typeof ring)[number][] = []) => {
        const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
        const client = addressClient(tp.url, owner.accessToken);
        // The owner's own home is not a shop and must never be listed.
        await client.createAddress({ address: home({ ...where, location: centre }) });
        for (const [km, bearing] of [...ring, ...extra]) {
          const location = destination(centre, km, bearing);
          const name = `${city} ${km} km @${bearing}`;
          const created = (await client.createAddress({ address: shop(name, location, where) })).address!;
          fixture.push({ id: created.id, name, location: { latitude: created.location!.latitude, longitude: created.location!.longitude } });
        }
        return client;
      };
      await addShops(bengaluru, "BLR", {});
      // Two London shops share a spot: ties are broken by id.
      await addShops(london, "LON", londonAddress, [[2, 90]]);
      const twin = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const twinClient = addressClient(tp.url, twin.accessToken);
      const spot = destination(london, 2, 90);
      const twinShop = (await twinClient.createAddress({ address: shop("LON twin", spot, { ...londonAddress, postalCode: "E1 6AN" }) })).address!;
      fixture.push({ id: twinShop.id, name: "LON twin", location: { latitude: twinShop.location!.latitude, longitude: twinShop.location!.longitude } });

      const user = await registerAndLogin(tp.url);
      customer = addressClient(tp.url, user.accessToken);
      await customer.createAddress({ address: home() });
    });
    after(() => tp.close());

    it("lists the shops within the radius, nearest first, with their distance", async () => {
      const res = await customer.findNearbyShops({ location: bengaluru, radiusKm: 5 });
      assert.equal(res.radiusKm, 5);
      assert.equal(res.nextPageToken, "");
      assertSameShops(res.shops, expected(bengaluru, 5));
      assert.deepEqual(
        res.shops.map((s) => Math.round(s.distanceKm * 10) / 10),
        [0.3, 1.1, 2.5, 4.2],
      );
      const first = res.shops[0]!;
      assert.equal(first.countryCode, "IN");
      assert.equal(first.line1, "12 MG Road");
      assert.equal(first.phoneNumber, "+919876543210");
      assert.ok(first.location);
    });

    it("uses the default radius for 0 and caps large radii", async () => {
      const byDefault = await customer.findNearbyShops({ location: bengaluru });
      assert.equal(byDefault.radiusKm, 10);
      assertSameShops(byDefault.shops, expected(bengaluru, 10));
      assert.equal(byDefault.shops.length, 6);

      const capped = await customer.findNearbyShops({ location: bengaluru, radiusKm: 20_000, pageSize: 100 });
      assert.equal(capped.radiusKm, 50);
      assertSameShops(capped.shops, expected(bengaluru, 50));
      assert.equal(capped.shops.length, 9, "the shop 55 km away is outside the cap");
      assert.ok(capped.shops.every((s) => s.shopName.startsWith("BLR")), "another city never shows up");
    });

    it("finds the other city's shops around it, breaking distance ties by id", async () => {
      const res = await customer.findNearbyShops({ location: london, radiusKm: 50, pageSize: 100 });
      assertSameShops(res.shops, expected(london, 50));
      const twins = res.shops.filter((s) => s.shopName === "LON twin" || s.shopName === "LON 2 km @90");
      assert.equal(twins.length, 2);
      assert.equal(twins[0]!.distanceKm, twins[1]!.distanceKm);
      assert.ok(twins[0]!.addressId < twins[1]!.addressId);
      assert.equal(res.shops.find((s) => s.shopName === "LON twin")?.postalCode, "E1 6AN");
    });

    it("pages with tokens bound to the query", async () => {
      const all = expected(london, 50);
      const seen: NearbyShop[] = [];
      let token = "";
      do {
        const page = await customer.findNearbyShops({ location: london, radiusKm: 50, pageSize: 4, pageToken: token });
        assert.ok(page.shops.length <= 4);
        seen.push(...page.shops);
        token = page.nextPageToken;
        if (token !== "") {
          assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: bengaluru, radiusKm: 50, pageSize: 4, pageToken: token })), "page_token");
          assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: london, radiusKm: 40, pageSize: 4, pageToken: token })), "page_token");
        }
      } while (token !== "");
      assertSameShops(seen, all);
      assert.equal(seen.length, 11);
    });

    it("refuses a missing or bad location, radius, page size or token", async () => {
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ radiusKm: 5 })), "location");
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: { latitude: 91, longitude: 0 } })), "location.latitude");
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: { latitude: 0, longitude: 181 } })), "location.longitude");
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: bengaluru, radiusKm: -1 })), "radius_km");
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: bengaluru, radiusKm: Number.NaN })), "radius_km");
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: bengaluru, pageSize: -5 })), "page_size");
      assert.equal(await invalidFieldOf(customer.findNearbyShops({ location: bengaluru, pageToken: "abc" })), "page_token");
    });

    it("follows shops that move or close", async () => {
      const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const client = addressClient(tp.url, owner.accessToken);
      const s = (await client.createAddress({ address: shop("Pop-up", destination(bengaluru, 0.1, 0)) })).address!;
      assert.equal((await customer.findNearbyShops({ location: bengaluru, radiusKm: 1 })).shops[0]?.addressId, s.id);
      await client.updateAddress({ address: { id: s.id, location: destination(pune, 0.1, 0) }, updateMask: { paths: ["location"] } });
      assert.ok(!(await customer.findNearbyShops({ location: bengaluru, radiusKm: 1 })).shops.some((x) => x.addressId === s.id));
      assert.equal((await customer.findNearbyShops({ location: pune, radiusKm: 1 })).shops[0]?.addressId, s.id);
      await client.deleteAddress({ addressId: s.id });
      assert.equal((await customer.findNearbyShops({ location: pune, radiusKm: 1 })).shops.length, 0);
    });

    it("searches across the antimeridian", async () => {
      const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const client = addressClient(tp.url, owner.accessToken);
      const fiji = { countryCode: "FJ", postalCode: "", phoneNumber: "" };
      const east = (await client.createAddress({ address: shop("Taveuni East", { latitude: -16.8, longitude: -179.97 }, fiji) })).address!;
      const west = (await client.createAddress({ address: shop("Taveuni West", { latitude: -16.8, longitude: 179.96 }, fiji) })).address!;
      const res = await customer.findNearbyShops({ location: { latitude: -16.8, longitude: 179.99 }, radiusKm: 10 });
      assert.deepEqual(
        res.shops.map((s) => s.addressId),
        [west.id, east.id],
      );
      assert.ok(res.shops.every((s) => s.distanceKm < 5));
    });

    it("searches around both poles across every meridian, page by page", async () => {
      const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const client = addressClient(tp.url, owner.accessToken);
      const polar = { countryCode: "AQ", postalCode: "BIQQ 1ZZ", phoneNumber: "" };
      const north = { latitude: 89.9, longitude: 170 };
      const south = { latitude: -89.95, longitude: -100 };
      const shops: FixtureShop[] = [];
      const add = async (name: string, location: { latitude: number; longitude: number }) => {
        const created = (await client.createAddress({ address: shop(name, location, polar) })).address!;
        shops.push({ id: created.id, name, location: { latitude: created.location!.latitude, longitude: created.location!.longitude } });
      };
      // Bearings 0 and 45 from 89.9° N cross the pole onto the far side of the globe (longitudes near -10).
      for (const [km, bearing] of [[5, 0], [12, 90], [20, 180], [25, 0], [35, 270], [45, 45], [49, 200], [60, 135]] as const) {
        await add(`N ${km} km @${bearing}`, destination(north, km, bearing));
      }
      await add("N pole", { latitude: 90, longitude: 0 });
      for (const [km, bearing] of [[3, 0], [30, 120], [70, 300]] as const) await add(`S ${km} km @${bearing}`, destination(south, km, bearing));
      await add("S pole", { latitude: -90, longitude: 180 });

      for (const [centre, count] of [[north, 8], [south, 3]] as const) {
        const want = shops
          .map((s) => ({ ...s, distanceKm: haversineKm(centre, s.location) }))
          .filter((s) => s.distanceKm <= 50)
          .sort((a, b) => a.distanceKm - b.distanceKm || (a.id < b.id ? -1 : 1));
        assert.equal(want.length, count);
        const seen: NearbyShop[] = [];
        let pageToken = "";
        do {
          const page = await customer.findNearbyShops({ location: centre, radiusKm: 50, pageSize: 2, pageToken });
          seen.push(...page.shops);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        assertSameShops(seen, want);
      }
    });

    it("takes coordinates within 1e-9 degrees of 0 as 0, so the distance SQL never underflows", async () => {
      const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const client = addressClient(tp.url, owner.accessToken);
      const gulf = { countryCode: "GH", postalCode: "GA 100", phoneNumber: "" };
      const tiny = (await client.createAddress({ address: shop("Null Island", { latitude: 5e-324, longitude: -1e-170 }, gulf) })).address!;
      assert.deepEqual([tiny.location?.latitude, tiny.location?.longitude], [0, 0]);
      const near = (await client.createAddress({ address: shop("Null Island East", { latitude: 0, longitude: 1e-9 }, gulf) })).address!;
      for (const location of [{ latitude: 0, longitude: 0 }, { latitude: 1e-200, longitude: -5e-324 }, { latitude: 2e-9, longitude: 1e-9 }]) {
        const res = await customer.findNearbyShops({ location, radiusKm: 1, pageSize: 1 });
        assert.equal(res.shops.length, 1, JSON.stringify(location));
        const next = await customer.findNearbyShops({ location, radiusKm: 1, pageSize: 1, pageToken: res.nextPageToken });
        assert.deepEqual(new Set([...res.shops, ...next.shops].map((x) => x.addressId)), new Set([tiny.id, near.id]));
        assert.equal(next.nextPageToken, "");
      }
    });

    it("caps the page size at 100", async () => {
      const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const client = addressClient(tp.url, owner.accessToken);
      for (let i = 0; i < 103; i++) await client.createAddress({ address: shop(`Pune ${i}`, destination(pune, 0.01 + i * 0.05, i * 37)) });
      const first = await customer.findNearbyShops({ location: pune, radiusKm: 50, pageSize: 1000 });
      assert.equal(first.shops.length, 100);
      assert.notEqual(first.nextPageToken, "");
      const second = await customer.findNearbyShops({ location: pune, radiusKm: 50, pageSize: 1000, pageToken: first.nextPageToken });
      assert.equal(second.shops.length, 3);
      assert.equal(second.nextPageToken, "");
      const distances = [...first.shops, ...second.shops].map((s) => s.distanceKm);
      assert.deepEqual(distances, [...distances].sort((a, b) => a - b));
    });
  });
}
