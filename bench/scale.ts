/**
 * `npm run bench:scale`: the platform's reads on small and on large data (issue 12, item 2). One fresh PostgreSQL
 * database; identity, cart and address start once from the production build (they migrate it). Each read is
 * measured on a handful of rows created through the API, then 1 M users, 100 k shops and 1 M cart lines are
 * seeded with plain SQL (INSERT … SELECT over generate_series), the tables are vacuumed and analysed, and the
 * same requests (the same user, shops and carts) are measured again. For every read the statements its service
 * runs (copied from the store code) are explained with EXPLAIN (ANALYZE, BUFFERS) on both data sets.
 *
 *   npm run bench:scale                           results in bench/results/scale-<date>.md and .json
 *   options: --seconds N (per run, default 3), --warmup N (default 1), --rounds N (default 3), --out DIR
 *   env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { statSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { AddressService, FindNearbyShopsRequestSchema } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { CartService, ListCartsRequestSchema } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService, LoginRequestSchema } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { GetMeRequestSchema, ListUsersRequestSchema } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { boundingBox, earthRadiusKm } from "@local-e-grocery/address/geo.js";
import { bearer, clientFor } from "../test/clients.js";
import { h2loadVersion, percentile, runH2load } from "./lib/h2load.js";
import { cpuDelta, cpuSnapshot, machine } from "./lib/proc.js";
import { pinCores, requireH2load } from "./lib/pinning.js";
import { createBenchDatabase, startBenchPlatform } from "./lib/platform.js";
import { centre, item, shopAddress } from "./lib/fixtures.js";
import { startBenchLifecycle } from "./lib/lifecycle.js";
import { errorLines } from "./lib/processes.js";
import { call, closeAll, closedLoop, connect, firstMessage, wireRequest, type WireRequest } from "./lib/wire.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const started = performance.now();
const argv = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
};
const seconds = Number(value("seconds") ?? 3);
const warmupSeconds = Number(value("warmup") ?? 1);
const rounds = Number(value("rounds") ?? 3);
const adminUrl = process.env["BENCH_DATABASE_URL"] || "postgres://postgres@127.0.0.1:5432/postgres";
const log = (msg: string) => process.stdout.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

/** The large data set. */
const large = { users: 1_000_000, shops: 100_000, carts: 100_000, linesPerCart: 10 };
/** Streams of the h2load runs (one connection), and concurrent Login calls (an `expensive` RPC, one account). */
const streams = 64;
const loginConcurrency = 16;

requireH2load();
const host = machine();
const { serverCpus, loadCpus, description: pinning } = pinCores();

const { workDir, compiledDir, cleanups, cleanup } = await startBenchLifecycle("bench:scale", root, log);

