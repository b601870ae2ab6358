/**
 * `npm run bench`: the platform against baselines in one run (issue 12). Starts a bare @grpc/grpc-js server, a raw
 * node:http2 server and connect-node alone (bench/baseline-server.ts), then identity, cart and address as separate
 * processes on a fresh PostgreSQL database, seeds them through their APIs, and drives every scenario with h2load
 * (fixed request bodies) or a bare node:http2 client (calls that each need a fresh body). Servers run on core 0,
 * h2load and this process on core 1 (taskset), where the machine has two cores. Rounds are interleaved: each
 * round runs every scenario once in each load shape, then starts `npm start`'s all-in-one process on PGlite on a
 * fresh and on an existing data directory for start-up time and memory.
 *
 *   npm run bench                       full run, results in bench/results/<date>.md and .json
 *   npm run bench -- --quick            smoke run (≤ 60 s, one round, one shape, fewer scenarios), to a temp dir
 *   options: --seconds N (per run), --warmup N, --rounds N, --shapes 1x64,4x32 (connections x streams),
 *            --only a,b (scenario keys, see the table below), --out DIR
 *   env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres, the server to create the database on),
 *        BENCH_SERVER_NODE_ARGS (node flags for the platform's processes, space-separated, e.g. "--cpu-prof
 *        --cpu-prof-dir=/tmp/prof" for a profile of each service under the benchmark's load)
 */
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import postgres from "postgres";
import {
  AddressService,
  CreateAddressRequestSchema,
  FindNearbyShopsRequestSchema,
  ListAddressesRequestSchema,
} from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import {
  AddItemRequestSchema,
  CartService,
  GetCartRequestSchema,
  ListCartsRequestSchema,
  UpdateItemQuantityRequestSchema,
} from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import {
  AuthService,
  IssueServiceTokenRequestSchema,
  LoginRequestSchema,
  RefreshTokenRequestSchema,
  RefreshTokenResponseSchema,
} from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { GetMeRequestSchema, UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { HealthCheckRequestSchema } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { bearer, clientFor } from "../test/clients.js";
import { percentile, runH2load, h2loadVersion } from "./lib/h2load.js";
import { statSync } from "node:fs";
import { cpuSnapshot, cpuDelta, machine, mainThreadCpuMs, peakRssMb, rssMb } from "./lib/proc.js";
import { pinCores, requireH2load } from "./lib/pinning.js";
import { createBenchDatabase, startBenchPlatform } from "./lib/platform.js";
import { centre, homeAddress, item, shopAddress } from "./lib/fixtures.js";
import { startBenchLifecycle } from "./lib/lifecycle.js";
import { errorLines, platformReady, spawnServer, type Server } from "./lib/processes.js";
import { writeReport, type RunRecord, type BenchResults, type StartupRecord } from "./report.js";
import { call, closedLoop, connect, closeAll, firstMessage, wireRequest, type WireProtocol, type WireRequest } from "./lib/wire.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const benchStarted = performance.now();

// ---------------------------------------------------------------------------------------------------- options
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
};
const quick = flag("quick");
const seconds = Number(value("seconds") ?? (quick ? 1 : 2.5));
const warmupSeconds = Number(value("warmup") ?? (quick ? 0.5 : 1));
const rounds = Number(value("rounds") ?? (quick ? 1 : 3));
const only = value("only")?.split(",");
/** The scenarios of --quick: baselines, the serving path, one read per service, one write, one other protocol. */
const quickKeys = new Set(["grpc-js", "raw-http2", "connect-node", "health", "getme", "getcart", "nearby", "additem", "getme-connect"]);
const shapes = (value("shapes") ?? (quick ? "1x64" : "1x64,4x32")).split(",").map((s) => {
  const [c, m] = s.split("x").map(Number);
  if (!c || !m) throw new Error(`--shapes takes <connections>x<streams>,…, got ${s}`);
  return { connections: c, streams: m };
});
const adminUrl = process.env["BENCH_DATABASE_URL"] || "postgres://postgres@127.0.0.1:5432/postgres";
const log = (msg: string) => process.stdout.write(`[${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

requireH2load();
const host = machine();
const { serverCpus, loadCpus, description: pinning } = pinCores();
if (!serverCpus) log(`${pinning}: servers and load generator share the cores`);

// Service processes on PostgreSQL run the compiled build, as deployed; so does `npm start` on PGlite (it builds first).
const { workDir, compiledDir, cleanups, cleanup } = await startBenchLifecycle("bench", root, log);

// ---------------------------------------------------------------------------------------------------- scenarios
type Driver = "h2load" | "node" | "argon2" | "pgbench";
interface Scenario {
  key: string;
  name: string;
  /** Key of the scenario its ratio is taken against (same round and shape). */
  baseline?: string;
  driver: Driver;
  protocol: WireProtocol;
  url: () => string;
  /** Processes whose CPU is the server's. */
  servers: () => Server[];
  /** Whether PostgreSQL backends of the bench database count. */
  pg: boolean;
  /** h2load: the fixed request. */
  request?: () => WireRequest;
  /** Node client: the next request of a worker, and what to keep from its answer. */
  next?: (worker: number) => WireRequest;
  done?: (worker: number, body: Buffer, ok: boolean) => void;
  /** Most concurrent calls, whatever the shape (streams per connection are cut to fit). */
  maxConcurrency?: number;
  /** Runs before and after each measured run (outside it). */
  after?: () => Promise<void>;
}

const baselines: Record<string, Server> = {};
const services: Record<"identity" | "cart" | "address", Server | undefined> = { identity: undefined, cart: undefined, address: undefined };
const platformServers = () => Object.values(services).filter((s): s is Server => s !== undefined);

// ---------------------------------------------------------------------------------------------------- baselines
await Promise.all(
  ["grpc-js", "raw-http2", "connect-node"].map(async (kind) => {
    const s = await spawnServer({
      name: kind,
      args: ["bench/baseline-server.ts", kind],
      env: { PATH: process.env["PATH"] ?? "" },
      cwd: root,
      cpus: serverCpus,
      workDir,
      ready: (line) => (line.startsWith('{"port"') ? (JSON.parse(line) as { port: number }).port : undefined),
    });
    baselines[kind] = s;
    cleanups.push(() => s.stop());
  }),
);
log(`baselines up: ${Object.entries(baselines).map(([k, s]) => `${k} :${s.port}`).join(", ")}`);

// ---------------------------------------------------------------------------------------------------- PostgreSQL
const { name: dbName, url: dbUrl } = await createBenchDatabase(adminUrl, "bench", cleanups);
const sql = postgres(dbUrl.toString(), { max: 1, onnotice: () => {} });
cleanups.push(() => sql.end());
const [{ version: pgVersion } = { version: "unknown" }] = await sql<{ version: string }[]>`select version()`;
/** Pids of the PostgreSQL backends serving the bench database (not this connection). */
async function pgPids(): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbName} and pid <> pg_backend_pid()`;
  return rows.map((r) => r.pid);
}

