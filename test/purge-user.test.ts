/**
 * UserDataService/PurgeUser over the real stack (identity, cart and address in one process, as `npm start`
 * serves them, over gRPC): a SERVICE token purges one user's carts, lines, AddItem request ids and addresses,
 * counted, idempotently, and leaves everyone else's; no other role may call it; the purged user's still-valid
 * access token cannot write again until PURGE_TOMBSTONE_TTL has passed.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { readAddressConfig } from "@local-e-grocery/address/config.js";
import { defaultCartConfig, readCartConfig } from "@local-e-grocery/cart/config.js";
import { readIdentityConfig } from "@local-e-grocery/identity/config.js";
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from "@local-e-grocery/platform/auth/verify-token.js";
import { readPurgeTombstoneTtlMs } from "@local-e-grocery/platform/user-data.js";
import { bearer, bearerInterceptor, clientFor, codeOf } from "./clients.js";
import { backends, concurrencySkip, createTestClock, registerAndLogin, servicesNamed, startTestPlatform, type TestClock, type TestPlatform, type TestUser } from "./harness.js";

const admin = { username: "purge_admin", email: "purge-admin@grocery.example", password: "beetroot in the basement" };
/** Shorter than the access token lifetime (15 min), so the test can pass it while the user's token stays valid. */
const tombstoneTtlMs = 60_000;

const homeAddress = {
  kind: AddressKind.HOME,
  label: "Home",
  recipientName: "Asha Rao",
  line1: "12 MG Road",
  city: "Bengaluru",
  postalCode: "560001",
  countryCode: "IN",
};
const milk = { productId: "milk", shopId: "shop-1", name: "Milk", unitPrice: { currencyCode: "EUR", amountMinor: 129n }, quantity: 2 };
const bread = { productId: "bread", shopId: "shop-1", name: "Bread", unitPrice: { currencyCode: "EUR", amountMinor: 250n }, quantity: 1 };

/** A user with two carts (three lines, two of them added with a request id) and two addresses. */
interface Holder {
  user: TestUser;
  carts: Client<typeof CartService>;
  addresses: Client<typeof AddressService>;
}

