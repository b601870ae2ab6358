import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { backoffDelayMs } from "./backoff.js";
import { throwIfCallCancelled } from "./call-scope.js";

/** The drizzle handle services use; the same type whether it runs on postgres.js or PGlite. */
export type Db = PgDatabase<PgQueryResultHKT>;

export interface Database {
  readonly db: Db;
  readonly kind: "postgres" | "pglite";
  /** Resolves when the database answers a trivial query within `timeoutMs`; rejects otherwise. */
  ping(timeoutMs: number): Promise<void>;
  /** Closes the connections; queries still running after `timeoutMs` are cut. */
  close(timeoutMs?: number): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent an embedded PGlite database is opened under `dataDir`. */
  url?: string | undefined;
  dataDir: string;
  /** Pool size for postgres.js. */
  maxConnections?: number;
  /** Longest wait for a new PostgreSQL connection. */
  connectTimeoutMs?: number;
  /** PostgreSQL `statement_timeout`: the server cancels any statement that runs longer. */
  statementTimeoutMs?: number;
  /** Longest wait before reconnecting after a lost connection (postgres.js grows it to 20 s by itself). */
  maxReconnectDelayMs?: number;
}

/** Opens PostgreSQL through postgres.js when a URL is given, otherwise PGlite under `dataDir`. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) {
    const { default: postgres } = await import("postgres");
    const { drizzle } = await import("drizzle-orm/postgres-js");
    const maxReconnectDelayMs = options.maxReconnectDelayMs ?? 1000;
    const settings = {
      onnotice: () => {},
      connect_timeout: (options.connectTimeoutMs ?? 2000) / 1000,
      // Bounded, jittered: after an outage the pool is back within a second of the database.
      // postgres.js counts retries from 0 and wants seconds.
      backoff: (retries: number) => backoffDelayMs(retries + 1, { initialMs: 50, maxMs: maxReconnectDelayMs }) / 1000,
      // Detects a silently dropped connection (no RST) at the TCP level instead of never.
      keep_alive: 10,
      idle_timeout: 60,
      // Sessions talk in UTC; timestamps are timestamptz anyway.
      connection: {
        TimeZone: "UTC",
        application_name: "grocery",
        statement_timeout: options.statementTimeoutMs ?? 5000,
        // Stores' write transactions rely on READ COMMITTED (see store-boundary.ts): set for the session at
        // connect time, so no transaction pays a SET TRANSACTION round trip for it.
        default_transaction_isolation: "read committed" as const,
        idle_in_transaction_session_timeout: Math.max(10_000, (options.statementTimeoutMs ?? 5000) * 2),
      },
    };
    const client = postgres(options.url, { ...settings, max: options.maxConnections ?? 10 });
    const db = rollbackCancelled(drizzle({ client: preparingEveryQuery(client) }) as unknown as Db);
    // Health pings use a connection of their own: a pool busy with (or stuck on) calls must not look like an
    // outage, and a ping stuck on a dead connection is thrown away with its connection.
    let pinger = postgres(options.url, { ...settings, max: 1 });
    return {
      db,
      kind: "postgres",
      ping: async (timeoutMs) => {
        const current = pinger;
        const query = current`select 1`;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            query,
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(Object.assign(new Error("database ping timed out"), { code: "ETIMEDOUT" })), timeoutMs);
            }),
          ]);
        } catch (e) {
          if (current === pinger) {
            pinger = postgres(options.url ?? "", { ...settings, max: 1 });
            void current.end({ timeout: 0 }).catch(() => {});
          }
          throw e;
        } finally {
          clearTimeout(timer);
        }
      },
      close: async (timeoutMs = 5000) => {
        await Promise.all([client.end({ timeout: timeoutMs / 1000 }), pinger.end({ timeout: 0 })]);
      },
    };
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  await mkdir(options.dataDir, { recursive: true });
  const client = await PGlite.create(join(options.dataDir, "pglite"), {
    // The embedded database serves one developer's process: PostgreSQL's server-sized buffers (128 MB of shared
    // buffers) would be most of its memory. Measured on an existing data dir: 364 MiB RSS with the defaults,
    // 246 MiB with these, and a faster start.
    startParams: [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB", "-c", "work_mem=2MB", "-c", "maintenance_work_mem=16MB", "-c", "temp_buffers=2MB", "-c", "wal_buffers=1MB"],
  });
  const db = rollbackCancelled(drizzle({ client }) as unknown as Db);
  let closed = false;
  return {
    db,
    kind: "pglite",
    // In-process: nothing to time out.
    ping: async () => {
      if (closed) throw new Error("PGlite is closed");
      await client.query("select 1");
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}

/**
 * drizzle sends every query it did not `.prepare()` through postgres.js's `unsafe(…, { prepare: false })`, so
 * PostgreSQL parses and plans it anew each time (0.13 ms of planning for a primary-key select that runs in 0.05
 * ms prepared). postgres.js keeps prepared statements per connection, keyed by their text, so asking it to
 * prepare every query costs one extra Parse the first time a connection sees a text and nothing after. Our
 * queries' texts come from code (values are always parameters), so the set per connection stays bounded. The
 * connection of a transaction (`begin`, `savepoint`) is a different handle and is wrapped the same way.
 */
