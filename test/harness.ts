/**
 * Starts the real platform for integration tests: real sockets, and a real database — a PGlite copy of a
 * migrated template, or a fresh PostgreSQL database when TEST_DATABASE_URL is set.
 */
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { allServices } from "../services/all-services.js";
import { migrate, openDatabase, type Database } from "@local-e-grocery/platform/db.js";
import { createLogger } from "@local-e-grocery/platform/logger.js";
import { buildPlatform, readPlatformConfig, type Platform } from "@local-e-grocery/platform/platform.js";
import type { ServiceDefinition } from "@local-e-grocery/platform/service-module.js";

export type Backend = "pglite" | "postgres";

/**
 * Test accounts cost a 64 KiB, one-pass argon2id hash instead of production's 19 MiB, two passes: the suites
 * create thousands. One identity test proves an unconfigured process uses the production cost.
 */
export const cheapPasswordHashing = { PASSWORD_HASH_MEMORY_KIB: "64", PASSWORD_HASH_ITERATIONS: "1" } as const;

/**
 * The skip reason for a concurrency test on `backend`: PGlite runs one transaction at a time, so a race there
 * proves nothing; races are proven on PostgreSQL, which CI always has.
 */
export function concurrencySkip(backend: Backend): string | false {
  return backend === "pglite" && "PGlite runs one transaction at a time: races are proven on PostgreSQL";
}

/** PGlite always; PostgreSQL too when TEST_DATABASE_URL names a server (CI sets it). */
export const backends: readonly Backend[] = process.env["TEST_DATABASE_URL"] ? ["pglite", "postgres"] : ["pglite"];

const root = fileURLToPath(new URL("..", import.meta.url));

/** A clock that runs with real time plus an offset tests can move forward. */
export interface TestClock {
  (): number;
  advance(ms: number): void;
}

export function createTestClock(): TestClock {
  let offset = 0;
  const clock = (() => Date.now() + offset) as TestClock;
  clock.advance = (ms) => {
    offset += ms;
  };
  return clock;
}

/**
 * The named services out of the platform's wiring, in start-up order. A service's own tests that need another
 * service running (identity, to sign tokens) get it here, since services/<a>/ may not import services/<b>/.
 */
export function servicesNamed(...names: string[]): ServiceDefinition[] {
  for (const name of names) {
    if (!allServices.some((s) => s.name === name)) throw new Error(`no service named ${name} in services/all-services.ts`);
  }
  return allServices.filter((s) => names.includes(s.name));
}

export interface TestPlatformOptions {
  backend: Backend;
  /** Extra environment for the platform and its services (PORT, LOG_LEVEL… have test defaults). */
  env?: Record<string, string>;
  clock?: TestClock;
  services?: readonly ServiceDefinition[];
}

export interface TestPlatform {
  readonly url: string;
  readonly port: number;
  readonly backend: Backend;
  readonly clock: TestClock;
  readonly platform: Platform;
  /** Stops the server (graceful) but keeps the data; `restart()` serves the same data again. */
  stop(): Promise<void>;
  /** Stops the platform if running and starts a new one on the same data. */
  restart(): Promise<TestPlatform>;
  /** Stops the platform and deletes its data. */
  close(): Promise<void>;
}

export async function startTestPlatform(options: TestPlatformOptions): Promise<TestPlatform> {
  const clock = options.clock ?? createTestClock();
  const services = options.services ?? allServices;
  const data = options.backend === "pglite" ? await pgliteCopy(services) : await freshPostgresDatabase();
  try {
    return await launch({ ...options, clock, services }, data);
  } catch (e) {
    await data.drop();
    throw e;
  }
}

function userDataServicesAmong(services: readonly ServiceDefinition[]): string {
  const names = services.map((s) => s.name).filter((n) => n === "cart" || n === "address");
  return names.length > 0 ? names.join(",") : "none";
}

/** Where a platform keeps its data: the environment that points at it, and how to delete it. */
export interface DataHandle {
  env: Record<string, string>;
  drop(): Promise<void>;
}

/**
 * An empty database for a process that migrates it itself: a new PGlite directory, or a new PostgreSQL
 * database on the TEST_DATABASE_URL server.
 */
export async function emptyDatabase(backend: Backend): Promise<DataHandle> {
  if (backend === "postgres") return freshPostgresDatabase();
  const dir = await mkdtemp(join(tmpdir(), "grocery-test-"));
  return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
}

async function launch(options: TestPlatformOptions & { clock: TestClock; services: readonly ServiceDefinition[] }, data: DataHandle): Promise<TestPlatform> {
  const env = {
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env["TEST_LOG_LEVEL"] ?? "silent",
    HEALTH_PROBE_MS: "200",
    SHUTDOWN_GRACE: "2s",
    ...cheapPasswordHashing,
    // Identity delivers user events to the services holding user data that run beside it (over loopback);
    // a test of identity with fewer services names the others itself.
    USER_DATA_SERVICES: userDataServicesAmong(options.services),
    ...data.env,
    ...options.env,
  };
  const config = readPlatformConfig(env);
  const platform = await buildPlatform(config, options.services, { env, clock: options.clock, logger: createLogger({ level: config.logLevel }) });
  // platform.close() is idempotent and returns the one shutdown in progress, so a second stop() (close() after
  // stop(), say) waits for it to end instead of dropping the data under a platform still shutting down.
  const stop = () => platform.close();
  return {
    url: platform.url,
    port: platform.port,
    backend: options.backend,
    clock: options.clock,
    platform,
    stop,
    async restart() {
      await stop();
      return launch(options, data);
    },
    async close() {
      await stop();
      await data.drop();
    },
  };
}

