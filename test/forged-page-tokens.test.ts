/**
 * Page tokens are not signed, so a caller can write any key into one. Every List method of every service reads its
 * keys with the shared readers (services/platform/src/pagination.ts): a time outside what PostgreSQL and JS
 * dates both hold, a number outside what the method issues, or an id that is no UUID is INVALID_ARGUMENT, never
 * a query that fails in SQL as INTERNAL.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { encodePageToken, encodeScopedPageToken } from "@local-e-grocery/platform/pagination.js";
import { bearerInterceptor, clientFor } from "./clients.js";
import { backends, registerAndLogin, startTestPlatform, type TestPlatform, type TestUser } from "./harness.js";

const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
const admin = { username: "forger_admin", email: "forger-admin@grocery.example", password: "parsnips past midnight" };

/**
 * Times no list issues: beyond year 9999 (printed "+010000-…", refused by PostgreSQL's timestamptz input), the
 * ends of the JS Date range, before PostgreSQL's 4713 BC, year 0 (PostgreSQL has none) and just before 1970.
 */
const forgedTimes = [
  Date.UTC(9999, 11, 31, 23, 59, 59, 999) + 1,
  Date.UTC(10000, 0, 1),
  Date.UTC(294277, 0, 1),
  8.64e15,
  -8.64e15,
  Date.UTC(-4714, 0, 1),
  Date.parse("0000-06-01T00:00:00.000Z"),
  -1,
];

/** A token from JSON written by hand, for values JSON.stringify cannot write (1e999 parses as Infinity). */
const rawToken = (json: string) => Buffer.from(json, "utf8").toString("base64url");

/** A scoped token whose key is JSON written by hand (1e999, strings where numbers go). */
const scopedRaw = (scope: string, keyJson: string) =>
  rawToken(Buffer.from(encodeScopedPageToken(scope, ["__key__"]), "base64url").toString("utf8").replace('["__key__"]', keyJson));

/** The code of a rejected call, with its message when it is not the expected one. */
async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    const err = ConnectError.from(e);
    return err.code === Code.InvalidArgument ? "INVALID_ARGUMENT" : `${Code[err.code]}: ${err.rawMessage}`;
  }
  return "accepted";
}