for (const backend of backends) {
  describe(`UserDataService/PurgeUser on ${backend}`, () => {
    let tp: TestPlatform;
    let clock: TestClock;
    let serviceToken: string;
    let adminToken: string;
    let userData: Client<typeof UserDataService>;

    const holderOf = (user: TestUser): Holder => ({
      user,
      carts: clientFor(CartService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]),
      addresses: clientFor(AddressService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]),
    });

    /** 2 carts + 3 lines + 2 request ids + 2 addresses = 9 rows. */
    const fill = async (h: Holder) => {
      const weekly = (await h.carts.createCart({ name: "weekly" })).cart?.id ?? "";
      const party = (await h.carts.createCart({ name: "party" })).cart?.id ?? "";
      await h.carts.addItem({ cartId: weekly, item: milk, requestId: randomUUID() });
      await h.carts.addItem({ cartId: weekly, item: bread, requestId: randomUUID() });
      await h.carts.addItem({ cartId: party, item: milk });
      await h.addresses.createAddress({ address: homeAddress });
      await h.addresses.createAddress({ address: { ...homeAddress, kind: AddressKind.WORK, label: "Office" } });
      return { weekly, party };
    };
    const rowsOf = async (h: Holder) => ({
      carts: (await h.carts.listCarts({})).carts.length,
      lines: (await h.carts.listCarts({})).carts.reduce((n, c) => n + c.items.length, 0),
      addresses: (await h.addresses.listAddresses({})).totalSize,
    });
    const purge = async (userId: string) => Number((await userData.purgeUser({ userId }, bearer(serviceToken))).rowsDeleted);

    before(async () => {
      clock = createTestClock();
      tp = await startTestPlatform({
        backend,
        clock,
        env: {
          ADMIN_USERNAME: admin.username,
          ADMIN_EMAIL: admin.email,
          ADMIN_PASSWORD: admin.password,
          PURGE_TOMBSTONE_TTL: `${tombstoneTtlMs}ms`,
        },
      });
      const auth = clientFor(AuthService, tp.url);
      const users = clientFor(UserService, tp.url);
      adminToken = (await auth.login({ login: admin.username, password: admin.password })).accessToken;
      const created = await users.createServiceAccount({ name: "purge-test-service" }, bearer(adminToken));
      serviceToken = (await auth.issueServiceToken({ clientId: created.serviceAccount?.clientId ?? "", clientSecret: created.clientSecret })).accessToken;
      userData = clientFor(UserDataService, tp.url);
    });
    after(() => tp?.close());

    it("deletes the user's carts, lines, request ids and addresses, counted, once; other users keep theirs", async () => {
      const [gone, kept] = [holderOf(await registerAndLogin(tp.url)), holderOf(await registerAndLogin(tp.url, { role: Role.SHOP_OWNER }))];
      await fill(gone);
      await fill(kept);
      assert.deepEqual(await rowsOf(gone), { carts: 2, lines: 3, addresses: 2 });

      assert.equal(await purge(gone.user.userId), 9);
      assert.deepEqual(await rowsOf(gone), { carts: 0, lines: 0, addresses: 0 });
      assert.deepEqual(await rowsOf(kept), { carts: 2, lines: 3, addresses: 2 });
      // Idempotent: nothing is left, and the repeat succeeds.
      assert.equal(await purge(gone.user.userId), 0);
      // The id is a UUID in any case; an unknown user is not an error.
      assert.equal(await purge(randomUUID().toUpperCase()), 0);
      assert.equal(await purge(kept.user.userId.toUpperCase()), 9);
      assert.deepEqual(await rowsOf(kept), { carts: 0, lines: 0, addresses: 0 });
    });

    it("answers PERMISSION_DENIED to customers, shop owners and admins, UNAUTHENTICATED without a token, and deletes nothing", async () => {
      const h = holderOf(await registerAndLogin(tp.url));
      await fill(h);
      const shopOwner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      for (const token of [h.user.accessToken, shopOwner.accessToken, adminToken]) {
        assert.equal(await codeOf(userData.purgeUser({ userId: h.user.userId }, bearer(token))), Code.PermissionDenied);
      }
      assert.equal(await codeOf(userData.purgeUser({ userId: h.user.userId })), Code.Unauthenticated);
      assert.deepEqual(await rowsOf(h), { carts: 2, lines: 3, addresses: 2 });
      // The user id is a field rule of the schema.
      const err = await userData.purgeUser({ userId: "not-a-uuid" }, bearer(serviceToken)).catch((e: unknown) => ConnectError.from(e));
      assert.ok(err instanceof ConnectError && err.code === Code.InvalidArgument, String(err));
    });

    it("refuses the purged user's writes with PERMISSION_DENIED until the tombstone expires; reads answer empty", async () => {
      const h = holderOf(await registerAndLogin(tp.url));
      const { weekly } = await fill(h);
      const other = holderOf(await registerAndLogin(tp.url));
      assert.equal(await purge(h.user.userId), 9);

      // The token is still valid (15 minutes), but nothing it writes may outlive the purge.
      assert.equal(await codeOf(h.carts.createCart({ name: "again" })), Code.PermissionDenied);
      assert.equal(await codeOf(h.carts.addItem({ cartId: weekly, item: milk, requestId: randomUUID() })), Code.PermissionDenied);
      assert.equal(await codeOf(h.carts.clearCart({ cartId: weekly })), Code.PermissionDenied);
      assert.equal(await codeOf(h.addresses.createAddress({ address: homeAddress })), Code.PermissionDenied);
      assert.deepEqual(await rowsOf(h), { carts: 0, lines: 0, addresses: 0 });
      // Someone else writes as before.
      await other.carts.createCart({ name: "weekly" });
      await other.addresses.createAddress({ address: homeAddress });

      clock.advance(tombstoneTtlMs - 5_000);
      assert.equal(await codeOf(h.carts.createCart({ name: "again" })), Code.PermissionDenied);
      clock.advance(10_000);
      // Past the tombstone (the token, 15 minutes, is not): writes work again, and the expired row is ignored.
      await h.carts.createCart({ name: "again" });
      await h.addresses.createAddress({ address: homeAddress });
      assert.deepEqual(await rowsOf(h), { carts: 1, lines: 0, addresses: 1 });
    });

    it("cart alone and address alone each serve it, purging their own data only", async () => {
      const env = { IDENTITY_JWKS_URL: `${tp.url}/.well-known/jwks.json` };
      const [cartOnly, addressOnly] = await Promise.all([
        startTestPlatform({ backend, services: servicesNamed("cart"), env }),
        startTestPlatform({ backend, services: servicesNamed("address"), env }),
      ]);
      try {
        const user = await registerAndLogin(tp.url);
        const h: Holder = {
          user,
          carts: clientFor(CartService, cartOnly.url, "grpc", [bearerInterceptor(user.accessToken)]),
          addresses: clientFor(AddressService, addressOnly.url, "grpc", [bearerInterceptor(user.accessToken)]),
        };
        await fill(h);
        const purgeAt = async (url: string) =>
          Number((await clientFor(UserDataService, url).purgeUser({ userId: user.userId }, bearer(serviceToken))).rowsDeleted);
        assert.equal(await purgeAt(cartOnly.url), 7);
        assert.deepEqual(await rowsOf(h), { carts: 0, lines: 0, addresses: 2 });
        assert.equal(await purgeAt(addressOnly.url), 2);
        assert.deepEqual(await rowsOf(h), { carts: 0, lines: 0, addresses: 0 });
        assert.equal(await codeOf(h.addresses.createAddress({ address: homeAddress })), Code.PermissionDenied);
      } finally {
        await Promise.all([cartOnly.close(), addressOnly.close()]);
      }
    });

    it("leaves nothing of the user when writes race the purge", { skip: concurrencySkip(backend) }, async () => {
      const h = holderOf(await registerAndLogin(tp.url));
      const { weekly, party } = await fill(h);
      // Writes of every kind keep arriving before, during and just after one purge: each either commits before
      // the purge (and is purged) or meets the tombstone. None may leave a row behind.
      const write = (i: number) => {
        switch (i % 4) {
          case 0:
            return h.carts.createCart({ name: `race-${i}` });
          case 1:
            return h.carts.addItem({ cartId: i % 8 === 1 ? weekly : party, item: { ...milk, productId: `p-${i}` }, requestId: randomUUID() });
          case 2:
            return h.addresses.createAddress({ address: { ...homeAddress, label: `race-${i}` } });
          default:
            return h.carts.clearCart({ cartId: weekly });
        }
      };
      // Each outcome is taken at once (a settled promise), so no rejection waits unhandled while the loop sleeps.
      const outcomes: Promise<Code | "OK">[] = [];
      const send = (i: number) => outcomes.push(write(i).then(() => "OK" as const, (e: unknown) => ConnectError.from(e).code));
      for (let i = 0; i < 8; i++) send(i);
      let purged = false;
      const purging = purge(h.user.userId).finally(() => (purged = true));
      // At most 40 writes in all, so neither the cart nor the address limit (20 each) is reached.
      for (let i = 8; !purged && i < 32; i++) {
        send(i);
        await new Promise((r) => setTimeout(r, 1));
      }
      await purging;
      for (let i = 0; i < 8; i++) send(i);
      const codes = await Promise.all(outcomes);
      assert.deepEqual(codes.filter((c) => c !== "OK" && c !== Code.PermissionDenied && c !== Code.NotFound), []);
      assert.ok(codes.includes(Code.PermissionDenied), "some writes met the tombstone");
      assert.deepEqual(await rowsOf(h), { carts: 0, lines: 0, addresses: 0 });
      assert.equal(await purge(h.user.userId), 0);
    });
  });
}

describe("the default purge tombstone", () => {
  it("outlasts a token identity issued just before the purge, past the verifiers' tolerance, with a minute to spare", () => {
    const tokenLifetimeSeconds = readIdentityConfig({}).accessTokenTtl;
    const outlastMs = (tokenLifetimeSeconds + DEFAULT_CLOCK_TOLERANCE_SECONDS + 60) * 1000;
    assert.ok(readPurgeTombstoneTtlMs({}) >= outlastMs, `tombstone ${readPurgeTombstoneTtlMs({})} ms < ${outlastMs} ms`);
    assert.equal(defaultCartConfig.purgeTombstoneTtlMs, readPurgeTombstoneTtlMs({}));
    assert.equal(readCartConfig({}).purgeTombstoneTtlMs, readPurgeTombstoneTtlMs({}));
    assert.equal(readAddressConfig({}).purgeTombstoneTtlMs, readPurgeTombstoneTtlMs({}));
  });
});
