import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { freePort, platformReady, spawnServer, type Server } from "./processes.js";

export type ServiceName = "identity" | "cart" | "address";

export interface BenchPlatform {
  readonly ports: Record<ServiceName, number>;
  readonly servers: Record<ServiceName, Server>;
  readonly urls: Record<ServiceName, string>;
  /** The first administrator identity creates at start-up. */
  readonly admin: { username: string; email: string; password: string };
}

export interface BenchPlatformOptions {
  databaseUrl: string;
  /** The production build (scripts/build.ts output): services run from it with plain node, as the image runs them. */
  compiledDir: string;
  root: string;
  workDir: string;
  /** `taskset -c` list for the servers; undefined leaves them unpinned. */
  cpus: string | undefined;
  /** Where each started server's stop is registered, so a failed run still stops it. */
  cleanups: (() => Promise<void>)[];
}

/**
 * Starts identity, cart and address as separate processes on one PostgreSQL database, wired to each other like
 * `npm run start:mesh` does: identity first and alone (it migrates its schema and makes the signing key the
 * others verify with), then cart and address together.
 */
export async function startBenchPlatform(o: BenchPlatformOptions): Promise<BenchPlatform> {
  const admin = { username: "benchadmin", email: "benchadmin@example.com", password: `Adm1n-${randomUUID()}` };
  const ports: Record<ServiceName, number> = { identity: await freePort(), cart: await freePort(), address: await freePort() };
  const envOf = (svc: ServiceName, dataDir: string): Record<string, string> => {
    const env: Record<string, string> = {
      PATH: process.env["PATH"] ?? "",
      PORT: String(ports[svc]),
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      DATABASE_URL: o.databaseUrl,
      DATA_DIR: dataDir,
      // Seeding registers more accounts from one address than the default hourly allowance, and a full run
      // outlasts the 15-minute access token: both are settings of the benchmark, not of the paths it measures.
      REGISTER_IP_MAX_ATTEMPTS: "100000",
      ACCESS_TOKEN_TTL: "7200",
    };
    if (svc === "identity") {
      Object.assign(env, {
        CART_SERVICE_ADDR: `127.0.0.1:${ports.cart}`,
        ADDRESS_SERVICE_ADDR: `127.0.0.1:${ports.address}`,
        ADMIN_USERNAME: admin.username,
        ADMIN_EMAIL: admin.email,
        ADMIN_PASSWORD: admin.password,
      });
    } else {
      env["IDENTITY_JWKS_URL"] = `http://127.0.0.1:${ports.identity}/.well-known/jwks.json`;
      env["IDENTITY_SERVICE_ADDR"] = `127.0.0.1:${ports.identity}`;
    }
    // CreateAddress runs far more calls than the 20 addresses one owner may keep; the bench deletes them between
    // runs, and lets each owner hold up to the schema's 1000 meanwhile.
    if (svc === "address") env["ADDRESS_MAX_PER_OWNER"] = "1000";
    return env;
  };
  const nodeArgs = (process.env["BENCH_SERVER_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
  const servers: Partial<Record<ServiceName, Server>> = {};
  const start = async (svc: ServiceName) => {
    const dataDir = join(o.workDir, `data-${svc}`);
    await mkdir(dataDir, { recursive: true });
    const entry = join(o.compiledDir, "services", svc, "src", "main.js");
    const s = await spawnServer({ name: svc, args: [...nodeArgs, entry], compiled: true, env: envOf(svc, dataDir), cwd: o.root, cpus: o.cpus, workDir: o.workDir, ready: platformReady });
    servers[svc] = s;
    o.cleanups.push(() => s.stop());
  };
  await start("identity");
  await Promise.all([start("cart"), start("address")]);
  const all = servers as Record<ServiceName, Server>;
  return { ports, servers: all, urls: { identity: all.identity.url, cart: all.cart.url, address: all.address.url }, admin };
}

/**
 * Creates a fresh database `<prefix>_<timestamp>_<pid>` on the server of `adminUrl`, registers its drop (forced,
 * so lingering service connections do not block it) in `cleanups`, and returns its name and URL.
 */
export async function createBenchDatabase(adminUrl: string, prefix: string, cleanups: (() => Promise<void>)[]): Promise<{ name: string; url: URL }> {
  const name = `${prefix}_${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}_${process.pid}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  cleanups.push(async () => {
    const dropper = postgres(adminUrl, { max: 1, onnotice: () => {} });
    try {
      await dropper.unsafe(`drop database if exists ${name} with (force)`);
    } finally {
      await dropper.end();
    }
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url };
}
