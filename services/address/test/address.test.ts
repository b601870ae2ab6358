/**
 * AddressService end to end: the real platform (identity + address, and the rest of the mesh) on a real
 * socket and a real database, called with tokens minted by the real identity service.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { codeOf } from "../../../test/clients.js";
import { backends, concurrencySkip, openTestDatabase, registerAndLogin, startTestPlatform, type TestPlatform } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { sqlState } from "@local-e-grocery/platform/errors.js";
import { normalisePostalCode, postalFormats } from "../src/postal-codes.js";
import { addressClient, home, invalidFieldOf, shop, type AddressClient } from "./support.js";

for (const backend of backends) {
  describe(`AddressService on ${backend}`, () => {
    let tp: TestPlatform;
    /** A fresh customer with their own client. */
    let newCustomer: (role?: Role) => Promise<{ userId: string; client: AddressClient }>;

    before(async () => {
      tp = await startTestPlatform({ backend });
      newCustomer = async (role = Role.CUSTOMER) => {
        const user = await registerAndLogin(tp.url, { role });
        return { userId: user.userId, client: addressClient(tp.url, user.accessToken) };
      };
    });
    after(() => tp.close());

    describe("CreateAddress", () => {
      it("stores a normalised address and makes the first one the default", async () => {
        const { client } = await newCustomer();
        const first = (await client.createAddress({ address: home({ countryCode: "in", postalCode: " 560 001 ", label: "  Home " }) })).address;
        assert.ok(first);
        assert.match(first.id, /^[0-9a-f-]{36}$/);
        assert.equal(first.kind, AddressKind.HOME);
        assert.equal(first.countryCode, "IN");
        assert.equal(first.postalCode, "560 001");
        assert.equal(first.label, "Home");
        assert.equal(first.isDefault, true);
        assert.equal(first.version, 1n);
        assert.deepEqual({ ...first.location }, { $typeName: "grocery.address.v1.LatLng", latitude: 12.9716, longitude: 77.5946 });
        assert.ok(first.createTime && first.updateTime);

        const second = (await client.createAddress({ address: home({ kind: AddressKind.WORK, location: undefined, id: "ignored", isDefault: true, version: 9n }) })).address;
        assert.ok(second);
        assert.notEqual(second.id, "ignored");
        assert.equal(second.isDefault, false, "only the first address becomes the default");
        assert.equal(second.version, 1n);
        assert.equal(second.location, undefined);
        assert.equal((await client.getAddress({ addressId: first.id })).address?.isDefault, true);
      });

      it("answers INVALID_ARGUMENT naming the field, and stores nothing", async () => {
        const { client } = await newCustomer();
        const cases: [Parameters<typeof home>[0], string][] = [
          [{ kind: AddressKind.UNSPECIFIED }, "address.kind"],
          [{ kind: 42 as AddressKind }, "address.kind"],
          [{ line1: "" }, "address.line1"],
          [{ city: " " }, "address.city"],
          [{ countryCode: "" }, "address.country_code"],
          [{ countryCode: "XX" }, "address.country_code"],
          [{ postalCode: "" }, "address.postal_code"],
          [{ postalCode: "56001" }, "address.postal_code"],
          [{ countryCode: "US", postalCode: "560001" }, "address.postal_code"],
          [{ countryCode: "GB", postalCode: "SW1A" }, "address.postal_code"],
          [{ phoneNumber: "98765 43210" }, "address.phone_number"],
          [{ location: { latitude: 90.5, longitude: 0 } }, "address.location.latitude"],
          [{ location: { latitude: 0, longitude: -180.01 } }, "address.location.longitude"],
          [{ label: "x".repeat(51) }, "address.label"],
          [{ line1: "x".repeat(201) }, "address.line1"],
          [{ landmark: "bad\u0000byte" }, "address.landmark"],
          [{ shopName: "Not a shop" }, "address.shop_name"],
        ];
        for (const [overrides, field] of cases) {
          assert.equal(await invalidFieldOf(client.createAddress({ address: home(overrides) })), field, JSON.stringify(overrides));
        }
        assert.equal(await invalidFieldOf(client.createAddress({})), "address");
        assert.equal((await client.listAddresses({})).totalSize, 0, "bad input never stored anything");
      });

      it("accepts the postal formats of other countries", async () => {
        const { client } = await newCustomer();
        for (const [countryCode, postalCode] of [["GB", "sw1a 1aa"], ["CA", "K1A 0B1"], ["NL", "1012 JS"], ["JP", "100-0001"], ["AE", ""], ["KE", "00100"]] as const) {
          const a = (await client.createAddress({ address: home({ countryCode, postalCode, phoneNumber: "" }) })).address;
          assert.equal(a?.countryCode, countryCode);
          assert.equal(a?.postalCode, postalCode.toUpperCase());
        }
      });

      it("checks the postal codes of IN, US, GB, CA, DE, FR, AU, NL, JP, SG against the data table", async () => {
        const { client } = await newCustomer();
        for (const country of ["IN", "US", "GB", "CA", "DE", "FR", "AU", "NL", "JP", "SG"]) {
          const format = postalFormats.get(country);
          assert.ok(format, country);
          for (const postalCode of format.examples) {
            const a = (await client.createAddress({ address: home({ countryCode: country, postalCode, phoneNumber: "" }) })).address!;
            assert.equal(a.postalCode, normalisePostalCode(postalCode), `${country} ${postalCode}`);
            assert.equal((await client.getAddress({ addressId: a.id })).address?.postalCode, a.postalCode);
            await client.deleteAddress({ addressId: a.id });
          }
          for (const postalCode of format.counterExamples) {
            const call = client.createAddress({ address: home({ countryCode: country, postalCode, phoneNumber: "" }) });
            assert.equal(await invalidFieldOf(call), "address.postal_code", `${country} ${postalCode}`);
          }
          assert.equal(await invalidFieldOf(client.createAddress({ address: home({ countryCode: country, postalCode: "" }) })), "address.postal_code");
        }
        assert.equal((await client.listAddresses({})).totalSize, 0, "refused codes stored nothing");
      });

      it("lets only shop owners create SHOP addresses, with a name and a location", async () => {
        const customer = await newCustomer();
        const owner = await newCustomer(Role.SHOP_OWNER);
        const at = { latitude: 12.97, longitude: 77.59 };
        assert.equal(await codeOf(customer.client.createAddress({ address: shop("Rao Stores", at) })), Code.PermissionDenied);
        assert.equal((await customer.client.listAddresses({})).totalSize, 0);
        assert.equal(await invalidFieldOf(owner.client.createAddress({ address: shop("", at) })), "address.shop_name");
        assert.equal(await invalidFieldOf(owner.client.createAddress({ address: shop("Rao Stores", at, { location: undefined }) })), "address.location");
        const created = (await owner.client.createAddress({ address: shop("Rao Stores", at) })).address;
        assert.equal(created?.kind, AddressKind.SHOP);
        assert.equal(created?.shopName, "Rao Stores");
        // Shop owners keep ordinary addresses too.
        assert.equal((await owner.client.createAddress({ address: home() })).address?.kind, AddressKind.HOME);
      });

      it("caps an owner's book at 20 addresses, also under concurrent creates", async () => {
        const { client } = await newCustomer();
        for (let i = 0; i < 20; i++) await client.createAddress({ address: home({ label: `#${i}` }) });
        assert.equal(await codeOf(client.createAddress({ address: home() })), Code.ResourceExhausted);
        assert.equal((await client.listAddresses({})).totalSize, 20);

        const racer = await newCustomer();
        const results = await Promise.allSettled(Array.from({ length: 26 }, (_, i) => racer.client.createAddress({ address: home({ label: `r${i}` }) })));
        assert.equal(results.filter((r) => r.status === "fulfilled").length, 20);
        for (const r of results) if (r.status === "rejected") assert.equal(await codeOf(Promise.reject(r.reason)), Code.ResourceExhausted);
        const all = (await racer.client.listAddresses({ pageSize: 100 })).addresses;
        assert.equal(all.length, 20);
        assert.equal(all.filter((a) => a.isDefault).length, 1, "exactly one default after racing creates");
      });
    });

    describe("GetAddress", () => {
      it("finds the caller's own addresses only", async () => {
        const a = await newCustomer();
        const b = await newCustomer();
        const mine = (await a.client.createAddress({ address: home() })).address!;
        assert.equal((await a.client.getAddress({ addressId: mine.id })).address?.id, mine.id);
        assert.equal((await a.client.getAddress({ addressId: mine.id.toUpperCase() })).address?.id, mine.id);
        assert.equal(await codeOf(b.client.getAddress({ addressId: mine.id })), Code.NotFound);
        assert.equal(await codeOf(a.client.getAddress({ addressId: "not-a-uuid" })), Code.NotFound);
        assert.equal(await codeOf(a.client.getAddress({ addressId: "00000000-0000-4000-8000-000000000000" })), Code.NotFound);
        assert.equal(await invalidFieldOf(a.client.getAddress({ addressId: "" })), "address_id");
      });

      it("needs a token: UNAUTHENTICATED without one or with a bad one", async () => {
        assert.equal(await codeOf(addressClient(tp.url, undefined).listAddresses({})), Code.Unauthenticated);
        assert.equal(await codeOf(addressClient(tp.url, "not.a.jwt").listAddresses({})), Code.Unauthenticated);
      });
    });

    describe("ListAddresses", () => {
      it("pages through the book in creation order with opaque tokens, per kind", async () => {
        const { client } = await newCustomer();
        const created = [];
        for (let i = 0; i < 7; i++) {
          created.push((await client.createAddress({ address: home({ label: `#${i}`, kind: i % 2 ? AddressKind.WORK : AddressKind.HOME }) })).address!);
          tp.clock.advance(1);
        }
        const seen: string[] = [];
        let token = "";
        let pages = 0;
        do {
          const page = await client.listAddresses({ pageSize: 3, pageToken: token });
          assert.ok(page.addresses.length <= 3);
          assert.equal(page.totalSize, 7);
          seen.push(...page.addresses.map((a) => a.id));
          token = page.nextPageToken;
          pages++;
        } while (token !== "");
        assert.equal(pages, 3);
        assert.deepEqual(seen, created.map((a) => a.id));

        const work = await client.listAddresses({ kind: AddressKind.WORK, pageSize: 2 });
        assert.equal(work.totalSize, 3);
        assert.ok(work.addresses.every((a) => a.kind === AddressKind.WORK));
        const rest = await client.listAddresses({ kind: AddressKind.WORK, pageSize: 2, pageToken: work.nextPageToken });
        assert.deepEqual([...work.addresses, ...rest.addresses].map((a) => a.label), ["#1", "#3", "#5"]);
        assert.equal(rest.nextPageToken, "");

        // The default page size holds everything here; page sizes above 100 are coerced, not refused.
        assert.equal((await client.listAddresses({})).addresses.length, 7);
        assert.equal((await client.listAddresses({ pageSize: 100_000 })).addresses.length, 7);
      });

      it("refuses negative page sizes and foreign or tampered tokens", async () => {
        const { client } = await newCustomer();
        for (let i = 0; i < 3; i++) await client.createAddress({ address: home() });
        const page = await client.listAddresses({ pageSize: 1 });
        assert.equal(await invalidFieldOf(client.listAddresses({ pageSize: -1 })), "page_size");
        assert.equal(await invalidFieldOf(client.listAddresses({ pageToken: "garbage" })), "page_token");
        assert.equal(await invalidFieldOf(client.listAddresses({ pageToken: page.nextPageToken, kind: AddressKind.SHOP })), "page_token");
        assert.equal(await invalidFieldOf(client.listAddresses({ pageToken: page.nextPageToken.slice(0, -3) })), "page_token");
        assert.equal(await invalidFieldOf(client.listAddresses({ kind: 9 as AddressKind })), "kind");
        // Well-formed tokens with doctored contents are refused before they reach the database.
        const doctored = (payload: Record<string, unknown>) => Buffer.from(JSON.stringify(payload)).toString("base64url");
        const { i } = JSON.parse(Buffer.from(page.nextPageToken, "base64url").toString()) as { i: string };
        for (const t of ["+275760-09-13T00:00:00.000Z", "0000-01-01T00:00:00.000Z", "2026-02-30T00:00:00.000Z", "yesterday"]) {
          assert.equal(await invalidFieldOf(client.listAddresses({ pageToken: doctored({ m: "list", k: "", t, i }) })), "page_token", t);
        }
        assert.equal(await invalidFieldOf(client.listAddresses({ pageToken: doctored({ m: "list", k: "", t: "2026-01-01T00:00:00.000Z", i: "1; drop table" }) })), "page_token");
      });
    });

    describe("UpdateAddress", () => {
      it("changes the masked fields only and bumps the version", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home() })).address!;
        tp.clock.advance(1000);
        const updated = (
          await client.updateAddress({
            address: { id: a.id, line1: "99 Brigade Road", city: "IGNORED", postalCode: "560025" },
            updateMask: { paths: ["line1", "postal_code"] },
            expectedVersion: a.version,
          })
        ).address!;
        assert.equal(updated.line1, "99 Brigade Road");
        assert.equal(updated.postalCode, "560025");
        assert.equal(updated.city, "Bengaluru");
        assert.equal(updated.version, 2n);
        assert.equal(updated.isDefault, true);
        assert.ok(updated.updateTime!.seconds > a.updateTime!.seconds);
        assert.deepEqual(updated.createTime, a.createTime);

        // An empty mask updates the populated fields (AIP-134); clearing needs an explicit path.
        const implied = (await client.updateAddress({ address: { id: a.id, landmark: "Near the metro", label: "" } })).address!;
        assert.equal(implied.landmark, "Near the metro");
        assert.equal(implied.label, "Home");
        const cleared = (await client.updateAddress({ address: { id: a.id }, updateMask: { paths: ["location", "label"] } })).address!;
        assert.equal(cleared.location, undefined);
        assert.equal(cleared.label, "");
        assert.equal(cleared.version, 4n);

        // Writing what is already stored changes nothing, not even the version.
        const same = (await client.updateAddress({ address: { id: a.id, city: "Bengaluru" }, updateMask: { paths: ["city"] } })).address!;
        assert.equal(same.version, 4n);

        // "*" replaces every writable field.
        const replaced = (await client.updateAddress({ address: { ...home({ label: "Flat", line1: "1 Church St" }), id: a.id }, updateMask: { paths: ["*"] } })).address!;
        assert.equal(replaced.label, "Flat");
        assert.equal(replaced.line1, "1 Church St");
        assert.equal(replaced.landmark, "");
        assert.equal(replaced.version, 5n);
      });

      it("answers ABORTED on a stale expected_version and changes nothing", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home() })).address!;
        await client.updateAddress({ address: { id: a.id, label: "v2" }, updateMask: { paths: ["label"] }, expectedVersion: 1n });
        assert.equal(await codeOf(client.updateAddress({ address: { id: a.id, label: "lost" }, updateMask: { paths: ["label"] }, expectedVersion: 1n })), Code.Aborted);
        const now = (await client.getAddress({ addressId: a.id })).address!;
        assert.equal(now.label, "v2");
        assert.equal(now.version, 2n);
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id, label: "x" }, expectedVersion: -1n })), "expected_version");
        // An int64 beyond any version is merely stale, like cart's.
        assert.equal(await codeOf(client.updateAddress({ address: { id: a.id, label: "x" }, expectedVersion: 2n ** 63n - 1n })), Code.Aborted);
      });

      it("checks expected_version whenever it is set, as cart does: an explicit 0 is a version no address has", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home() })).address!;
        const unset = (await client.updateAddress({ address: { id: a.id, label: "no check" }, updateMask: { paths: ["label"] } })).address!;
        assert.equal(unset.version, 2n);
        assert.equal(await codeOf(client.updateAddress({ address: { id: a.id, label: "zero" }, updateMask: { paths: ["label"] }, expectedVersion: 0n })), Code.Aborted);
        const checked = (await client.updateAddress({ address: { id: a.id, label: "checked" }, updateMask: { paths: ["label"] }, expectedVersion: 2n })).address!;
        assert.equal(checked.version, 3n);
        assert.equal(await codeOf(client.deleteAddress({ addressId: a.id, expectedVersion: 0n })), Code.Aborted);
        assert.equal((await client.deleteAddress({ addressId: a.id, expectedVersion: 3n })).promotedAddress, undefined);
        assert.equal(await codeOf(client.getAddress({ addressId: a.id })), Code.NotFound);
      });

      it("checks mask paths: unknown, output-only and is_default are INVALID_ARGUMENT", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home() })).address!;
        for (const path of ["is_default", "nickname", "version", "id", "create_time", "location.latitude"]) {
          assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id, isDefault: true }, updateMask: { paths: [path] } })), "update_mask", path);
        }
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { line1: "x" }, updateMask: { paths: ["line1"] } })), "address.id");
        assert.equal(await invalidFieldOf(client.updateAddress({ updateMask: { paths: ["line1"] } })), "address");
        const unchanged = (await client.getAddress({ addressId: a.id })).address!;
        assert.equal(unchanged.version, 1n);
      });

      it("validates the result: bad values and combinations are INVALID_ARGUMENT with nothing changed", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home() })).address!;
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id, countryCode: "US" }, updateMask: { paths: ["country_code"] } })), "address.postal_code");
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id }, updateMask: { paths: ["city"] } })), "address.city");
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id, phoneNumber: "12345" }, updateMask: { paths: ["phone_number"] } })), "address.phone_number");
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id }, updateMask: { paths: ["kind"] } })), "address.kind");
        assert.equal(await invalidFieldOf(client.updateAddress({ address: { id: a.id, shopName: "Mine" }, updateMask: { paths: ["shop_name"] } })), "address.shop_name");
        const moved = (await client.updateAddress({ address: { id: a.id, countryCode: "US", postalCode: "95014" }, updateMask: { paths: ["country_code", "postal_code"] } })).address!;
        assert.equal(moved.countryCode, "US");
        assert.equal(moved.version, 2n);
      });

      it("allows kind changes among HOME, WORK and OTHER, never to or from SHOP", async () => {
        const customer = await newCustomer();
        const owner = await newCustomer(Role.SHOP_OWNER);
        const a = (await customer.client.createAddress({ address: home() })).address!;
        const work = (await customer.client.updateAddress({ address: { id: a.id, kind: AddressKind.WORK }, updateMask: { paths: ["kind"] } })).address!;
        assert.equal(work.kind, AddressKind.WORK);
        const asShop = { id: a.id, kind: AddressKind.SHOP, shopName: "Corner", location: { latitude: 12.9, longitude: 77.6 } };
        assert.equal(await codeOf(customer.client.updateAddress({ address: asShop, updateMask: { paths: ["kind", "shop_name", "location"] } })), Code.FailedPrecondition);

        const ownerHome = (await owner.client.createAddress({ address: home() })).address!;
        assert.equal(
          await codeOf(owner.client.updateAddress({ address: { ...asShop, id: ownerHome.id }, updateMask: { paths: ["kind", "shop_name", "location"] } })),
          Code.FailedPrecondition,
        );
        const s = (await owner.client.createAddress({ address: shop("Corner", { latitude: 12.9, longitude: 77.6 }) })).address!;
        assert.equal(await codeOf(owner.client.updateAddress({ address: { id: s.id, kind: AddressKind.HOME, shopName: "" }, updateMask: { paths: ["kind", "shop_name"] } })), Code.FailedPrecondition);
        assert.equal(await invalidFieldOf(owner.client.updateAddress({ address: { id: s.id }, updateMask: { paths: ["location"] } })), "address.location");
        const renamed = (await owner.client.updateAddress({ address: { id: s.id, shopName: "Corner Fresh" }, updateMask: { paths: ["shop_name"] } })).address!;
        assert.equal(renamed.shopName, "Corner Fresh");
      });
    });

    describe("DeleteAddress", () => {
      it("promotes the most recently updated address when the default goes", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home({ label: "a" }) })).address!;
        tp.clock.advance(1000);
        const b = (await client.createAddress({ address: home({ label: "b" }) })).address!;
        tp.clock.advance(1000);
        const c = (await client.createAddress({ address: home({ label: "c" }) })).address!;
        tp.clock.advance(1000);
        await client.updateAddress({ address: { id: b.id, label: "b2" }, updateMask: { paths: ["label"] } });
        tp.clock.advance(1000);

        const gone = await client.deleteAddress({ addressId: c.id });
        assert.equal(gone.promotedAddress, undefined, "deleting a non-default promotes nothing");
        const promoted = (await client.deleteAddress({ addressId: a.id, expectedVersion: a.version })).promotedAddress!;
        assert.equal(promoted.id, b.id);
        assert.equal(promoted.isDefault, true);
        assert.equal(promoted.version, 3n);
        assert.equal(await codeOf(client.getAddress({ addressId: a.id })), Code.NotFound);
        assert.equal(await codeOf(client.deleteAddress({ addressId: a.id })), Code.NotFound);

        assert.equal((await client.deleteAddress({ addressId: b.id })).promotedAddress, undefined);
        assert.equal((await client.listAddresses({})).totalSize, 0);
        const fresh = (await client.createAddress({ address: home() })).address!;
        assert.equal(fresh.isDefault, true, "the first address of an empty book is the default again");
      });

      it("answers ABORTED on a stale expected_version and keeps the address", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home() })).address!;
        await client.updateAddress({ address: { id: a.id, label: "v2" }, updateMask: { paths: ["label"] } });
        assert.equal(await codeOf(client.deleteAddress({ addressId: a.id, expectedVersion: 1n })), Code.Aborted);
        assert.equal((await client.getAddress({ addressId: a.id })).address?.version, 2n);
        assert.equal(await codeOf(client.deleteAddress({ addressId: "nope" })), Code.NotFound);
        assert.equal(await invalidFieldOf(client.deleteAddress({ addressId: "" })), "address_id");
      });
    });

    describe("SetDefaultAddress", () => {
      it("moves the default atomically and is idempotent", async () => {
        const { client } = await newCustomer();
        const a = (await client.createAddress({ address: home({ label: "a" }) })).address!;
        const b = (await client.createAddress({ address: home({ label: "b" }) })).address!;
        const now = (await client.setDefaultAddress({ addressId: b.id })).address!;
        assert.equal(now.isDefault, true);
        assert.equal(now.version, 2n);
        const old = (await client.getAddress({ addressId: a.id })).address!;
        assert.equal(old.isDefault, false);
        assert.equal(old.version, 2n);
        const again = (await client.setDefaultAddress({ addressId: b.id })).address!;
        assert.equal(again.version, 2n, "setting the default again changes nothing");
        assert.equal(await codeOf(client.setDefaultAddress({ addressId: "00000000-0000-4000-8000-000000000000" })), Code.NotFound);
        assert.equal(await invalidFieldOf(client.setDefaultAddress({ addressId: "" })), "address_id");
      });

      it("leaves exactly one default after many concurrent calls", { skip: concurrencySkip(backend) }, async () => {
        const { client } = await newCustomer();
        const ids: string[] = [];
        for (let i = 0; i < 10; i++) ids.push((await client.createAddress({ address: home({ label: `#${i}` }) })).address!.id);
        for (let round = 0; round < 3; round++) {
          const results = await Promise.all(ids.flatMap((id) => [client.setDefaultAddress({ addressId: id }), client.setDefaultAddress({ addressId: id })]));
          assert.ok(results.every((r) => r.address?.isDefault));
          const all = (await client.listAddresses({})).addresses;
          const defaults = all.filter((a) => a.isDefault);
          assert.equal(defaults.length, 1, `round ${round}: exactly one default`);
        }
        // Mixed with deletes of the default: still exactly one.
        const current = (await client.listAddresses({})).addresses.find((a) => a.isDefault)!;
        await Promise.all([client.deleteAddress({ addressId: current.id }), ...ids.filter((id) => id !== current.id).slice(0, 4).map((id) => client.setDefaultAddress({ addressId: id }))]);
        assert.equal((await client.listAddresses({})).addresses.filter((a) => a.isDefault).length, 1);
      });
    });

    describe("one default under concurrent Create, Delete and SetDefault", { skip: concurrencySkip(backend) }, () => {
      it("keeps exactly one default while any address exists, and none once all are gone", async () => {
        const { client } = await newCustomer();
        const defaults = async () => (await client.listAddresses({ pageSize: 100 })).addresses.filter((a) => a.isDefault).length;
        for (let round = 0; round < 4; round++) {
          const book = (await client.listAddresses({ pageSize: 100 })).addresses;
          const current = book.find((a) => a.isDefault);
          const others = book.filter((a) => !a.isDefault);
          // Delete the default and half the others, move the default among the rest, and create new ones, all at once.
          const calls: Promise<unknown>[] = [
            ...(current ? [client.deleteAddress({ addressId: current.id })] : []),
            ...others.slice(0, Math.ceil(others.length / 2)).map((a) => client.deleteAddress({ addressId: a.id })),
            ...others.slice(Math.ceil(others.length / 2)).map((a) => client.setDefaultAddress({ addressId: a.id })),
            ...Array.from({ length: 5 }, (_, i) => client.createAddress({ address: home({ label: `r${round}.${i}` }) })),
          ];
          const results = await Promise.allSettled(calls);
          for (const r of results) if (r.status === "rejected") assert.equal(await codeOf(Promise.reject(r.reason)), Code.NotFound);
          assert.equal(await defaults(), 1, `round ${round}`);
        }
        // Deleting everything at once leaves no default, and the next address is the default again.
        const all = (await client.listAddresses({ pageSize: 100 })).addresses;
        await Promise.all(all.map((a) => client.deleteAddress({ addressId: a.id })));
        assert.equal((await client.listAddresses({})).totalSize, 0);
        assert.equal((await client.createAddress({ address: home() })).address?.isDefault, true);
        assert.equal(await defaults(), 1);
      });
    });

    describe("isolation", () => {
      it("keeps users' books apart: foreign ids are NOT_FOUND and stay untouched", async () => {
        const alice = await newCustomer();
        const bob = await newCustomer();
        const hers = (await alice.client.createAddress({ address: home({ label: "alice" }) })).address!;
        const his = (await bob.client.createAddress({ address: home({ label: "bob" }) })).address!;
        assert.deepEqual((await alice.client.listAddresses({})).addresses.map((a) => a.id), [hers.id]);
        assert.deepEqual((await bob.client.listAddresses({})).addresses.map((a) => a.id), [his.id]);
        assert.equal(await codeOf(bob.client.getAddress({ addressId: hers.id })), Code.NotFound);
        assert.equal(await codeOf(bob.client.updateAddress({ address: { id: hers.id, label: "pwned" }, updateMask: { paths: ["label"] } })), Code.NotFound);
        assert.equal(await codeOf(bob.client.setDefaultAddress({ addressId: hers.id })), Code.NotFound);
        assert.equal(await codeOf(bob.client.deleteAddress({ addressId: hers.id })), Code.NotFound);
        const after = (await alice.client.getAddress({ addressId: hers.id })).address!;
        assert.equal(after.label, "alice");
        assert.equal(after.version, 1n);
        assert.equal(after.isDefault, true);
        assert.equal((await bob.client.getAddress({ addressId: his.id })).address?.isDefault, true, "each owner has their own default");
      });
    });

    describe("other protocols", () => {
      it("serves the same API over Connect and gRPC-web", async () => {
        const user = await registerAndLogin(tp.url);
        const connect = addressClient(tp.url, user.accessToken, "connect");
        const grpcWeb = addressClient(tp.url, user.accessToken, "grpc-web");
        const a = (await connect.createAddress({ address: home({ countryCode: "SG", postalCode: "018956" }) })).address!;
        assert.equal((await grpcWeb.getAddress({ addressId: a.id })).address?.postalCode, "018956");
        assert.equal(await codeOf(grpcWeb.getAddress({ addressId: "nope" })), Code.NotFound);
        assert.equal(await invalidFieldOf(connect.createAddress({ address: home({ countryCode: "SG", postalCode: "1234" }) })), "address.postal_code");
        assert.equal(await codeOf(addressClient(tp.url, undefined, "connect").getAddress({ addressId: a.id })), Code.Unauthenticated);
      });
    });

    // Last: stops the platform to reach its database directly (PGlite allows one process at a time).
    describe("database", () => {
      it("refuses a second default per owner by itself, and keeps the data across a restart", async () => {
        const user = await registerAndLogin(tp.url);
        const userId = user.userId;
        const client = addressClient(tp.url, user.accessToken);
        const a = (await client.createAddress({ address: home({ label: "a" }) })).address!;
        await client.createAddress({ address: home({ label: "b" }) });
        await tp.stop();
        const database = await openTestDatabase(tp);
        try {
          await assert.rejects(
            database.db.execute(sql`update address.addresses set is_default = true where owner_id = ${userId}`),
            (e: unknown) => sqlState(e) === "23505",
          );
          await assert.rejects(
            database.db.execute(sql`update address.addresses set kind = 'shop' where owner_id = ${userId}`),
            (e: unknown) => sqlState(e) === "23514",
          );
          const rows = rowsOf<{ n: number }>(
            await database.db.execute(sql`select count(*)::int as n from address.addresses where owner_id = ${userId} and is_default`),
          );
          assert.equal(rows[0]?.n, 1);
        } finally {
          await database.close();
        }
        tp = await tp.restart();
        // Same token (identity's keys are stored too), same rows, migrations not applied twice.
        const again = addressClient(tp.url, user.accessToken);
        const stored = (await again.getAddress({ addressId: a.id })).address!;
        assert.equal(stored.isDefault, true);
        assert.equal((await again.listAddresses({})).totalSize, 2);
      });
    });
  });
}