// ---------------------------------------------------------------------------------------------------- database
const { name: dbName, url: dbUrl } = await createBenchDatabase(adminUrl, "bench_scale", cleanups);
const sql = postgres(dbUrl.toString(), { max: 1, onnotice: () => {} });
cleanups.push(() => sql.end());
const [{ version: pgVersion } = { version: "unknown" }] = await sql<{ version: string }[]>`select version()`;
const pgSettings = Object.fromEntries(
  (await sql<{ name: string; setting: string; unit: string | null }[]>`select name, setting, unit from pg_settings where name in ('shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'jit', 'shared_preload_libraries')`).map((r) => [
    r.name,
    r.unit ? `${r.setting} ${r.unit}` : r.setting,
  ]),
);
async function pgPids(): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbName} and pid <> pg_backend_pid()`;
  return rows.map((r) => r.pid);
}

// ---------------------------------------------------------------------------------------------------- services
const platform = await startBenchPlatform({ databaseUrl: dbUrl.toString(), compiledDir, root, workDir, cpus: serverCpus, cleanups });
const { ports, admin: adminUser } = platform;
const services = platform.servers;
const idUrl = services.identity!.url;
const cartUrl = services.cart!.url;
const addrUrl = services.address!.url;
const allServers = () => Object.values(services);
log(`services up on ${dbName}: identity :${ports.identity}, cart :${ports.cart}, address :${ports.address}`);

// ---------------------------------------------------------------------------------------------------- small data, through the API
const auth = clientFor(AuthService, idUrl);
const cartsApi = clientFor(CartService, cartUrl);
const addrApi = clientFor(AddressService, addrUrl);
const password = "benchmark bananas and mangoes";
const tag = Date.now().toString(36);
async function account(name: string, role: Role = Role.CUSTOMER): Promise<{ token: string; login: string }> {
  const username = `b${tag}_${name}`.slice(0, 32);
  await auth.register({ username, email: `${username}@example.com`, password, role });
  const r = await auth.login({ login: username, password });
  return { token: r.accessToken, login: username };
}
log("seeding the small data through the API…");
const main = await account("main");
for (let c = 0; c < 3; c++) {
  const { cart } = await cartsApi.createCart({ name: `cart ${c}` }, bearer(main.token));
  for (let i = 0; i < 5; i++) await cartsApi.addItem({ cartId: cart!.id, item: item(`p${i}`) }, bearer(main.token));
}
const owners = await Promise.all([0, 1, 2, 3].map((i) => account(`shop${i}`, Role.SHOP_OWNER)));
for (let i = 0; i < 200; i += 16) {
  await Promise.all(Array.from({ length: Math.min(16, 200 - i) }, (_, j) => addrApi.createAddress({ address: shopAddress(i + j) }, bearer(owners[(i + j) % 4]!.token))));
}
const adminToken = (await auth.login({ login: adminUser.username, password: adminUser.password })).accessToken;
const [mainRow] = await sql<{ id: string; password_hash: string }[]>`select id, password_hash from identity.users where username = ${main.login}`;
if (!mainRow) throw new Error("the measured user is not in identity.users");
const measuredHash = mainRow.password_hash;
/** ListUsers' login_prefix: every account this bench registered (the user and the 4 shop owners), none of the synthetic ones. */
const loginPrefix = `b${tag}_`;
log(`seeded: user ${main.login} with 3 carts of 5 lines, 200 shops of 4 owners, admin ${adminUser.username}`);

// ---------------------------------------------------------------------------------------------------- scenarios
interface Scenario {
  key: string;
  name: string;
  url: string;
  /** h2load's fixed request, or the Node client's for Login. */
  request: WireRequest;
  driver: "h2load" | "node";
  concurrency: number;
  /** The statements the service runs for it (from its store code), with this run's parameters. */
  statements: () => Statement[];
}
interface Statement {
  /** Where it comes from. */
  source: string;
  text: string;
  params: (string | number)[];
  /** Sent as a named prepared statement (drizzle `.prepare()`): explained as the 6th execution, the plan cache's choice. */
  prepared: boolean;
}
const box = boundingBox(centre, 10);
const lngRanges = box.longitudeRanges.filter(([min, max]) => min > -180 || max < 180);
const distance = (lat: string, lng: string) =>
  `(2 * ${earthRadiusKm}::float8 * asin(least(1::float8, sqrt(power(sin(radians(latitude - ${lat}::float8) / 2), 2) + cos(radians(${lat}::float8)) * cos(radians(latitude)) * power(sin(radians(longitude - ${lng}::float8) / 2), 2)))))`;
const userColumns = `"id", "username", "email", "password_hash", "roles", "display_name", "disabled", "create_time", "update_time", "phone_number", "language_code", "currency_code", "marketing_opt_in", "notification_channels"`;
const cartPage = `select "page"."id", "page"."owner_id", "page"."name", "page"."version", "page"."create_time", "page"."update_time", "cart_items"."product_id", "cart_items"."shop_id", "cart_items"."name", "cart_items"."currency_code", "cart_items"."unit_price_minor", "cart_items"."quantity", "cart_items"."position"
from (select "id", "owner_id", "name", "version", "create_time", "update_time" from "cart"."carts" where "carts"."owner_id" = $1 order by "carts"."create_time" asc, "carts"."id" asc limit $2) "page"
left join "cart"."cart_items" on "cart_items"."cart_id" = "page"."id"
order by "page"."create_time" asc, "page"."id" asc, "cart_items"."position" asc`;
const nearby = `select "addresses".*, ${distance("$1", "$2")} as distance_km
from "address"."addresses"
where "addresses"."kind" = 'shop'
  and not exists (select 1 from "address"."user_standings" where "user_standings"."user_id" = "addresses"."owner_id" and not ("user_standings"."enabled" and "user_standings"."shop_owner"))
  and "addresses"."latitude" between $3 and $4
  ${lngRanges.map((_, i) => `${i === 0 ? "and (" : " or "}"addresses"."longitude" between $${5 + 2 * i} and $${6 + 2 * i}`).join("")}${lngRanges.length ? ")" : ""}
  and ${distance("$1", "$2")} <= $${5 + 2 * lngRanges.length}::float8