/** Hash of every migration, so the PGlite template is rebuilt when a migration changes. */
async function migrationsHash(services: readonly ServiceDefinition[]): Promise<string> {
  const h = createHash("sha256");
  for (const s of services) {
    h.update(s.name);
    for (const f of (await readdir(s.migrationsFolder)).sort()) {
      if (f.endsWith(".sql")) h.update(await readFile(join(s.migrationsFolder, f)));
    }
  }
  return h.digest("hex").slice(0, 16);
}

/**
 * A private copy of a migrated PGlite data directory. The template is made once per migration set (~5 s) and
 * copied for each platform (~1 s to open), with a lock directory so parallel test files build it only once.
 */
async function pgliteCopy(services: readonly ServiceDefinition[]): Promise<DataHandle> {
  const cache = resolve(root, ".cache", "pglite-template");
  const template = join(cache, await migrationsHash(services));
  if (!(await exists(join(template, "ready")))) {
    await mkdir(cache, { recursive: true });
    const lock = template + ".lock";
    try {
      await mkdir(lock);
      try {
        const building = await mkdtemp(join(cache, "building-"));
        const db = await openDatabase({ dataDir: building });
        for (const s of services) await migrate(db.db, { schema: s.name, folder: s.migrationsFolder });
        await db.close();
        await mkdir(join(building, "ready"));
        await rename(building, template);
      } finally {
        await rm(lock, { recursive: true, force: true });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      for (let i = 0; i < 600 && !(await exists(join(template, "ready"))); i++) await sleep(100);
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "grocery-test-"));
  await cp(template, dir, { recursive: true });
  return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
}

/** A new, empty database on the TEST_DATABASE_URL server, dropped afterwards. */
async function freshPostgresDatabase(): Promise<DataHandle> {
  const adminUrl = process.env["TEST_DATABASE_URL"];
  if (!adminUrl) throw new Error("TEST_DATABASE_URL is not set");
  const name = `grocery_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  // Nothing else lives in DATA_DIR on PostgreSQL, but development mail does: keep it out of the work tree.
  const dir = await mkdtemp(join(tmpdir(), "grocery-test-"));
  return {
    env: { DATABASE_URL: url.toString(), DATA_DIR: dir },
    async drop() {
      await rm(dir, { recursive: true, force: true });
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/**
 * For a service run alone (`npm run start:<service>`): identity on a platform of its own, an empty database
 * for the service, and the environment that points the service at both (DATA_DIR or DATABASE_URL, and
 * IDENTITY_JWKS_URL). `close` stops identity and drops both databases.
 */
export async function identityAndEmptyDatabase(backend: Backend): Promise<{ identity: TestPlatform; env: Record<string, string>; close(): Promise<void> }> {
  const identity = await startTestPlatform({ backend, services: servicesNamed("identity") });
  const db = await emptyDatabase(backend).catch(async (e: unknown) => {
    await identity.close();
    throw e;
  });
  return {
    identity,
    env: { ...db.env, IDENTITY_JWKS_URL: `${identity.url}/.well-known/jwks.json` },
    close: async () => {
      await identity.close();
      await db.drop();
    },
  };
}

/** Opens the platform's database directly, for assertions on stored state (PGlite: only while stopped). */
export async function openTestDatabase(tp: TestPlatform): Promise<Database> {
  const { databaseUrl, dataDir } = tp.platform.config;
  return openDatabase({ url: databaseUrl, dataDir });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the platform is serving at least `n` calls, so a test can act while they are running. */
export async function untilInFlight(tp: TestPlatform, n: number): Promise<void> {
  // Up to 10 s: on a loaded machine a client's first call can take seconds to reach the server.
  for (let i = 0; i < 2000 && tp.platform.inFlight < n; i++) await sleep(5);
  if (tp.platform.inFlight < n) throw new Error(`expected ${n} calls in flight, saw ${tp.platform.inFlight}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TestUser {
  userId: string;
  username: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

let counter = 0;
/** A unique username for this test process. */
export function uniqueName(prefix = "user"): string {
  return `${prefix}_${process.pid.toString(36)}${(counter++).toString(36)}${randomBytes(2).toString("hex")}`.slice(0, 32);
}

/** Calls an RPC with Connect JSON over HTTP/1.1; throws an Error carrying the Connect code on failure. */
export async function callJson<T = Record<string, unknown>>(url: string, path: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${url}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as T & { code?: string; message?: string };
  if (!res.ok) throw Object.assign(new Error(`${path}: ${json.code}: ${json.message}`), { code: json.code, status: res.status });
  return json;
}

/** Registers a fresh account through the real identity service and logs it in. */
export async function registerAndLogin(url: string, options: { role?: Role; password?: string } = {}): Promise<TestUser> {
  const username = uniqueName();
  const email = `${username}@example.com`;
  const password = options.password ?? `pw-${randomBytes(8).toString("hex")}`;
  const role = options.role ?? Role.CUSTOMER;
  await callJson(url, "grocery.identity.v1.AuthService/Register", { username, email, password, role: Role[role] === undefined ? role : `ROLE_${Role[role]}` });
  const login = await callJson<{ accessToken: string; refreshToken: string; user: { id: string } }>(url, "grocery.identity.v1.AuthService/Login", { login: username, password });
  return { userId: login.user.id, username, email, password, accessToken: login.accessToken, refreshToken: login.refreshToken };
}
