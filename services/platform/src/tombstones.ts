import { and, eq, gt, lt, sql } from "drizzle-orm";
import { index, text, timestamp, type PgSchema } from "drizzle-orm/pg-core";
import type { Db } from "./db.js";
import { permissionDenied, type DomainError } from "./errors.js";

/**
 * Purge tombstones, shared by every service that keeps user data. UserDataService/PurgeUser deletes a user's data
 * and leaves a tombstone for the user id that refuses the user's writes until the access tokens issued before the
 * purge have expired (PURGE_TOMBSTONE_TTL, read by user-data.ts), so a deleted account's still-valid token cannot
 * create data that outlives the purge. Each service keeps the table in its own Postgres schema (it owns its
 * data) and calls these helpers from its store, inside the transactions it opens.
 */

/**
 * The `purge_tombstones` table in `schema`, for the service's schema.ts: one row per purged user, live while
 * `until` lies ahead. Expired rows are ignored and pruned by the next purge.
 */
export function purgeTombstonesTable(schema: PgSchema) {
  return schema.table(
    "purge_tombstones",
    {
      /** The purged user's id (the token's `sub`). */
      userId: text("user_id").primaryKey(),
      until: timestamp("until", { withTimezone: true, mode: "date" }).notNull(),
    },
    (t) => [index("purge_tombstones_until_idx").on(t.until)],
  );
}

export type PurgeTombstones = ReturnType<typeof purgeTombstonesTable>;

/** True while `userId` has a live tombstone in `table` (its `until` is after `now`, ms). */
export async function isPurged(tx: Db, table: PurgeTombstones, userId: string, now: number): Promise<boolean> {
  const rows = await tx
    .select({ userId: table.userId })
    .from(table)
    .where(and(eq(table.userId, userId), gt(table.until, new Date(now))))
    .limit(1);
  return rows.length > 0;
}

/**
 * Records (or extends, never shortens) `userId`'s tombstone up to `until` (ms), and deletes every tombstone that
 * expired before `now`. Run it in the purge's transaction, so the tombstone commits with the deletion.
 */
export async function leaveTombstone(tx: Db, table: PurgeTombstones, userId: string, until: number, now: number): Promise<void> {
  await tx.delete(table).where(lt(table.until, new Date(now)));
  await tx
    .insert(table)
    .values({ userId, until: new Date(until) })
    .onConflictDoUpdate({ target: table.userId, set: { until: sql`greatest(${table.until}, excluded.until)` } });
}

/**
 * The error for a write by a user with a live tombstone. PERMISSION_DENIED, not FAILED_PRECONDITION: it is about
 * the caller, not the state of what they write, and nothing the caller can change lifts it.
 */
export function accountDeleted(): DomainError {
  return permissionDenied("this account has been deleted");
}