function preparingEveryQuery<S extends object>(sql: S): S {
  return new Proxy(sql, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (property === "unsafe") {
        return (query: string, args?: unknown[], options?: object) => value.call(target, query, args, { ...options, prepare: true });
      }
      if (property === "begin" || property === "savepoint") {
        // begin(fn), begin(mode, fn); savepoint(fn), savepoint(name, fn): the callback comes last.
        return (...args: unknown[]) => {
          const fn = args.at(-1);
          if (typeof fn !== "function") return value.apply(target, args);
          return value.apply(target, [...args.slice(0, -1), (inner: object) => fn(preparingEveryQuery(inner))]);
        };
      }
      return value;
    },
  });
}

/**
 * Makes every transaction of a cancelled call roll back: one whose call was cancelled before it began never
 * starts, and one whose call was cancelled while it ran is rolled back instead of committed. Work for a client
 * that went away (a reset stream, a passed deadline) is thus undone, never half-kept.
 * A statement already running is not cancelled: a cancel request opens a connection to PostgreSQL of its own, so a
 * client resetting streams in a loop would turn each reset into a connection; statement_timeout bounds it instead.
 */
export function rollbackCancelled(db: Db): Db {
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn, config) =>
    transaction(async (tx) => {
      throwIfCallCancelled();
      const result = await fn(tx);
      throwIfCallCancelled();
      return result;
    }, config)) as Db["transaction"];
  return db;
}

/**
 * A query built once per database handle rather than on every call: `build` makes it with `sql.placeholder`s and
 * ends in `.prepare(name)`, which skips drizzle's query building on every call (every statement is prepared on
 * PostgreSQL either way, see preparingEveryQuery).
 * A transaction handle gets its own, dropped with it.
 */
export function preparedPerHandle<Q>(build: (db: Db) => Q): (db: Db) => Q {
  const byHandle = new WeakMap<Db, Q>();
  return (db) => {
    let query = byHandle.get(db);
    if (query === undefined) byHandle.set(db, (query = build(db)));
    return query;
  };
}

interface Journal {
  entries: { idx: number; tag: string }[];
}

/**
 * Applies the drizzle-kit migrations in `folder` that `schema` has not seen yet, in one transaction under a
 * Postgres advisory lock, so replicas starting together apply each migration exactly once.
 */
export async function migrate(db: Db, options: { schema: string; folder: string }): Promise<string[]> {
  const journal = JSON.parse(await readFile(join(options.folder, "meta", "_journal.json"), "utf8")) as Journal;
  const files = await Promise.all(
    journal.entries.map(async (e) => ({ tag: e.tag, sql: await readFile(join(options.folder, `${e.tag}.sql`), "utf8") })),
  );
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${"grocery.migrate." + options.schema}))`);
    // Services starting together on a fresh database would race to create the shared bookkeeping table
    // (`create table if not exists` is not safe under concurrency): one lock for that step across all schemas.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${"grocery.migrate"}))`);
    await tx.execute(sql`create table if not exists public.schema_migrations (
      schema_name text not null, tag text not null, applied_at timestamptz not null default now(),
      primary key (schema_name, tag))`);
    const done = await tx.execute<{ tag: string }>(
      sql`select tag from public.schema_migrations where schema_name = ${options.schema}`,
    );
    const seen = new Set(rowsOf<{ tag: string }>(done).map((r) => r.tag));
    const applied: string[] = [];
    for (const file of files) {
      if (seen.has(file.tag)) continue;
      for (const statement of file.sql.split("--> statement-breakpoint")) {
        if (statement.trim() !== "") await tx.execute(sql.raw(statement));
      }
      await tx.execute(sql`insert into public.schema_migrations (schema_name, tag) values (${options.schema}, ${file.tag})`);
      applied.push(file.tag);
    }
    return applied;
  });
}

/** Rows of a raw `execute` result: postgres.js returns an array, PGlite an object with `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
