/**
 * The mesh as separate processes on PostgreSQL, started as an operator starts them: identity delivers account
 * deletions to cart and address over balanced, authenticated gRPC, across restarts of either side, never twice
 * at once from two identity replicas; while one of two cart replicas is down, every call to the cart list succeeds
 * on its own (the balancer leaves the dead replica out), and the replica is used again once back.
 */
import assert from "node:assert/strict";
import { connect, createServer } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { openDatabase, rowsOf, type Database } from "@local-e-grocery/platform/db.js";
import { createServiceClient, readServiceTarget } from "@local-e-grocery/platform/service-client.js";
import { bearerInterceptor, clientFor } from "./clients.js";
import { emptyDatabase, registerAndLogin, type DataHandle, type TestUser } from "./harness.js";
import { startServiceProcess, type ServiceProcess } from "./service-process.js";

const postgres = process.env["TEST_DATABASE_URL"] !== undefined;
const admin = { username: "mesh_admin", email: "mesh-admin@grocery.example", password: "okra in the oven" };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Calls of `method` a process answered OK, from its own call log. */
const served = (p: ServiceProcess, method: string) => p.logs.filter((l) => l.msg === "rpc" && l["method"] === method && l["code"] === "ok").length;
const purgesServed = (p: ServiceProcess) => served(p, "PurgeUser");
const checksServed = (p: ServiceProcess) => served(p, "Check");

/** Whether a connection to `port` on loopback is refused (nothing listens there any more). */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(false)));
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });

