/**
 * Persistence: carts survive a restart of the all-in-one process, and of the cart service running alone
 * (`npm run start:cart`) against identity's published keys.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { identityService } from "../../identity/src/service.js";
import { backends, registerAndLogin, startTestPlatform, type Backend, type TestPlatform } from "../../../test/harness.js";
import { Clients, item, newRequestId, rejectsWith, startCartPlatform } from "./helpers.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** Runs services/cart/src/main.ts as its own process and resolves with its URL once it logs "ready". */
async function startCartProcess(env: Record<string, string>): Promise<{ url: string; stop(): Promise<number | null> }> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "services/cart/src/main.ts"], {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", HEALTH_PROBE_MS: "200", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "ready" && typeof entry.port === "number") resolve(entry.port);
      } catch {
        // Not a log line.
      }
    });
    void exited.then((code) => reject(new Error(`cart process exited with ${code}: ${stderr}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** A database for the standalone cart process: a PGlite directory, or a new PostgreSQL database. */
async function cartDatabase(backend: Backend): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  if (backend === "pglite") {
    const dir = await mkdtemp(join(tmpdir(), "cart-alone-"));
    return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const adminUrl = process.env["TEST_DATABASE_URL"] ?? "";
  const name = `cart_alone_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    async drop() {
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

for (const backend of backends) {
  describe(`CartService persistence on ${backend}`, () => {
    const clients = new Clients();
    after(() => clients.close());

    it("carts survive a restart of the all-in-one process", async () => {
      let tp: TestPlatform = await startCartPlatform(backend);
      try {
        const user = await registerAndLogin(tp.url);
        let cart = clients.cart(tp.url, user.accessToken);
        const { cart: weekly } = await cart.createCart({ name: "weekly" });
        assert.ok(weekly);
        await cart.createCart({ name: "party" });
        const requestId = newRequestId();
        await cart.addItem({ cartId: weekly.id, item: item({ quantity: 2 }), requestId });
        await cart.addItem({ cartId: weekly.id, item: item({ productId: "bread", name: "Bread", amountMinor: 350n }) });
        const before = await cart.listCarts({});

        tp = await tp.restart();
        cart = clients.cart(tp.url, user.accessToken);
        assert.deepEqual(await cart.listCarts({}), before);
        // Versions, names and request ids carry on where they were.
        const again = (await cart.addItem({ cartId: weekly.id, item: item({ quantity: 2 }), requestId })).cart;
        assert.equal(again?.version, 2n);
        assert.equal((await cart.addItem({ cartId: weekly.id, item: item() })).cart?.version, 4n);
        await rejectsWith(cart.createCart({ name: "Party" }), Code.AlreadyExists);
      } finally {
        await tp.close();
      }
    });

    describe("the cart service alone", () => {
      let identity: TestPlatform;
      let db: Awaited<ReturnType<typeof cartDatabase>>;

      before(async () => {
        identity = await startTestPlatform({ backend, services: [identityService] });
        db = await cartDatabase(backend);
      });
      after(async () => {
        await identity?.close();
        await db?.drop();
      });

      it("verifies identity's tokens through its JWKS and keeps carts across a process restart", async () => {
        const env = { ...db.env, IDENTITY_JWKS_URL: `${identity.url}/.well-known/jwks.json` };
        const user = await registerAndLogin(identity.url);
        let proc = await startCartProcess(env);
        let id: string;
        let before;
        try {
          const cart = clients.cart(proc.url, user.accessToken);
          const { cart: created } = await cart.createCart({ name: "weekly" });
          assert.ok(created);
          id = created.id;
          before = (await cart.addItem({ cartId: id, item: item({ quantity: 3 }) })).cart;
          await rejectsWith(clients.cart(proc.url, "forged.token.value").getCart({ cartId: id }), Code.Unauthenticated);
        } finally {
          assert.equal(await proc.stop(), 0, "graceful stop exits 0");
        }
        proc = await startCartProcess(env);
        try {
          const cart = clients.cart(proc.url, user.accessToken, "connect");
          assert.deepEqual((await cart.getCart({ cartId: id })).cart, before);
        } finally {
          assert.equal(await proc.stop(), 0);
        }
      });

      it("refuses to start on a bad limit, naming the variable (exit 78)", async () => {
        await assert.rejects(startCartProcess({ ...db.env, IDENTITY_JWKS_URL: "http://127.0.0.1:1/jwks", CART_MAX_CARTS: "lots" }), /exited with 78.*CART_MAX_CARTS/s);
      });
    });
  });
}