order by ${distance("$1", "$2")}, "addresses"."id" asc
limit $${6 + 2 * lngRanges.length}`;
// The session check (services/identity/src/session-check.ts) reads the session and the user once per session
// and caches the answer, so a steady GetMe runs the user read only; both are explained.
const sessionById = { source: "identity store/sessions.ts identity_session_by_id (session check, cached per session)", text: `select * from "identity"."sessions" where "sessions"."id" = $1`, prepared: true };
const scenarios: Scenario[] = [
  {
    key: "getme", name: "GetMe", url: idUrl, driver: "h2load", concurrency: streams,
    request: wireRequest("grpc", "grocery.identity.v1.UserService/GetMe", GetMeRequestSchema, {}, main.token),
    statements: () => [
      { source: "identity store/users.ts identity_user_by_id", text: `select ${userColumns} from "identity"."users" where "users"."id" = $1`, params: [mainRow.id], prepared: true },
      { ...sessionById, params: [mainSession] },
    ],
  },
  {
    key: "login", name: "Login (one account, production argon2 cost)", url: idUrl, driver: "node", concurrency: loginConcurrency,
    request: wireRequest("grpc", "grocery.identity.v1.AuthService/Login", LoginRequestSchema, { login: main.login, password }),
    statements: () => [
      {
        source: "identity store/users.ts identity_user_by_login",
        text: `select ${userColumns} from "identity"."users" where (lower("users"."username") = $1 or lower("users"."email") = $2) limit $3`,
        params: [main.login.toLowerCase(), main.login.toLowerCase(), 1],
        prepared: true,
      },
    ],
  },
  {
    key: "listusers", name: `ListUsers (login_prefix "${loginPrefix}", page of 20, admin)`, url: idUrl, driver: "h2load", concurrency: streams,
    request: wireRequest("grpc", "grocery.identity.v1.UserService/ListUsers", ListUsersRequestSchema, { loginPrefix, pageSize: 20 }, adminToken),
    statements: () => [
      {
        source: "identity store/users.ts listUsers (unprepared)",
        text: `select ${userColumns} from "identity"."users" where (lower("users"."username") like $1 or lower("users"."email") like $2) order by "users"."username" asc limit $3`,
        params: [`${loginPrefix.replace(/_/g, "\\_")}%`, `${loginPrefix.replace(/_/g, "\\_")}%`, 21],
        prepared: false,
      },
    ],
  },
  {
    key: "nearby", name: "FindNearbyShops (10 km around the 200 shops, first page of 20)", url: addrUrl, driver: "h2load", concurrency: streams,
    request: wireRequest("grpc", "grocery.address.v1.AddressService/FindNearbyShops", FindNearbyShopsRequestSchema, { location: centre, radiusKm: 10 }, main.token),
    statements: () => [
      {
        source: `address store.ts address_nearby_shops_${lngRanges.length}_first`,
        text: nearby,
        params: [centre.latitude, centre.longitude, box.minLatitude, box.maxLatitude, ...lngRanges.flat(), 10, 21],
        prepared: true,
      },
    ],
  },
  {
    key: "listcarts", name: "ListCarts (3 carts of 5 lines, page of 20)", url: cartUrl, driver: "h2load", concurrency: streams,
    request: wireRequest("grpc", "grocery.cart.v1.CartService/ListCarts", ListCartsRequestSchema, { pageSize: 20 }, main.token),
    statements: () => [{ source: "cart store.ts cart_page_first", text: cartPage, params: [mainRow.id, 21], prepared: true }],
  },
];
const [mainSessionRow] = await sql<{ id: string }[]>`select id from identity.sessions where user_id = ${mainRow.id} order by create_time limit 1`;
const mainSession = mainSessionRow?.id ?? "";

// ---------------------------------------------------------------------------------------------------- measuring
interface Run {
  phase: "small" | "large";
  scenario: string;
  round: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  calls: number;
  codes: Record<string, number>;
  serverCpuMsPerCall: number;
  pgCpuMsPerCall: number;
}
const runs: Run[] = [];
/** The response bytes of each fixed request, per phase: the same rows must come back on large data. */
const responses: Record<string, Record<string, string>> = { small: {}, large: {} };

async function once(s: Scenario, phase: "small" | "large", round: number, warmup: number): Promise<Run> {
  const target = allServers().find((x) => x.url === s.url)!;
  const drive = (secs: number) =>
    s.driver === "h2load"
      ? runH2load({ url: s.url, request: s.request, connections: 1, streams: s.concurrency, seconds: secs, cpus: loadCpus, workDir })
      : closedLoop({ url: s.url, protocol: "grpc", connections: 1, streams: s.concurrency, seconds: secs, next: () => s.request });
  if (warmup > 0) await drive(warmup);
  const pgBefore = cpuSnapshot(await pgPids());
  const before = cpuSnapshot(allServers().map((x) => x.pid));
  const logFrom = statSync(target.logFile).size;
  const result = await drive(seconds);
  const after = cpuSnapshot(allServers().map((x) => x.pid));
  const pgAfter = cpuSnapshot([...new Set([...pgBefore.keys(), ...(await pgPids())])]);
  let codes: Record<string, number>;
  let ok: number;
  let calls: number;
  if ("status2xx" in result) {
    // h2load counts HTTP 200 as success: the codes are the service's own rpc log lines over the window.
    await new Promise((r) => setTimeout(r, 100));
    const text = (await readFile(target.logFile)).subarray(logFrom).toString();
    codes = {};
    for (const m of text.matchAll(/"msg":"rpc".*?"code":"([A-Za-z_]+)"/g)) codes[m[1]!.toUpperCase()] = (codes[m[1]!.toUpperCase()] ?? 0) + 1;
    // Streams h2load resets when its duration ends are logged CANCELED: not failures.
    if ((codes["CANCELED"] ?? 0) <= 2 * s.concurrency) delete codes["CANCELED"];
    const answered = Object.values(codes).reduce((a, b) => a + b, 0);
    ok = answered ? (result.status2xx * (codes["OK"] ?? 0)) / answered : result.status2xx;
    calls = answered || result.done;
  } else {
    codes = result.codes;
    ok = result.ok;
    calls = Object.values(result.codes).reduce((a, b) => a + b, 0);
  }
  const r: Run = {
    phase, scenario: s.key, round,
    reqPerSec: ok / result.seconds,
    p50: percentile(result.latenciesMs, 50),
    p99: percentile(result.latenciesMs, 99),
    calls,
    codes,
    serverCpuMsPerCall: cpuDelta(before, after) / calls,
    pgCpuMsPerCall: cpuDelta(pgBefore, pgAfter) / calls,
  };
  const errs = Object.entries(codes).filter(([c]) => c !== "OK");
  log(`${phase} round ${round}/${rounds} ${s.key.padEnd(10)} ${r.reqPerSec.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} ms  server ${r.serverCpuMsPerCall.toFixed(2)} ms/call  pg ${r.pgCpuMsPerCall.toFixed(2)} ms/call${errs.length ? `  errors ${errs.map(([c, n]) => `${c}:${n}`).join(" ")}` : ""}`);
  return r;
}

async function measure(phase: "small" | "large"): Promise<void> {
  for (const s of scenarios) {
    const [session] = await connect(s.url, 1);
    const r = await call(session!, "grpc", s.request);
    await closeAll([session!]);
    if (r.code !== "OK") throw new Error(`${s.key} answers ${r.code} on ${phase} data, not OK`);
    if (s.driver === "h2load") responses[phase]![s.key] = firstMessage(r.body).toString("base64");
  }
  for (let round = 1; round <= rounds; round++) {
    // The services' code is cold before the first small round: that warm-up is three times as long.
    const warmup = round > 1 ? Math.min(warmupSeconds, 0.5) : phase === "small" ? 3 * warmupSeconds : warmupSeconds;
    for (const s of scenarios) runs.push(await once(s, phase, round, warmup));
  }
}

// ---------------------------------------------------------------------------------------------------- plans
interface Plan {
  phase: "small" | "large" | "large, without the prefix indexes";
  scenario: string;
  source: string;
  text: string;
  params: (string | number)[];
  plan: string;
}
const plans: Plan[] = [];
const literal = (v: string | number) => (typeof v === "number" ? String(v) : `'${v.replace(/'/g, "''")}'`);
async function explain(phase: Plan["phase"], scenario: string, st: Statement, reserved: Pick<postgres.Sql, "unsafe"> = sql): Promise<string> {
  const name = `scale_${scenario}_${plans.length}`;
  await reserved.unsafe(`prepare ${name} as ${st.text}`);
  try {
    const exec = `execute ${name}(${st.params.map(literal).join(", ")})`;
    // A named prepared statement gets custom plans for its first five executions and may switch to the generic
    // plan from the sixth: explaining the sixth shows what the service settles on.
    if (st.prepared) for (let i = 0; i < 5; i++) await reserved.unsafe(exec);
    const rows = await reserved.unsafe<{ "QUERY PLAN": string }[]>(`explain (analyze, buffers) ${exec}`);
    const plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
    plans.push({ phase, scenario, source: st.source, text: st.text, params: st.params, plan });
    return plan;
  } finally {
    await reserved.unsafe(`deallocate ${name}`);
  }
}
async function explainAll(phase: "small" | "large"): Promise<void> {
  for (const s of scenarios) for (const st of s.statements()) await explain(phase, s.key, st);
}

