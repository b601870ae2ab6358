import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";

/** The drizzle handle services use; the same type whether it runs on postgres.js or PGlite. */
export type Db = PgDatabase<PgQueryResultHKT>;

export interface Database {
  readonly db: Db;
  readonly kind: "postgres" | "pglite";
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent an embedded PGlite database is opened under `dataDir`. */
  url?: string | undefined;
  dataDir: string;
  /** Pool size for postgres.js. */
  maxConnections?: number;
}

/** Opens PostgreSQL through postgres.js when a URL is given, otherwise PGlite under `dataDir`. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) {
    const { default: postgres } = await import("postgres");
    const { drizzle } = await import("drizzle-orm/postgres-js");
    const client = postgres(options.url, {
      max: options.maxConnections ?? 10,
      onnotice: () => {},
      connect_timeout: 5,
      // Sessions talk in UTC; timestamps are timestamptz anyway.
      connection: { TimeZone: "UTC", application_name: "grocery" },
    });
    const db = drizzle({ client }) as unknown as Db;
    return {
      db,
      kind: "postgres",
      ping: async () => {
        await client`select 1`;
      },
      close: () => client.end({ timeout: 5 }),
    };
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  await mkdir(options.dataDir, { recursive: true });
  const client = await PGlite.create(join(options.dataDir, "pglite"));
  const db = drizzle({ client }) as unknown as Db;
  let closed = false;
  return {
    db,
    kind: "pglite",
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