describe("the mesh as separate processes", { skip: !postgres && "needs PostgreSQL (TEST_DATABASE_URL)" }, () => {
  let data: DataHandle;
  let db: Database;
  const ports = { identity: [0, 0], cart: [0, 0], address: [0] };
  const running = new Set<ServiceProcess>();
  let common: Record<string, string>;

  const cartList = () => ports.cart.map((p) => `127.0.0.1:${p}`).join(",");
  const start = async (service: "identity" | "cart" | "address", port: number, extra: Record<string, string> = {}) => {
    const own: Record<string, string> =
      service === "identity"
        ? {
            CART_SERVICE_ADDR: cartList(),
            ADDRESS_SERVICE_ADDR: ports.address.map((p) => `127.0.0.1:${p}`).join(","),
            ADMIN_USERNAME: admin.username,
            ADMIN_EMAIL: admin.email,
            ADMIN_PASSWORD: admin.password,
          }
        : { IDENTITY_JWKS_URL: `http://127.0.0.1:${ports.identity[0]}/.well-known/jwks.json` };
    const p = await startServiceProcess(`services/${service}/src/main.ts`, { ...common, ...own, ...extra, PORT: String(port) });
    running.add(p);
    return p;
  };
  const stop = async (p: ServiceProcess, how: "stop" | "kill" = "stop") => {
    await (how === "kill" ? p.kill() : p.stop());
    running.delete(p);
  };

  const stored = async (userId: string) => {
    const [c] = rowsOf<{ n: number }>(await db.db.execute(sql`select count(*)::int as n from cart.carts where owner_id = ${userId}`));
    const [a] = rowsOf<{ n: number }>(await db.db.execute(sql`select count(*)::int as n from address.addresses where owner_id = ${userId}`));
    return (c?.n ?? 0) + (a?.n ?? 0);
  };
  const undelivered = async (userId: string) => {
    const rows = rowsOf<{ destination: string }>(
      await db.db.execute(sql`
        select d.destination from identity.outbox_deliveries d join identity.outbox o on o.id = d.event_id
        where o.payload->>'user_id' = ${userId} and d.status <> 'delivered' order by 1`),
    );
    return rows.map((r) => r.destination);
  };
  const holder = async (identityUrl: string, cartUrl: string, addressUrl: string): Promise<TestUser> => {
    const user = await registerAndLogin(identityUrl);
    const token = [bearerInterceptor(user.accessToken)];
    await clientFor(CartService, cartUrl, "grpc", token).createCart({ name: "weekly" });
    await clientFor(AddressService, addressUrl, "grpc", token).createAddress({
      address: { kind: AddressKind.HOME, label: "Home", recipientName: "Ama", line1: "5 Ring Road", city: "Accra", postalCode: "00233", countryCode: "GH" },
    });
    return user;
  };
  const deleteMe = (identityUrl: string, user: TestUser) => clientFor(UserService, identityUrl, "grpc", [bearerInterceptor(user.accessToken)]).deleteMe({ password: user.password });

  // A test that failed half-way leaves its processes: the next one starts on the same ports.
  beforeEach(() => Promise.all([...running].map((p) => stop(p, "kill"))));

  before(async () => {
    data = await emptyDatabase("postgres");
    db = await openDatabase({ url: data.env["DATABASE_URL"], dataDir: "/tmp" });
    for (const list of Object.values(ports)) for (let i = 0; i < list.length; i++) list[i] = await freePort();
    common = { ...data.env, EVENT_RETRY_MAX_DELAY: "500ms", EVENT_DISPATCH_INTERVAL_MS: "100", SERVICE_CALL_TIMEOUT: "2s" };
  });
  after(async () => {
    await Promise.all([...running].map((p) => p.kill()));
    await db?.close(0);
    await data?.drop();
  });

  it("a user deleted while cart is stopped and identity restarted meanwhile is purged from cart once it is back; the outbox records every destination", async () => {
    const identity = await start("identity", ports.identity[0]!);
    const cart = await start("cart", ports.cart[0]!);
    const address = await start("address", ports.address[0]!);
    // Identity lists both cart ports; only the first serves in this test.
    const user = await holder(identity.url, cart.url, address.url);
    assert.equal(await stored(user.userId), 2);

    await stop(cart);
    await deleteMe(identity.url, user);
    await until("address purged while cart is down", async () => (await undelivered(user.userId)).join() === "cart");
    const pending = await clientFor(UserService, identity.url, "grpc", [bearerInterceptor((await clientFor(AuthService, identity.url).login({ login: admin.username, password: admin.password })).accessToken)]).listPendingDeliveries({});
    assert.deepEqual(
      pending.deliveries.filter((d) => d.userId === user.userId).map((d) => d.destination),
      ["cart"],
    );

    // Identity goes down mid-way (killed: no shutdown code runs) and comes back; then cart comes back.
    await stop(identity, "kill");
    const identityAgain = await start("identity", ports.identity[0]!);
    const cartAgain = await start("cart", ports.cart[0]!);
    await until("cart purged after both restarts", async () => (await stored(user.userId)) === 0 && (await undelivered(user.userId)).length === 0);
    // Once every destination acknowledged, the event itself is delivered (and so, later, pruned).
    const [event] = rowsOf<{ status: string; delivered: boolean }>(
      await db.db.execute(sql`select status, deliver_time is not null as delivered from identity.outbox where topic = 'user.deleted' and payload->>'user_id' = ${user.userId}`),
    );
    assert.deepEqual({ ...event }, { status: "delivered", delivered: true });
    assert.equal(purgesServed(cartAgain), 1);
    assert.equal(purgesServed(address), 1);
    await Promise.all([stop(identityAgain), stop(cartAgain), stop(address)]);
  });

  it("two identity replicas deliver each deletion once, spread over two cart replicas; with one cart replica killed every call still succeeds, and it gets calls again once back", async () => {
    const identities = [await start("identity", ports.identity[0]!), await start("identity", ports.identity[1]!)];
    const carts = [await start("cart", ports.cart[0]!), await start("cart", ports.cart[1]!)];
    const address = await start("address", ports.address[0]!);

    const users: TestUser[] = [];
    for (let i = 0; i < 24; i++) users.push(await holder(identities[i % 2]!.url, carts[i % 2]!.url, address.url));
    await Promise.all(users.map((u, i) => deleteMe(identities[i % 2]!.url, u)));
    await until("every deletion delivered", async () => {
      for (const u of users) if ((await stored(u.userId)) !== 0 || (await undelivered(u.userId)).length !== 0) return false;
      return true;
    });
    // Both identity replicas ran their dispatchers the whole time; each purge went out exactly once.
    assert.equal(purgesServed(carts[0]!) + purgesServed(carts[1]!), users.length);
    assert.equal(purgesServed(address), users.length);
    assert.ok(purgesServed(carts[0]!) > 0 && purgesServed(carts[1]!) > 0, `round robin reached both cart replicas: ${purgesServed(carts[0]!)} / ${purgesServed(carts[1]!)}`);

    // A mesh client as identity holds one (service-client.ts, the cart list), connected to both replicas before
    // one is killed. Health.Check has no idempotency level, so the client never retries it: each call after the
    // kill succeeds on its own only if the balancer no longer picks the dead replica.
    const probe = createServiceClient(Health, { target: readServiceTarget({ CART_SERVICE_ADDR: cartList() }, "CART_SERVICE_ADDR")!, deadlineMs: 2000 });
    try {
      await until("the probe client reaches both cart replicas", async () => {
        await probe.client.check({});
        return checksServed(carts[0]!) > 0 && checksServed(carts[1]!) > 0;
      });
      const logsBefore = identities.map((p) => p.logs.length);
      await stop(carts[1]!, "kill");
      // A call racing the kill may still go out on a connection being closed (what retries of idempotent calls
      // are for). The kernel closed the replica's connections before its exit was reported; a refused connection
      // attempt takes this process's event loop round at least once more, so the client has read their end.
      await until("the killed replica's port refuses connections", () => refused(ports.cart[1]!));
      for (let i = 0; i < 20; i++) assert.equal((await probe.client.check({})).status, ServingStatus.SERVING, `call ${i + 1} after the kill`);

      const survivor = purgesServed(carts[0]!);
      const more: TestUser[] = [];
      for (let i = 0; i < 6; i++) more.push(await holder(identities[0]!.url, carts[0]!.url, address.url));
      for (const u of more) await deleteMe(identities[0]!.url, u);
      await until("deliveries with one cart replica down", async () => {
        for (const u of more) if ((await undelivered(u.userId)).length !== 0) return false;
        return true;
      });
      assert.equal(purgesServed(carts[0]!) - survivor, more.length, "the live replica took every call");
      // Delivered is not enough: the outbox would get there by its own retries even if every first attempt went
      // to the dead replica. No attempt of either identity replica failed.
      const failed = identities.flatMap((p, i) => p.logs.slice(logsBefore[i]).filter((l) => l.msg?.startsWith("event delivery failed")));
      assert.deepEqual(failed, [], "an event delivery failed while one cart replica was down");
    } finally {
      probe.close();
    }

    const back = await start("cart", ports.cart[1]!);
    const again: TestUser[] = [];
    for (let j = 0; j < 12; j++) again.push(await holder(identities[0]!.url, carts[0]!.url, address.url));
    // Given time to reconnect (grpc-js backs off on a refused connection), the replica that came back is used.
    await new Promise((r) => setTimeout(r, 1500));
    for (const u of again) await deleteMe(identities[0]!.url, u);
    await until("deliveries with both replicas", async () => {
      for (const u of again) if ((await undelivered(u.userId)).length !== 0) return false;
      return true;
    });
    assert.ok(purgesServed(back) > 0, "the restarted replica receives calls again");
  });
});