// ---------------------------------------------------------------------------------------------------- large data, in SQL
const seedSeconds: Record<string, number> = {};
async function timed(label: string, f: () => Promise<unknown>): Promise<void> {
  const t = performance.now();
  await f();
  seedSeconds[label] = (performance.now() - t) / 1000;
  log(`  ${label}: ${seedSeconds[label]!.toFixed(1)} s`);
}
async function seedLarge(): Promise<void> {
  log("seeding the large data in SQL…");
  // Every synthetic account has the measured user's password hash (a real argon2id string at production cost),
  // so nothing about the user rows differs from registered ones but their names. One in 100 is a shop owner.
  await timed("users", () => sql`
    insert into identity.users (id, username, email, password_hash, roles, display_name, create_time, update_time)
    select gen_random_uuid(), 'user' || lpad(g::text, 7, '0'), 'user' || lpad(g::text, 7, '0') || '@scale.example.com', ${measuredHash},
           case when g % 100 = 0 then '{shop_owner}'::text[] else '{customer}'::text[] end, 'User ' || g,
           now() - make_interval(secs => g), now() - make_interval(secs => g)
    from generate_series(1, ${large.users - (rowCounts["small"]?.["identity.users"] ?? 0)}::int) g`);
  // 10 shops for each of the 10,000 synthetic shop owners, uniform over the sphere.
  await timed("shops", () => sql`
    insert into address.addresses (id, owner_id, kind, label, line1, city, country_code, latitude, longitude, shop_name, is_default, create_time, update_time)
    select gen_random_uuid(), o.id::text, 'shop', 'Shop ' || k, k || ' Market Street', 'Anytown', 'IN',
           degrees(asin(2 * random() - 1)), random() * 360 - 180, 'Scale shop ' || o.username || '/' || k, k = 0, now(), now()
    from (select id, username from identity.users where username like 'user%' and roles = '{shop_owner}') o
    cross join generate_series(0, ${large.shops / (large.users / 100) - 1}::int) k`);
  // One cart of 10 lines for each of 100,000 synthetic customers.
  await timed("carts", () => sql`
    insert into cart.carts (id, owner_id, name, name_key, version, create_time, update_time)
    select gen_random_uuid(), id::text, 'Weekly', 'weekly', ${large.linesPerCart + 1}, create_time, create_time
    from identity.users where username like 'user%' and roles = '{customer}' order by username limit ${large.carts}`);
  await timed("cart lines", () => sql`
    insert into cart.cart_items (cart_id, product_id, shop_id, name, currency_code, unit_price_minor, quantity, position)
    select c.id, 'p' || k, 'shop-' || (k % 3), 'Product ' || k, 'INR', 1000 + 250 * k, 1 + k % 4, k + 1
    from cart.carts c cross join generate_series(1, ${large.linesPerCart}::int) k
    where c.name_key = 'weekly'`);
  await timed("vacuum analyze", async () => {
    for (const t of ["identity.users", "address.addresses", "cart.carts", "cart.cart_items", "identity.sessions"]) await sql.unsafe(`vacuum (analyze) ${t}`);
  });
}