// ---------------------------------------------------------------------------------------------------- platform on PostgreSQL
const platform = await startBenchPlatform({ databaseUrl: dbUrl.toString(), compiledDir, root, workDir, cpus: serverCpus, cleanups });
const { ports, admin: adminUser } = platform;
Object.assign(services, platform.servers);
const idUrl = services.identity!.url;
const cartUrl = services.cart!.url;
const addrUrl = services.address!.url;
const rssAfterStart: Record<string, number | undefined> = Object.fromEntries(platformServers().map((s) => [s.name, rssMb(s.pid)]));
log(`platform on PostgreSQL (database ${dbName}): identity :${ports.identity}, cart :${ports.cart}, address :${ports.address}`);

// ---------------------------------------------------------------------------------------------------- seeding
const auth = clientFor(AuthService, idUrl);
const usersApi = clientFor(UserService, idUrl);
const cartsApi = clientFor(CartService, cartUrl);
const addrApi = clientFor(AddressService, addrUrl);
const password = "benchmark bananas and mangoes";
const tag = Date.now().toString(36);
async function account(name: string, role: Role = Role.CUSTOMER): Promise<{ token: string; refresh: string; login: string }> {
  const username = `b${tag}_${name}`.slice(0, 32);
  await auth.register({ username, email: `${username}@example.com`, password, role });
  const r = await auth.login({ login: username, password });
  return { token: r.accessToken, refresh: r.refreshToken, login: username };
}
async function inBatches<T>(n: number, size: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += size) out.push(...(await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, j) => f(i + j)))));
  return out;
}
log("seeding (accounts at production argon2 cost)…");
// Three independent parts at once, so the server core is kept busy: carts, an address book, shops.
const [{ main, fiveLines, writeCarts }, book, lister] = await Promise.all([
  (async () => {
    const main = await account("main");
    const { cart: fiveLines } = await cartsApi.createCart({ name: "five lines" }, bearer(main.token));
    for (let i = 0; i < 5; i++) await cartsApi.addItem({ cartId: fiveLines!.id, item: item(`p${i}`) }, bearer(main.token));
    const writeCarts = await inBatches(19, 4, async (i) => {
      const { cart } = await cartsApi.createCart({ name: `writes ${i}` }, bearer(main.token));
      await cartsApi.addItem({ cartId: cart!.id, item: item("p0") }, bearer(main.token));
      return cart!.id;
    });
    return { main, fiveLines, writeCarts };
  })(),
  (async () => {
    // ListCarts reads an account of its own: the write scenarios add lines to main's carts, so listing those
    // would read more each round.
    const lister = await account("lister");
    await inBatches(20, 4, async (i) => {
      const { cart } = await cartsApi.createCart({ name: `list ${i}` }, bearer(lister.token));
      for (let j = 0; j < 2; j++) await cartsApi.addItem({ cartId: cart!.id, item: item(`p${j}`) }, bearer(lister.token));
    });
    return lister;
  })(),
  (async () => {
    const book = await account("book");
    for (let i = 0; i < 5; i++) await addrApi.createAddress({ address: homeAddress(`Home ${i}`) }, bearer(book.token));
    return book;
  })(),
  (async () => {
    const shopOwners = await inBatches(4, 4, (i) => account(`shop${i}`, Role.SHOP_OWNER));
    await inBatches(200, 16, (i) =>
      addrApi.createAddress(
        { address: shopAddress(i) },
        bearer(shopOwners[i % 4]!.token),
      ),
    );
  })(),
]);
// Accounts only the scenarios selected need: each costs two production-cost argon2 hashes.
const needs = (...keys: string[]) => keys.some((k) => (only ? only.includes(k) : !quick || quickKeys.has(k)));
const writers = needs("createaddress", "login", "refresh") ? await inBatches(16, 4, (i) => account(`writer${i}`)) : [];
const loginUsers = writers.slice(0, 8);
let serviceClient = { clientId: "", clientSecret: "" };
if (needs("servicetoken")) {
  const adminLogin = await auth.login({ login: adminUser.username, password: adminUser.password });
  const created = await usersApi.createServiceAccount({ name: `bench-${tag}` }, bearer(adminLogin.accessToken));
  serviceClient = { clientId: created.serviceAccount!.clientId, clientSecret: created.clientSecret };
}
const maxStreams = Math.max(...shapes.map((s) => s.connections * s.streams));
const refreshChains = needs("refresh") ? (await inBatches(maxStreams, 4, (i) => auth.login({ login: loginUsers[i % 8]!.login, password }))).map((r) => r.refreshToken) : [];
log(`seeded: 1 cart of 5 lines + 19 write carts, 5 addresses, 200 shops of 4 owners, ${writers.length} writers, ${refreshChains.length} refresh chains`);