for (const backend of backends) {
  describe(`forged page tokens (${backend})`, () => {
    let tp: TestPlatform;
    let customer: TestUser;
    let shopOwner: TestUser;
    let adminToken: string;
    const clients = (user: TestUser) => ({
      users: clientFor(UserService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]),
      carts: clientFor(CartService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]),
      addresses: clientFor(AddressService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]),
    });

    before(async () => {
      tp = await startTestPlatform({ backend, env: { ADMIN_USERNAME: admin.username, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password } });
      adminToken = (await clientFor(AuthService, tp.url).login({ login: admin.username, password: admin.password })).accessToken;
      customer = await registerAndLogin(tp.url);
      shopOwner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      // Something to list, so a query that got through would have rows to compare against.
      const c = clients(customer);
      await c.carts.createCart({ name: "weekly" });
      await c.addresses.createAddress({
        address: { kind: AddressKind.HOME, label: "Home", recipientName: "Asha Rao", phoneNumber: "+919876543210", line1: "12 MG Road", city: "Bengaluru", state: "Karnataka", postalCode: "560001", countryCode: "IN", location: { latitude: 12.9716, longitude: 77.5946 } },
      });
      await clients(shopOwner).addresses.createAddress({
        address: { kind: AddressKind.SHOP, label: "Corner shop", shopName: "Corner shop", phoneNumber: "+919876543210", line1: "14 MG Road", city: "Bengaluru", state: "Karnataka", postalCode: "560001", countryCode: "IN", location: { latitude: 12.972, longitude: 77.595 } },
      });
    });
    after(() => tp.close());

    it("ListSessions and ListActivity refuse times outside the range and ids that are not UUIDs", async () => {
      const { users } = clients(customer);
      for (const [list, call] of [
        ["sessions", (pageToken: string) => users.listSessions({ pageSize: 1, pageToken })],
        ["activity", (pageToken: string) => users.listActivity({ pageSize: 1, pageToken })],
      ] as const) {
        const scope = `${list}:${customer.userId}`;
        for (const time of forgedTimes) {
          assert.equal(await refusal(call(encodeScopedPageToken(scope, [time, id]))), "INVALID_ARGUMENT", `${list} ${time}`);
        }
        for (const key of [[1_764_000_000_000, "not-a-uuid"], [1_764_000_000_000, id.toUpperCase()], [1.5, id]]) {
          assert.equal(await refusal(call(encodeScopedPageToken(scope, key))), "INVALID_ARGUMENT", `${list} ${JSON.stringify(key)}`);
        }
        const infinite = rawToken(Buffer.from(encodeScopedPageToken(scope, [123, id]), "base64url").toString("utf8").replace("123", "1e999"));
        assert.equal(await refusal(call(infinite)), "INVALID_ARGUMENT", `${list} 1e999`);
        // The tokens the list issues still work.
        const first = await call("");
        if (first.nextPageToken !== "") await call(first.nextPageToken);
      }
    });

    it("ListUsers refuses names that are not text or too long, and tokens of another filter", async () => {
      const users = clientFor(UserService, tp.url, "grpc", [bearerInterceptor(adminToken)]);
      const scope = "users::";
      for (const [what, keyJson] of [
        ["a number", "[7]"],
        ["null", "[null]"],
        ["an object", '[{"username":"a"}]'],
        ["two keys", '["a","b"]'],
        ["a NUL", '["a\\u0000b"]'],
        ["255 characters", JSON.stringify(["a".repeat(255)])],
      ] as const) {
        assert.equal(await refusal(users.listUsers({ pageSize: 1, pageToken: scopedRaw(scope, keyJson) })), "INVALID_ARGUMENT", what);
      }
      const first = await users.listUsers({ pageSize: 1 });
      assert.notEqual(first.nextPageToken, "", "more than one user to page through");
      assert.equal(await refusal(users.listUsers({ pageSize: 1, loginPrefix: "a", pageToken: first.nextPageToken })), "INVALID_ARGUMENT", "a token of another prefix");
      assert.equal((await users.listUsers({ pageSize: 1, pageToken: first.nextPageToken })).users.length, 1, "the token it issued works");
    });

    it("ListPendingDeliveries refuses times outside the range, ids that are not UUIDs and destinations that are not names", async () => {
      const users = clientFor(UserService, tp.url, "grpc", [bearerInterceptor(adminToken)]);
      const token = (t: unknown, i: unknown = id, destination: unknown = "cart") => encodeScopedPageToken("pending-deliveries", [t, i, destination]);
      for (const time of forgedTimes) {
        assert.equal(await refusal(users.listPendingDeliveries({ pageToken: token(time) })), "INVALID_ARGUMENT", String(time));
      }
      for (const i of ["not-a-uuid", id.toUpperCase(), 7]) {
        assert.equal(await refusal(users.listPendingDeliveries({ pageToken: token(1_764_000_000_000, i) })), "INVALID_ARGUMENT", String(i));
      }
      for (const destination of [7, null, "x".repeat(65), "a\u0000b"]) {
        assert.equal(await refusal(users.listPendingDeliveries({ pageToken: token(1_764_000_000_000, id, destination) })), "INVALID_ARGUMENT", String(destination));
      }
      assert.equal(await refusal(users.listPendingDeliveries({ pageToken: scopedRaw("pending-deliveries", `[1e999,"${id}","cart"]`) })), "INVALID_ARGUMENT");
      await users.listPendingDeliveries({ pageToken: token(0) });
    });

    it("ListCarts refuses times outside the range and ids that are not UUIDs", async () => {
      const { carts } = clients(customer);
      const scope = `grocery.cart.v1.CartService/ListCarts:${customer.userId}`;
      for (const time of forgedTimes) {
        assert.equal(await refusal(carts.listCarts({ pageToken: encodeScopedPageToken(scope, [time, id]) })), "INVALID_ARGUMENT", String(time));
      }
      for (const i of ["not-a-uuid", id.toUpperCase(), `${id}x`]) {
        assert.equal(await refusal(carts.listCarts({ pageToken: encodeScopedPageToken(scope, [1_764_000_000_000, i]) })), "INVALID_ARGUMENT", i);
      }
      assert.equal(await refusal(carts.listCarts({ pageToken: scopedRaw(scope, `[1e999,"${id}"]`) })), "INVALID_ARGUMENT");
      // The format an earlier version wrote is no longer a token.
      assert.equal(await refusal(carts.listCarts({ pageToken: encodePageToken({ v: 1, t: 0, i: id }) })), "INVALID_ARGUMENT");
      assert.equal((await carts.listCarts({ pageToken: encodeScopedPageToken(scope, [0, id]) })).carts.length, 1, "the earliest time is a position");
    });

    it("ListAddresses refuses times outside the range and ids that are not UUIDs", async () => {
      const { addresses } = clients(customer);
      const scope = `grocery.address.v1.AddressService/ListAddresses:${customer.userId}:`;
      const token = (t: unknown, i: unknown = id) => encodeScopedPageToken(scope, [t, i]);
      for (const time of forgedTimes) {
        assert.equal(await refusal(addresses.listAddresses({ pageToken: token(time) })), "INVALID_ARGUMENT", String(time));
        // A date string, in range or not, is no key.
        if (Math.abs(time) <= 8.64e15) assert.equal(await refusal(addresses.listAddresses({ pageToken: token(new Date(time).toISOString()) })), "INVALID_ARGUMENT", String(time));
      }
      for (const i of ["not-a-uuid", id.toUpperCase(), 7]) {
        assert.equal(await refusal(addresses.listAddresses({ pageToken: token(1_764_000_000_000, i) })), "INVALID_ARGUMENT", String(i));
      }
      assert.equal(await refusal(addresses.listAddresses({ pageToken: scopedRaw(scope, `[1e999,"${id}"]`) })), "INVALID_ARGUMENT");
      // Bound to the kind filter: the same key under another filter is refused.
      assert.equal(await refusal(addresses.listAddresses({ kind: AddressKind.HOME, pageToken: token(0) })), "INVALID_ARGUMENT");
      assert.equal((await addresses.listAddresses({ pageToken: token(0) })).addresses.length, 1, "the earliest time is a position");
    });

    it("FindNearbyShops refuses distances that are not finite, negative or beyond the radius", async () => {
      const { addresses } = clients(customer);
      const location = { latitude: 12.9716, longitude: 77.5946 };
      const scope = "grocery.address.v1.AddressService/FindNearbyShops:12.9716,77.5946,10";
      const find = (keyJson: string) => addresses.findNearbyShops({ location, radiusKm: 10, pageToken: scopedRaw(scope, keyJson) });
      for (const d of ["1e999", "-1e999", "-1", "-0.001", "10.000001", "1e308", "\"1\"", "null"]) {
        assert.equal(await refusal(find(`[${d},"${id}"]`)), "INVALID_ARGUMENT", d);
      }
      for (const i of ["\"not-a-uuid\"", `"${id.toUpperCase()}"`, "1"]) {
        assert.equal(await refusal(find(`[1,${i}]`)), "INVALID_ARGUMENT", i);
      }
      // Bound to the query's centre and radius: a token of another search (an infinite radius, say) is refused.
      assert.equal(await refusal(addresses.findNearbyShops({ location, radiusKm: 20, pageToken: encodeScopedPageToken(scope, [1, id]) })), "INVALID_ARGUMENT");
      // Distances from 0 to the radius are positions.
      assert.equal((await find(`[0,"${id}"]`)).shops.length, 1);
      assert.equal((await find(`[10,"${id}"]`)).shops.length, 0);
    });
  });
}
