/**
 * `npm run start:mesh` as a user runs it: six processes on PostgreSQL come up, a register → login → cart →
 * address flow is served through each process's own port, deleting the account reaches both cart replicas'
 * and both address replicas' data through the mesh, and Ctrl-C stops everything.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { openDatabase, rowsOf, type Database } from "@local-e-grocery/platform/db.js";
import { bearerInterceptor, clientFor } from "./clients.js";
import { cheapPasswordHashing, emptyDatabase, uniqueName, type DataHandle } from "./harness.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const postgres = process.env["TEST_DATABASE_URL"] !== undefined;

/** A base port whose next six ports are free now. */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const servers = [];
    try {
      for (let p = base + 1; p <= base + 6; p++) {
        const server = createServer();
        await new Promise<void>((resolve, reject) => server.once("error", reject).listen(p, "127.0.0.1", resolve));
        servers.push(server);
      }
      return base;
    } catch {
      // Taken: try another range.
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error("no six free ports in a row");
}

describe("npm run start:mesh", { skip: !postgres && "needs PostgreSQL (TEST_DATABASE_URL)" }, () => {
  let data: DataHandle;
  let mesh: ChildProcess;
  let exited: Promise<number | null>;
  let out = "";
  let base = 0;
  let dataDir = "";
  let db: Database;
  const url = (offset: number) => `http://127.0.0.1:${base + offset}`;

  before(async () => {
    data = await emptyDatabase("postgres");
    base = await freeRange();
    dataDir = await mkdtemp(join(tmpdir(), "grocery-mesh-"));
    mesh = spawn(process.execPath, ["--import", "tsx", "scripts/start-mesh.ts"], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", ...data.env, ...cheapPasswordHashing, MESH_BASE_PORT: String(base), DATA_DIR: dataDir, LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    exited = new Promise((r) => mesh.once("exit", (code) => r(code)));
    mesh.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    mesh.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 90_000;
    while (!out.includes("Ctrl-C stops every process.")) {
      if (mesh.exitCode !== null || Date.now() > deadline) throw new Error(`start:mesh did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    db = await openDatabase({ url: data.env["DATABASE_URL"], dataDir: "/tmp" });
  });
  after(async () => {
    if (mesh.exitCode === null) mesh.kill("SIGKILL");
    await db?.close(0);
    await data?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("prints every process's address, serves a register → login → cart → address flow on each port, purges through the mesh and stops on Ctrl-C", async () => {
    for (const [offset, name] of ["identity-1", "identity-2", "cart-1", "cart-2", "address-1", "address-2"].entries()) {
      assert.match(out, new RegExp(`${name}\\s+http://127\\.0\\.0\\.1:${base + offset + 1}`));
    }
    const username = uniqueName();
    const password = "leeks and lentils";
    await clientFor(AuthService, url(1), "grpc").register({ username, email: `${username}@example.com`, password });
    const login = await clientFor(AuthService, url(2), "grpc").login({ login: username, password });
    const token = [bearerInterceptor(login.accessToken)];
    const userId = login.user?.id ?? "";
    for (const port of [3, 4]) {
      const carts = clientFor(CartService, url(port), "grpc", token);
      await carts.createCart({ name: `list on ${port}` });
    }
    assert.equal((await clientFor(CartService, url(4), "connect", token).listCarts({})).carts.length, 2);
    for (const port of [5, 6]) {
      await clientFor(AddressService, url(port), "grpc", token).createAddress({
        address: { kind: AddressKind.HOME, label: `Home ${port}`, recipientName: "Ada", line1: "1 High Street", city: "London", postalCode: "SW1A 1AA", countryCode: "GB" },
      });
    }
    const count = async () => {
      const [c] = rowsOf<{ n: number }>(await db.db.execute(sql`select count(*)::int as n from cart.carts where owner_id = ${userId}`));
      const [a] = rowsOf<{ n: number }>(await db.db.execute(sql`select count(*)::int as n from address.addresses where owner_id = ${userId}`));
      return { carts: c?.n, addresses: a?.n };
    };
    assert.deepEqual(await count(), { carts: 2, addresses: 2 });

    await clientFor(UserService, url(1), "grpc", token).deleteMe({ password });
    const deadline = Date.now() + 15_000;
    while (JSON.stringify(await count()) !== JSON.stringify({ carts: 0, addresses: 0 })) {
      if (Date.now() > deadline) throw new Error(`still stored: ${JSON.stringify(await count())}\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    mesh.kill("SIGINT");
    const stoppedIn = Date.now();
    assert.equal(await exited, 0);
    assert.ok(Date.now() - stoppedIn < 20_000);
    for (let port = 1; port <= 6; port++) {
      await assert.rejects(fetch(`${url(port)}/healthz`), `port ${base + port} is closed`);
    }
  });
});