// ---------------------------------------------------------------------------------------------------- the run
const counts = async () =>
  Object.fromEntries(
    await Promise.all(
      ["identity.users", "identity.sessions", "address.addresses", "cart.carts", "cart.cart_items"].map(async (t) => {
        const [r] = await sql.unsafe<{ n: string }[]>(`select count(*)::text as n from ${t}`);
        return [t, Number(r?.n ?? 0)] as const;
      }),
    ),
  );
const rowCounts: Record<string, Record<string, number>> = {};
const sizes: Record<string, string> = {};
try {
  rowCounts["small"] = await counts();
  await explainAll("small");
  await measure("small");
  await seedLarge();
  rowCounts["large"] = await counts();
  for (const r of await sql<{ t: string; size: string }[]>`
    select n.nspname || '.' || c.relname as t, pg_size_pretty(pg_total_relation_size(c.oid)) as size
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname in ('identity', 'address', 'cart') and c.relname in ('users', 'addresses', 'carts', 'cart_items')`)
    sizes[r.t] = r.size;
  await explainAll("large");
  // The finding behind migration 0006: without the text_pattern_ops indexes the prefix search reads the whole
  // table. Dropped inside a transaction that is rolled back.
  await sql.begin(async (tx) => {
    await tx.unsafe(`drop index identity.users_username_lower_prefix_idx, identity.users_email_lower_prefix_idx`);
    await explain("large, without the prefix indexes", "listusers", scenarios.find((s) => s.key === "listusers")!.statements()[0]!, tx);
    throw new Error("rollback");
  }).catch((e: unknown) => {
    if (!(e instanceof Error && e.message === "rollback")) throw e;
  });
  await measure("large");
  rowCounts["large (after the runs)"] = await counts();

  // ---------------------------------------------------------------------------------------------------- report
  const median = (xs: number[]) => percentile(xs, 50);
  const summary = scenarios.map((s) => {
    const of = (phase: "small" | "large") => runs.filter((r) => r.phase === phase && r.scenario === s.key);
    const sm = of("small");
    const lg = of("large");
    const rate = (rs: Run[]) => median(rs.map((r) => r.reqPerSec));
    const ratio = rate(lg) / rate(sm);
    const errors = [...sm, ...lg].flatMap((r) => Object.entries(r.codes).filter(([c]) => c !== "OK").map(([c, n]) => `${r.phase}/${r.round} ${c}:${n}`));
    return {
      scenario: s.key,
      name: s.name,
      small: { reqPerSec: rate(sm), p50: median(sm.map((r) => r.p50)), p99: median(sm.map((r) => r.p99)), pgCpuMsPerCall: median(sm.map((r) => r.pgCpuMsPerCall)), minMax: [Math.min(...sm.map((r) => r.reqPerSec)), Math.max(...sm.map((r) => r.reqPerSec))] },
      large: { reqPerSec: rate(lg), p50: median(lg.map((r) => r.p50)), p99: median(lg.map((r) => r.p99)), pgCpuMsPerCall: median(lg.map((r) => r.pgCpuMsPerCall)), minMax: [Math.min(...lg.map((r) => r.reqPerSec)), Math.max(...lg.map((r) => r.reqPerSec))] },
      ratio,
      met: ratio >= 1 / 1.5 && errors.length === 0,
      sameResponse: s.driver === "h2load" ? responses["small"]![s.key] === responses["large"]![s.key] : undefined,
      errors,
    };
  });
  const date = new Date().toISOString().slice(0, 10);
  const results = {
    date: new Date().toISOString(),
    machine: { ...host, node: process.version, postgres: pgVersion, postgresSettings: pgSettings, h2load: h2loadVersion() ?? "" },
    settings: { seconds, warmupSeconds, rounds, streams, loginConcurrency, pinning, large },
    rowCounts,
    tableSizes: sizes,
    seedSeconds,
    summary,
    runs,
    plans,
    errorLogLines: Object.fromEntries(allServers().map((s) => [s.name, errorLines(s.logFile).length])),
    totalSeconds: (performance.now() - started) / 1000,
  };
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "–");
  const md: string[] = [
    `# Reads on small and large data — ${date}`,
    "",
    "`npm run bench:scale` (bench/scale.ts). The machine was shared with other work during this run (load average",
    `${host.loadAverage} at the end): the numbers are indicative; the plans are the proof.`,
    "",
    "## Machine and settings",
    "",
    `- ${host.nproc} cores (${host.cpuModel}), ${host.memoryGiB.toFixed(1)} GiB; Node ${process.version}; ${pgVersion.split(" on ")[0]}; ${h2loadVersion()?.split("\n")[0] ?? ""}`,
    `- PostgreSQL settings: ${Object.entries(pgSettings).map(([k, v]) => `${k} = ${v || "''"}`).join(", ")}`,
    `- ${pinning}`,
    `- each run: ${warmupSeconds} s warm-up (${3 * warmupSeconds} s in the first small round, 0.5 s in later rounds) + ${seconds} s; ${rounds} round(s) per data set, the scenarios interleaved in each round; h2load 1 connection × ${streams} streams; Login through the Node client, ${loginConcurrency} calls at once on one account`,
    "- figures are the median over rounds (min–max of req/s in brackets); ratio = large req/s ÷ small req/s, target ≥ 0.67 (cost within 1.5×)",
    "",
    "## Data",
    "",
    "Small: what the API created — the measured user with 3 carts of 5 lines, 4 shop owners with 200 shops within 4.1 km of",
    `the search point, the administrator; ListUsers searches login_prefix \`${loginPrefix}\` (the 5 accounts the bench registered under it).`,
    "Large: the same rows plus, in SQL (INSERT … SELECT over generate_series): users `user0000001`… sharing the measured",
    "user's argon2id hash (1 in 100 a shop owner), 10 shops per synthetic shop owner uniform over the globe, one cart of 10",
    "lines for each of 100,000 synthetic customers; then VACUUM (ANALYZE) of the seeded tables.",
    `Seeding took ${Object.entries(seedSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ")}.`,
    "",
    "| table | small | large | large, after the runs | size (large) |",
    "|---|---|---|---|---|",
    ...Object.keys(rowCounts["large"] ?? {}).map((t) => `| ${t} | ${rowCounts["small"]?.[t]} | ${rowCounts["large"]?.[t]} | ${rowCounts["large (after the runs)"]?.[t]} | ${sizes[t] ?? ""} |`),
    "",
    "identity.sessions grows with every Login call; it is not part of the seeded data.",
    "",
    "## Results",
    "",
    "| scenario | small req/s | small p50 / p99 ms | large req/s | large p50 / p99 ms | ratio | PostgreSQL CPU ms/call small → large | same response | target |",
    "|---|---|---|---|---|---|---|---|---|",
    ...summary.map(
      (s) =>
        `| ${s.name} | ${f(s.small.reqPerSec)} (${f(s.small.minMax[0]!)}–${f(s.small.minMax[1]!)}) | ${f(s.small.p50, 1)} / ${f(s.small.p99, 1)} | ${f(s.large.reqPerSec)} (${f(s.large.minMax[0]!)}–${f(s.large.minMax[1]!)}) | ${f(s.large.p50, 1)} / ${f(s.large.p99, 1)} | ${f(s.ratio, 2)} | ${f(s.small.pgCpuMsPerCall, 2)} → ${f(s.large.pgCpuMsPerCall, 2)} | ${s.sameResponse === undefined ? "– (fresh tokens)" : s.sameResponse ? "yes" : "no"} | ${s.met ? "met" : `missed${s.errors.length ? ` (errors: ${s.errors.join(", ")})` : ""}`} |`,
    ),
    "",
    "## Plans",
    "",
    "Each statement is the one the service's store code builds (source named), prepared and executed with the",
    "parameters of the measured request; statements the service prepares are explained at their 6th execution",
    "(PostgreSQL's plan cache may switch to a generic plan from then on), the unprepared ListUsers query at its first.",
    "",
    "Finding: on 1 M users the ListUsers prefix search was a sequential scan of identity.users. The unique",
    "`lower(username)` / `lower(email)` indexes compare by the database's collation (C.UTF-8 here, not C), which",
    "LIKE 'prefix%' cannot use. Migration `services/identity/migrations/0006_users_login_prefix_indexes.sql` adds",
    "`text_pattern_ops` indexes on both expressions; the plan below without them (dropped in a rolled-back",
    "transaction) is the before.",
    "",
  ];
  for (const s of scenarios) {
    md.push(`### ${s.name}`, "");
    const first = plans.find((p) => p.scenario === s.key);
    for (const st of s.statements()) {
      md.push(`${st.source}:`, "", "```sql", plans.find((p) => p.scenario === s.key && p.source === st.source)?.text ?? st.text, "```", "");
      for (const p of plans.filter((x) => x.scenario === s.key && x.source === st.source)) {
        md.push(`${p.phase} (parameters ${p.params.map(literal).join(", ")}):`, "", "```", p.plan, "```", "");
      }
    }
    if (!first) md.push("(no plan captured)", "");
  }
  const largeSeqScans = plans.filter((p) => p.phase === "large" && /Seq Scan/.test(p.plan)).map((p) => `${p.scenario} (${p.source})`);
  md.push(
    "## Notes",
    "",
    `- Sequential scans in the large-data plans: ${largeSeqScans.length ? largeSeqScans.join(", ") : "none"}. Where a small-data plan shows one, the table is a page or two and the planner prefers reading it whole.`,
    "- The statement texts are copied from the store code, not captured from the server: pg_stat_statements is available",
    `  but not loaded (shared_preload_libraries = '${pgSettings["shared_preload_libraries"] ?? ""}') and loading it takes a server restart on a shared machine.`,
    "- Large-data runs can come out faster than small-data ones: the other work on the machine changes from run to run (see",
    "  the min–max). PostgreSQL CPU per call, from the backends of the bench database, is the steadier figure of what the data",
    "  size costs.",
    `- Service error log lines during the run: ${Object.entries(results.errorLogLines).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    `- Total run time ${f(results.totalSeconds)} s. Raw runs and plans: the .json beside this file.`,
    "",
  );
  const outDir = value("out") ?? join(root, "bench", "results");
  await mkdir(outDir, { recursive: true });
  const base = join(outDir, `scale-${date}`);
  await writeFile(`${base}.json`, JSON.stringify(results, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
  await writeFile(`${base}.md`, md.join("\n"));
  log(`wrote ${base}.md and ${base}.json`);
} finally {
  await cleanup();
  await rm(workDir, { recursive: true, force: true });
}
process.exit(0);