// ---------------------------------------------------------------------------------------------------- scenario table
const health = () => wireRequest("grpc", "grpc.health.v1.Health/Check", HealthCheckRequestSchema, {});
let counter = 0;
const scenarios: Scenario[] = [
  { key: "grpc-js", name: "grpc-js pass-through", driver: "h2load", protocol: "grpc", url: () => baselines["grpc-js"]!.url, servers: () => [baselines["grpc-js"]!], pg: false, request: health },
  { key: "raw-http2", name: "raw node:http2 (the floor)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => baselines["raw-http2"]!.url, servers: () => [baselines["raw-http2"]!], pg: false, request: health },
  { key: "connect-node", name: "connect-node alone", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => baselines["connect-node"]!.url, servers: () => [baselines["connect-node"]!], pg: false, request: health },
  { key: "health", name: "platform Health/Check (identity, default logging)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => idUrl, servers: () => [services.identity!], pg: false, request: health },
  {
    key: "getme", name: "GetMe (PostgreSQL)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => idUrl, servers: platformServers, pg: true,
    request: () => wireRequest("grpc", "grocery.identity.v1.UserService/GetMe", GetMeRequestSchema, {}, main.token),
  },
  {
    key: "getcart", name: "GetCart (5 lines)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => cartUrl, servers: platformServers, pg: true,
    request: () => wireRequest("grpc", "grocery.cart.v1.CartService/GetCart", GetCartRequestSchema, { cartId: fiveLines!.id }, main.token),
  },
  {
    key: "listaddresses", name: "ListAddresses (5 addresses)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => addrUrl, servers: platformServers, pg: true,
    request: () => wireRequest("grpc", "grocery.address.v1.AddressService/ListAddresses", ListAddressesRequestSchema, {}, book.token),
  },
  {
    key: "nearby", name: "FindNearbyShops (200 shops)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => addrUrl, servers: platformServers, pg: true,
    request: () => wireRequest("grpc", "grocery.address.v1.AddressService/FindNearbyShops", FindNearbyShopsRequestSchema, { location: centre, radiusKm: 10 }, book.token),
  },
  {
    key: "listcarts", name: "ListCarts (20 carts of 2 lines)", baseline: "grpc-js", driver: "h2load", protocol: "grpc", url: () => cartUrl, servers: platformServers, pg: true,
    request: () => wireRequest("grpc", "grocery.cart.v1.CartService/ListCarts", ListCartsRequestSchema, {}, lister.token),
  },
  {
    key: "additem", name: "AddItem (19 carts, fresh request ids)", baseline: "grpc-js", driver: "node", protocol: "grpc", url: () => cartUrl, servers: platformServers, pg: true,
    next: () => {
      const n = counter++;
      return wireRequest("grpc", "grocery.cart.v1.CartService/AddItem", AddItemRequestSchema, { cartId: writeCarts[n % 19]!, item: item(`p${Math.floor(n / 19) % 20}`), requestId: randomUUID() }, main.token);
    },
  },
  {
    key: "updateqty", name: "UpdateItemQuantity (19 carts)", baseline: "grpc-js", driver: "node", protocol: "grpc", url: () => cartUrl, servers: platformServers, pg: true,
    next: () => {
      const n = counter++;
      return wireRequest("grpc", "grocery.cart.v1.CartService/UpdateItemQuantity", UpdateItemQuantityRequestSchema, { cartId: writeCarts[n % 19]!, productId: "p0", shopId: "shop-1", quantity: 1 + (n % 7) }, main.token);
    },
  },
  {
    key: "createaddress", name: "CreateAddress (16 owners)", baseline: "grpc-js", driver: "node", protocol: "grpc", url: () => addrUrl, servers: platformServers, pg: true,
    next: () => {
      const n = counter++;
      return wireRequest("grpc", "grocery.address.v1.AddressService/CreateAddress", CreateAddressRequestSchema, { address: homeAddress(`Bench ${n % 1000}`) }, writers[n % 16]!.token);
    },
    // Owners keep at most ADDRESS_MAX_PER_OWNER addresses: start every run from none.
    after: async () => {
      await sql`delete from address.addresses where label like 'Bench %'`;
    },
  },
  {
    // Login and IssueServiceToken are `expensive` RPCs: EXPENSIVE_CALLS_CONCURRENCY (4) run and
    // EXPENSIVE_CALLS_QUEUE (64) wait, more are refused with RESOURCE_EXHAUSTED. They, and Login's argon2
    // baseline, run at most 64 calls at once.
    key: "argon2", name: "raw argon2id verify (production cost)", maxConcurrency: 64, driver: "argon2", protocol: "grpc", url: () => "", servers: () => [], pg: false,
  },
  {
    key: "login", name: "Login (production argon2 cost, 8 accounts)", baseline: "argon2", maxConcurrency: 64, driver: "node", protocol: "grpc", url: () => idUrl, servers: () => [services.identity!], pg: true,
    next: (w) => wireRequest("grpc", "grocery.identity.v1.AuthService/Login", LoginRequestSchema, { login: loginUsers[w % 8]!.login, password }),
  },
  {
    key: "refresh", name: "RefreshToken (each call a fresh token)", driver: "node", protocol: "grpc", url: () => idUrl, servers: () => [services.identity!], pg: true,
    next: (w) => wireRequest("grpc", "grocery.identity.v1.AuthService/RefreshToken", RefreshTokenRequestSchema, { refreshToken: refreshChains[w]! }),
    done: (w, body, ok) => {
      if (ok) refreshChains[w] = fromBinary(RefreshTokenResponseSchema, firstMessage(body)).refreshToken;
    },
  },
  {
    key: "servicetoken", name: "IssueServiceToken", maxConcurrency: 64, driver: "h2load", protocol: "grpc", url: () => idUrl, servers: () => [services.identity!], pg: true,
    request: () => wireRequest("grpc", "grocery.identity.v1.AuthService/IssueServiceToken", IssueServiceTokenRequestSchema, serviceClient),
  },
  {
    key: "getme-grpcweb", name: "GetMe over gRPC-web", baseline: "getme", driver: "h2load", protocol: "grpc-web", url: () => idUrl, servers: platformServers, pg: true,
    request: () => wireRequest("grpc-web", "grocery.identity.v1.UserService/GetMe", GetMeRequestSchema, {}, main.token),
  },
  {
    key: "getme-connect", name: "GetMe over Connect JSON", baseline: "getme", driver: "h2load", protocol: "connect", url: () => idUrl, servers: platformServers, pg: true,
    request: () => wireRequest("connect", "grocery.identity.v1.UserService/GetMe", GetMeRequestSchema, {}, main.token),
  },
  {
    // The database's own ceiling on this machine: pgbench's built-in select-only script (a primary-key select),
    // prepared, 16 clients, on pgbench's tables in the bench database. Load shapes do not apply: once per round.
    key: "pgbench", name: "pgbench prepared primary-key select, 16 clients", driver: "pgbench", protocol: "grpc", url: () => "", servers: () => [], pg: true,
  },
];
let hasPgbench = true;
try {
  execFileSync("pgbench", ["--version"], { stdio: "ignore" });
} catch {
  hasPgbench = false;
  log("pgbench is not installed (Debian postgresql-client): its scenario is skipped");
}
const selected = scenarios.filter((s) => (only ? only.includes(s.key) : !quick || quickKeys.has(s.key)) && (s.driver !== "pgbench" || hasPgbench));
// A ratio needs its baseline in the same round.
for (const s of [...selected]) {
  const b = s.baseline && scenarios.find((x) => x.key === s.baseline);
  if (b && !selected.includes(b)) selected.unshift(b);
}
selected.sort((a, b) => scenarios.indexOf(a) - scenarios.indexOf(b));

// ---------------------------------------------------------------------------------------------------- verification
log("verifying every fixed request answers grpc-status 0 (h2load counts HTTP 200 as success)…");
for (const s of selected.filter((x) => x.driver === "h2load")) {
  const [session] = await connect(s.url(), 1);
  const r = await call(session!, s.protocol, s.request!());
  await closeAll([session!]);
  if (r.code !== "OK") throw new Error(`${s.key}: the request answers ${r.code}, not OK`);
}

// ---------------------------------------------------------------------------------------------------- one run
/** Warm-up of the current round: the full one in round 1, at most 0.5 s later (the code is warm by then). */
let warmupNow = warmupSeconds;
async function argon2Run(concurrency: number, secs: number): Promise<{ ok: number; seconds: number; latenciesMs: number[]; cpuMs: number; peakRss: number | undefined }> {
  const node = [process.execPath, "--import", "tsx", "bench/argon2-loop.ts", String(concurrency), String(secs), String(warmupNow)];
  const [cmd, ...args] = serverCpus === undefined ? node : ["taskset", "-c", serverCpus, ...node];
  const child = spawn(cmd!, args, { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
  const lines: string[] = [];
  let buf = "";
  let onLine: (() => void) | undefined;
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      onLine?.();
    }
  });
  const nextLine = () => new Promise<string>((r) => (lines.length ? r(lines.shift()!) : (onLine = () => ((onLine = undefined), r(lines.shift()!)))));
  await nextLine();
  const before = cpuSnapshot([child.pid!]);
  child.stdin.write("go\n");
  const result = JSON.parse(await nextLine()) as { ok: number; seconds: number; latenciesMs: number[] };
  const after = cpuSnapshot([child.pid!]);
  const peakRss = peakRssMb(child.pid!);
  await new Promise((r) => child.once("exit", r));
  return { ...result, cpuMs: cpuDelta(before, after), peakRss };
}

let pgbenchReady = false;
/** One pgbench run; PostgreSQL CPU is read by polling its backends, which exist only while it runs. */
async function pgbenchRun(round: number): Promise<RunRecord> {
  if (!pgbenchReady) {
    execFileSync("pgbench", ["-i", "-s", "1", "-q", dbUrl.toString()], { stdio: "ignore" });
    pgbenchReady = true;
  }
  const prefix = join(workDir, `pgbench-${round}-${Date.now()}`);
  const args = ["-S", "-M", "prepared", "-c", "16", "-j", "1", "-n", "-l", `--log-prefix=${prefix}`];
  const pin = (a: string[]): [string, string[]] => (loadCpus === undefined ? ["pgbench", a] : ["taskset", ["-c", loadCpus, "pgbench", ...a]]);
  if (warmupNow > 0) {
    const [wCmd, wArgs] = pin(["-S", "-M", "prepared", "-c", "16", "-j", "1", "-n", "-T", String(Math.max(1, Math.round(warmupNow))), dbUrl.toString()]);
    execFileSync(wCmd, wArgs, { stdio: "ignore" });
  }
  const [cmd, argv] = pin([...args, "-T", String(Math.max(1, Math.round(seconds))), dbUrl.toString()]);
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const child = spawn(cmd, argv, { cwd: workDir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", r));
  let running = true;
  void exited.then(() => (running = false));
  while (running) {
    for (const [pid, v] of cpuSnapshot(await pgPids())) {
      if (!first.has(pid)) first.set(pid, 0);
      last.set(pid, v);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if ((await exited) !== 0) throw new Error(`pgbench failed:\n${out}`);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
  const txs = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const latencies: number[] = [];
  for (const f of (await readdir(workDir)).filter((f) => join(workDir, f).startsWith(prefix))) {
    for (const line of (await readFile(join(workDir, f), "utf8")).split("\n")) {
      const us = Number(line.split(" ")[2]);
      if (Number.isFinite(us) && line) latencies.push(us / 1000);
    }
    await rm(join(workDir, f), { force: true });
  }
  const pgMs = cpuDelta(first, last);
  return {
    scenario: "pgbench", name: "pgbench prepared primary-key select, 16 clients", round, shape: "16 clients", driver: "pgbench",
    reqPerSec: tps, calls: txs, p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99),
    codes: failed ? { OK: txs, failed } : { OK: txs }, codesFrom: "pgbench's own count", serverCpuMsPerCall: NaN, serverCpuByProcess: {}, serverCoreUse: NaN,
    pgCpuMsPerCall: pgMs / txs, peakRssMb: {},
  };
}

async function runOnce(s: Scenario, fullShape: { connections: number; streams: number }, round: number): Promise<RunRecord> {
  const shape = s.maxConcurrency ? { connections: fullShape.connections, streams: Math.min(fullShape.streams, Math.ceil(s.maxConcurrency / fullShape.connections)) } : fullShape;
  const concurrency = shape.connections * shape.streams;
  if (s.driver === "argon2") {
    const r = await argon2Run(concurrency, seconds);
    return {
      scenario: s.key, name: s.name, round, shape: `${shape.connections}x${shape.streams}`, driver: "argon2",
      reqPerSec: r.ok / r.seconds, calls: r.ok, p50: percentile(r.latenciesMs, 50), p95: percentile(r.latenciesMs, 95), p99: percentile(r.latenciesMs, 99),
      codes: { OK: r.ok }, codesFrom: "every call", serverCpuMsPerCall: r.cpuMs / r.ok, serverCoreUse: r.cpuMs / (r.seconds * 1000), serverCpuByProcess: { argon2: r.cpuMs / r.ok }, pgCpuMsPerCall: undefined,
      peakRssMb: { argon2: r.peakRss },
    };
  }
  const servers = s.servers();
  const drive = async (secs: number) => {
    if (s.driver === "h2load") {
      return runH2load({ url: s.url(), request: s.request!(), connections: shape.connections, streams: shape.streams, seconds: secs, cpus: loadCpus, workDir });
    }
    return closedLoop({ url: s.url(), protocol: s.protocol, connections: shape.connections, streams: shape.streams, seconds: secs, next: s.next!, done: s.done ? (w, r) => s.done!(w, r.body, r.code === "OK") : undefined });
  };
  if (warmupNow > 0) await drive(warmupNow);
  await s.after?.();
  const pgBefore = s.pg ? cpuSnapshot(await pgPids()) : new Map<number, number>();
  const before = new Map(servers.map((x) => [x.name, cpuSnapshot([x.pid])]));
  const mainBefore = new Map(servers.map((x) => [x.name, mainThreadCpuMs(x.pid) ?? 0]));
  // While h2load runs, a sampler sends the same request one at a time every 100 ms and reads its grpc-status.
  const sampled: Record<string, number> = {};
  let sampling = s.driver === "h2load";
  const sampler = (async () => {
    if (!sampling) return;
    const [session] = await connect(s.url(), 1);
    while (sampling) {
      const r = await call(session!, s.protocol, s.request!());
      sampled[r.code] = (sampled[r.code] ?? 0) + 1;
      await new Promise((res) => setTimeout(res, 100));
    }
    await closeAll([session!]);
  })();
  // The platform logs one "rpc" line per call with its code (LOG_LEVEL=info): the codes of every call in the window.
  const target = platformServers().find((x) => x.url === s.url());
  const logFrom = target ? statSync(target.logFile).size : 0;
  const clientBefore = process.cpuUsage();
  const result = await drive(seconds);
  const client = process.cpuUsage(clientBefore);
  sampling = false;
  await sampler;
  const after = new Map(servers.map((x) => [x.name, cpuSnapshot([x.pid])]));
  const mainAfter = new Map(servers.map((x) => [x.name, mainThreadCpuMs(x.pid) ?? 0]));
  const pgAfter = s.pg ? cpuSnapshot([...new Set([...pgBefore.keys(), ...(await pgPids())])]) : new Map<number, number>();
  const sampledCalls = Object.values(sampled).reduce((a, b) => a + b, 0);
  let logged: Record<string, number> | undefined;
  if (target && s.driver === "h2load") {
    await new Promise((r) => setTimeout(r, 100));
    const text = (await readFile(target.logFile)).subarray(logFrom).toString();
    const counts: Record<string, number> = {};
    for (const m of text.matchAll(/"msg":"rpc".*?"code":"([A-Za-z_]+)"/g)) {
      const code = m[1]!.toUpperCase();
      counts[code] = (counts[code] ?? 0) + 1;
    }
    if (Object.keys(counts).length > 0) logged = counts;
  }
  let ok: number;
  let calls: number;
  let codes: Record<string, number>;
  let latencies: number[];
  let secs: number;
  let cancelledAtEnd = 0;
  if ("status2xx" in result) {
    codes = logged ? { ...logged } : { ...sampled };
    // h2load resets the streams in flight when its duration ends (and the warm-up's): the service logs those
    // as CANCELED. Up to two runs' worth of streams are that, not failures.
    const cancelled = codes["CANCELED"] ?? 0;
    if (cancelled > 0 && cancelled <= 2 * concurrency) {
      cancelledAtEnd = cancelled;
      delete codes["CANCELED"];
    }
    // req/s: what h2load completed in its duration, times the share the service answered OK (h2load sees 200
    // either way). The CPU denominator: every call the service logged in the window, which is the work it did
    // (streams in flight at either end included); without a log (the baselines), h2load's count.
    const answered = Object.values(codes).reduce((a, b) => a + b, 0);
    ok = logged ? (result.status2xx * (codes["OK"] ?? 0)) / Math.max(1, answered) : result.status2xx;
    calls = logged ? answered + cancelledAtEnd : result.done + sampledCalls;
    latencies = result.latenciesMs;
    secs = result.seconds;
  } else {
    ok = result.ok;
    calls = Object.values(result.codes).reduce((a, b) => a + b, 0);
    codes = result.codes;
    latencies = result.latenciesMs;
    secs = result.seconds;
  }
  await s.after?.();
  const byProcess: Record<string, number> = {};
  let serverCpu = 0;
  for (const x of servers) {
    const d = cpuDelta(before.get(x.name)!, after.get(x.name)!);
    byProcess[x.name] = d / calls;
    serverCpu += d;
  }
  const mainThread: Record<string, number> = {};
  for (const x of servers) mainThread[x.name] = (mainAfter.get(x.name)! - mainBefore.get(x.name)!) / calls;
  return {
    scenario: s.key, name: s.name, round, shape: `${shape.connections}x${shape.streams}`, driver: s.driver,
    reqPerSec: ok / secs, calls, p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99),
    codes, cancelledAtEnd, codesFrom:
      s.driver === "node" ? "every call (client)" : logged ? "every call (the service's rpc log lines in the window)" : `${sampledCalls} calls sampled during the run, plus h2load's HTTP-level counts`,
    serverCpuMsPerCall: serverCpu / calls, serverCpuByProcess: byProcess, mainThreadMsPerCall: mainThread,
    serverCoreUse: serverCpu / (secs * 1000),
    // The load generator's share of its core: this process for the Node client, h2load's own otherwise.
    clientCoreUse: "status2xx" in result ? result.cpuMs / (secs * 1000) : (client.user + client.system) / 1000 / (secs * 1000),
    pgCpuMsPerCall: s.pg ? cpuDelta(pgBefore, pgAfter) / calls : undefined,
    peakRssMb: Object.fromEntries(servers.map((x) => [x.name, peakRssMb(x.pid)])),
  };
}

// ---------------------------------------------------------------------------------------------------- PGlite all-in-one
async function pgliteStartup(dataDir: string, kind: "fresh" | "existing"): Promise<StartupRecord> {
  const s = await spawnServer({
    name: `all-in-one-${kind}`,
    // What `npm start` runs once its build is done: the compiled all-in-one entry point.
    args: [join(compiledDir, "services", "main.js")],
    compiled: true,
    env: { PATH: process.env["PATH"] ?? "", PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, LOG_LEVEL: "info" },
    cwd: root,
    cpus: serverCpus,
    workDir,
    ready: platformReady,
    timeoutMs: 120_000,
  });
  const rec: StartupRecord = { dataDir: kind, startMs: s.startMs, rssAfterStartMb: rssMb(s.pid), peakRssAfterStartMb: peakRssMb(s.pid) };
  await s.stop();
  return rec;
}

// ---------------------------------------------------------------------------------------------------- rounds
const runs: RunRecord[] = [];
const startups: StartupRecord[] = [];
const startupFailures: string[] = [];
// Each run costs its warm-up and duration plus about 0.8 s of set-up (processes, log reading) on this machine.
const runsPerRound = selected.reduce((n, s) => n + (s.driver === "pgbench" ? 1 : shapes.length), 0);
const expected = runsPerRound * (rounds * (seconds + 0.8) + warmupSeconds + (rounds - 1) * Math.min(warmupSeconds, 0.5)) + rounds * 14;
log(`${selected.length} scenarios, ${shapes.length} shape(s), ${rounds} round(s): ${runsPerRound * rounds} runs of ${seconds} s after warm-up; about ${Math.round(expected / 60)} min more`);
try {
  for (let round = 1; round <= rounds; round++) {
    warmupNow = round === 1 ? warmupSeconds : Math.min(warmupSeconds, 0.5);
    for (const s of selected) {
      for (const shape of s.driver === "pgbench" ? shapes.slice(0, 1) : shapes) {
        const r = s.driver === "pgbench" ? await pgbenchRun(round) : await runOnce(s, shape, round);
        runs.push(r);
        const errs = Object.entries(r.codes).filter(([c]) => c !== "OK");
        log(
          `round ${round}/${rounds} ${s.key.padEnd(14)} ${r.shape.padEnd(5)} ${r.reqPerSec.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} ms  ` +
            (Number.isFinite(r.serverCpuMsPerCall) ? `server ${r.serverCpuMsPerCall.toFixed(2)} ms/call (${(r.serverCoreUse * 100).toFixed(0)} % of a core)` : "") +
            (r.clientCoreUse === undefined ? "" : `  load gen ${(r.clientCoreUse * 100).toFixed(0)} %`) +
            (r.pgCpuMsPerCall === undefined ? "" : `  pg ${r.pgCpuMsPerCall.toFixed(2)} ms/call`) +
            (errs.length ? `  errors ${errs.map(([c, n]) => `${c}:${n}`).join(" ")}` : ""),
        );
      }
    }
    const pgliteDir = join(workDir, `pglite-${round}`);
    try {
      const fresh = await pgliteStartup(pgliteDir, "fresh");
      startups.push({ ...fresh, round });
      let line = `round ${round}/${rounds} npm start on PGlite: fresh ${fresh.startMs.toFixed(0)} ms ${fresh.rssAfterStartMb?.toFixed(0)} MB`;
      // --quick starts it once, to prove it starts; the existing-directory start is the full run's.
      if (!quick) {
        const existing = await pgliteStartup(pgliteDir, "existing");
        startups.push({ ...existing, round });
        line += `, existing ${existing.startMs.toFixed(0)} ms ${existing.rssAfterStartMb?.toFixed(0)} MB`;
      }
      log(line);
    } catch (e) {
      // Reported, not fatal: the numbers measured so far are still worth writing.
      startupFailures.push(`round ${round}: ${String(e).slice(0, 2000)}`);
      log(`round ${round}/${rounds} npm start on PGlite failed: ${String(e).split("\n")[0]}`);
    }
    await rm(pgliteDir, { recursive: true, force: true });
  }
  const peak: Record<string, number | undefined> = Object.fromEntries(platformServers().map((s) => [s.name, peakRssMb(s.pid)]));
  const errorsOf = platformServers().map((s) => [s.name, errorLines(s.logFile)] as const);
  const errorLogs = Object.fromEntries(errorsOf.map(([name, lines]) => [name, lines.length]));
  // The first few in full: the work directory with the logs is deleted at the end.
  const errorSamples = Object.fromEntries(errorsOf.map(([name, lines]) => [name, lines.slice(0, 5).map((l) => l.slice(0, 2000))]));
  const results: BenchResults = {
    date: new Date().toISOString(),
    quick,
    settings: { seconds, warmupSeconds, rounds, shapes: shapes.map((s) => `${s.connections}x${s.streams}`), pinning },
    machine: { ...host, node: process.version, postgres: pgVersion, h2load: h2loadVersion() ?? "" },
    runs,
    startups,
    startupFailures,
    services: { rssAfterStartMb: rssAfterStart, peakRssMb: peak, errorLogLines: errorLogs, errorLogSamples: errorSamples },
    totalSeconds: (performance.now() - benchStarted) / 1000,
  };
  const outDir = value("out") ?? (quick ? await mkdtemp(join(tmpdir(), "grocery-bench-quick-")) : join(root, "bench", "results"));
  await mkdir(outDir, { recursive: true });
  const { md, json } = await writeReport(results, outDir);
  log(`wrote ${md} and ${json}`);
} finally {
  await cleanup();
  await rm(workDir, { recursive: true, force: true });
}
process.exit(0);
