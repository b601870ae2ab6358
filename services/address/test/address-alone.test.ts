/**
 * The address service alone (`npm run start:address`): its own process and database, verifying tokens through
 * identity's published keys, and keeping its data across a restart.
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
import { Role } from "../../../gen/grocery/auth/v1/auth_pb.js";
import { codeOf } from "../../../test/clients.js";
import { backends, registerAndLogin, startTestPlatform, type Backend, type TestPlatform } from "../../../test/harness.js";
import { identityService } from "../../identity/src/service.js";
import { addressClient, home, shop } from "./support.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** Runs services/address/src/main.ts as its own process; resolves with its URL once it logs "ready". */
async function startAddressProcess(env: Record<string, string>): Promise<{ url: string; stop(): Promise<number | null> }> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "services/address/src/main.ts"], {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", HEALTH_PROBE_MS: "200", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "ready" && typeof entry.port === "number") resolve(entry.port);
      } catch {
        // Not a log line.
      }
    });
    void exited.then((code) => reject(new Error(`address process exited with ${code}: ${stderr}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** A database for the standalone process: a PGlite directory, or a new PostgreSQL database. */
async function addressDatabase(backend: Backend): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  if (backend === "pglite") {
    const dir = await mkdtemp(join(tmpdir(), "address-alone-"));
    return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const adminUrl = process.env["TEST_DATABASE_URL"] ?? "";
  const name = `address_alone_${process.pid}_${randomBytes(4).toString("hex")}`;
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
  describe(`the address service alone on ${backend}`, () => {
    let identity: TestPlatform;
    let db: Awaited<ReturnType<typeof addressDatabase>>;

    before(async () => {
      identity = await startTestPlatform({ backend, services: [identityService] });
      db = await addressDatabase(backend);
    });
    after(async () => {
      await identity?.close();
      await db?.drop();
    });

    it("verifies identity's tokens through its JWKS and keeps addresses across a process restart", async () => {
      const env = { ...db.env, IDENTITY_JWKS_URL: `${identity.url}/.well-known/jwks.json` };
      const customer = await registerAndLogin(identity.url);
      const owner = await registerAndLogin(identity.url, { role: Role.SHOP_OWNER });
      const at = { latitude: 12.9784, longitude: 77.6408 };
      let proc = await startAddressProcess(env);
      let mine;
      let theirs;
      try {
        mine = (await addressClient(proc.url, customer.accessToken).createAddress({ address: home() })).address!;
        theirs = (await addressClient(proc.url, owner.accessToken).createAddress({ address: shop("Ravi Fresh", at) })).address!;
        assert.equal(await codeOf(addressClient(proc.url, "forged.token.value").getAddress({ addressId: mine.id })), Code.Unauthenticated);
      } finally {
        assert.equal(await proc.stop(), 0, "graceful stop exits 0");
      }
      proc = await startAddressProcess(env);
      try {
        const client = addressClient(proc.url, customer.accessToken, "connect");
        assert.deepEqual((await client.getAddress({ addressId: mine.id })).address, mine);
        const nearby = await client.findNearbyShops({ location: home().location, radiusKm: 10 });
        assert.deepEqual(nearby.shops.map((s) => s.addressId), [theirs.id]);
        assert.equal(await codeOf(client.getAddress({ addressId: theirs.id })), Code.NotFound);
      } finally {
        assert.equal(await proc.stop(), 0);
      }
    });

    it("refuses to start on a bad limit, naming the variable (exit 78)", async () => {
      const env = { ...db.env, IDENTITY_JWKS_URL: "http://127.0.0.1:1/jwks", ADDRESS_MAX_PER_OWNER: "lots" };
      await assert.rejects(startAddressProcess(env), /exited with 78.*ADDRESS_MAX_PER_OWNER/s);
    });
  });
}
