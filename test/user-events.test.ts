/**
 * Identity's user events reach every service holding user data through the mesh client, in the all-in-one
 * process as `npm start` runs it (over loopback gRPC, with identity's own SERVICE token): a deleted account's
 * carts and addresses go, each destination's delivery is recorded, one destination that is down delays only
 * itself and is visible to administrators until it acknowledges.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import type { Client } from "@connectrpc/connect";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { addressClient, destination, shop } from "../services/address/test/support.js";
import { bearerInterceptor, clientFor } from "./clients.js";
import { backends, registerAndLogin, startTestPlatform, type TestPlatform, type TestUser } from "./harness.js";

const admin = { username: "events_admin", email: "events-admin@grocery.example", password: "parsnips for the pantry" };
const home = { kind: AddressKind.HOME, label: "Home", recipientName: "Ada Obi", line1: "3 Market Street", city: "Lagos", postalCode: "100001", countryCode: "NG" };

/** A port nothing listens on: a destination that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function until<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
    value = await probe();
  }
  return value;
}

for (const backend of backends) {
  describe(`user events in one process on ${backend}`, () => {
    let tp: TestPlatform;
    let adminUsers: Client<typeof UserService>;

    const fill = async (user: TestUser) => {
      const carts = clientFor(CartService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]);
      const addresses = clientFor(AddressService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]);
      const cart = (await carts.createCart({ name: "weekly" })).cart?.id ?? "";
      await carts.addItem({ cartId: cart, item: { productId: "yam", shopId: "shop-1", name: "Yam", unitPrice: { currencyCode: "NGN", amountMinor: 90000n }, quantity: 1 } });
      await addresses.createAddress({ address: home });
    };
    /** Rows of the user's in cart's and address's own tables, read from the database. */
    const stored = async (userId: string) => {
      const db = tp.platform.database.db;
      const [carts] = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from cart.carts where owner_id = ${userId}`));
      const [addresses] = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from address.addresses where owner_id = ${userId}`));
      return { carts: carts?.n ?? -1, addresses: addresses?.n ?? -1 };
    };
    const deliveries = async (userId: string) =>
      [...rowsOf<{ destination: string; status: string; delivered: boolean }>(
        await tp.platform.database.db.execute(sql`
          select d.destination, d.status, d.deliver_time is not null as delivered
          from identity.outbox_deliveries d join identity.outbox o on o.id = d.event_id
          where o.payload->>'user_id' = ${userId} and o.topic = 'user.deleted' order by d.destination`),
      )].map((r) => ({ ...r }));

    before(async () => {
      tp = await startTestPlatform({
        backend,
        env: {
          ADMIN_USERNAME: admin.username,
          ADMIN_EMAIL: admin.email,
          ADMIN_PASSWORD: admin.password,
          // A third holder of user data that is down for the whole test.
          USER_DATA_SERVICES: "cart,address,loyalty",
          LOYALTY_SERVICE_ADDR: `127.0.0.1:${await closedPort()}`,
          EVENT_RETRY_MAX_DELAY: "500ms",
          // Listening on one address that is not 127.0.0.1: the process must call itself there, not on loopback.
          HOST: "127.0.0.2",
        },
      });
      const login = await clientFor(AuthService, tp.url, "grpc").login({ login: admin.username, password: admin.password });
      adminUsers = clientFor(UserService, tp.url, "grpc", [bearerInterceptor(login.accessToken)]);
    });
    after(() => tp.close());

    it("DeleteMe purges the user's carts and addresses through the mesh and records each delivery; a service that is down stays pending, visible to admins", async () => {
      const user = await registerAndLogin(tp.url);
      const other = await registerAndLogin(tp.url);
      await fill(user);
      await fill(other);
      assert.deepEqual(await stored(user.userId), { carts: 1, addresses: 1 });

      await clientFor(UserService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]).deleteMe({ password: user.password });
      await until("the user's rows", () => stored(user.userId), (n) => n.carts === 0 && n.addresses === 0);
      assert.deepEqual(await stored(other.userId), { carts: 1, addresses: 1 }, "another user keeps their data");
      const states = await until("deliveries", () => deliveries(user.userId), (rows) => rows.filter((r) => r.status === "delivered").length === 2);
      assert.deepEqual(states, [
        { destination: "address", status: "delivered", delivered: true },
        { destination: "cart", status: "delivered", delivered: true },
        { destination: "loyalty", status: "pending", delivered: false },
      ]);

      const pending = await until(
        "a failed attempt to loyalty",
        async () => (await adminUsers.listPendingDeliveries({})).deliveries.filter((d) => d.userId === user.userId),
        (rows) => rows.length === 1 && rows[0]!.attempts >= 2 && rows[0]!.lastError !== "",
      );
      assert.equal(pending[0]?.destination, "loyalty");
      assert.equal(pending[0]?.topic, "user.deleted");
      assert.ok((pending[0]?.nextAttemptTime?.seconds ?? 0n) > 0n);
    });

    it("disabling a shop owner hides their shops from FindNearbyShops, enabling lists them again, losing SHOP_OWNER hides them", async () => {
      const centre = { latitude: 51.5, longitude: -0.12 };
      const owner = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const shopId = (await addressClient(tp.url, owner.accessToken).createAddress({ address: shop("Corner Shop", destination(centre, 1, 45)) })).address?.id ?? "";
      const customer = addressClient(tp.url, (await registerAndLogin(tp.url)).accessToken);
      const listed = async () => (await customer.findNearbyShops({ location: centre, radiusKm: 5 })).shops.map((s) => s.addressId);
      assert.deepEqual(await listed(), [shopId]);

      await adminUsers.setUserDisabled({ userId: owner.userId, disabled: true });
      await until("hidden after disabling", listed, (ids) => ids.length === 0);
      await adminUsers.setUserDisabled({ userId: owner.userId, disabled: false });
      await until("listed after enabling", listed, (ids) => ids.length === 1);
      await adminUsers.updateUserRoles({ userId: owner.userId, roles: [Role.CUSTOMER] });
      await until("hidden after losing SHOP_OWNER", listed, (ids) => ids.length === 0);
      await adminUsers.updateUserRoles({ userId: owner.userId, roles: [Role.CUSTOMER, Role.SHOP_OWNER] });
      await until("listed with SHOP_OWNER back", listed, (ids) => ids.length === 1);
    });

    it("pages pending deliveries with tokens bound to the list, and refuses them to non-admins", async () => {
      for (let i = 0; i < 3; i++) {
        const user = await registerAndLogin(tp.url);
        await clientFor(UserService, tp.url, "grpc", [bearerInterceptor(user.accessToken)]).deleteMe({ password: user.password });
      }
      const all = (await adminUsers.listPendingDeliveries({ pageSize: 100 })).deliveries;
      assert.ok(all.length >= 3);
      const seen: string[] = [];
      let token = "";
      do {
        const page = await adminUsers.listPendingDeliveries({ pageSize: 2, pageToken: token });
        assert.ok(page.deliveries.length <= 2);
        seen.push(...page.deliveries.map((d) => `${d.eventId}/${d.destination}`));
        token = page.nextPageToken;
      } while (token !== "");
      // Deliveries to cart and address may leave the list between pages; those to loyalty (down) never do, so
      // each appears in the pages, once, in the order of the full list.
      assert.equal(new Set(seen).size, seen.length);
      const stuck = (keys: string[]) => keys.filter((k) => k.endsWith("/loyalty"));
      assert.deepEqual(stuck(seen), stuck(all.map((d) => `${d.eventId}/${d.destination}`)));

      const customer = await registerAndLogin(tp.url);
      await assert.rejects(clientFor(UserService, tp.url, "grpc", [bearerInterceptor(customer.accessToken)]).listPendingDeliveries({}), { code: 7 });
    });
  });
}
