import { and, eq, gt, inArray, lt, sql } from "drizzle-orm";
import { rowsOf, type Db } from "@local-e-grocery/platform/db.js";
import { loginThrottle, loginThrottleReservations, registrationThrottle } from "../schema.js";

/**
 * Queries over the login and registration throttles' tables. Raw SQL gets ISO strings: the postgres.js driver
 * under drizzle does not serialise Date parameters.
 */
export interface ThrottleQueries {
  /**
   * Locks the counter rows of `keys` until the transaction ends, in the order given (callers pass one order, so
   * two transactions sharing keys cannot deadlock), creating absent ones with no failures, in one statement; the
   * failures, last failure time and lock end of each key.
   */
  lockThrottleKeys(keys: readonly string[], now: Date): Promise<Map<string, { failures: number; lastFailureTime: Date; lockedUntil: Date | null }>>;
  /**
   * Slots on each of `keys` that have not expired at `now` (absent keys have none). Run after the keys' rows
   * are locked: a statement of its own, so it sees every slot committed before the locks were granted.
   */
  countReservations(keys: readonly string[], now: Date): Promise<Map<string, number>>;
  /** Holds a slot of `attemptId` on each key until `expireTime`. */
  insertReservations(attemptId: string, keys: readonly string[], expireTime: Date): Promise<void>;
  /** Frees the slots of `attemptId` and forgets the counters (failures and locks) of `forget`, in one statement. */
  releaseReservations(attemptId: string, forget: readonly string[]): Promise<void>;
  /** Counts one failure on `key` (starting again after a failure older than `resetBefore`); the failures now. */
  countFailure(key: string, now: Date, resetBefore: Date): Promise<number>;
  setThrottleLock(key: string, lockedUntil: Date): Promise<void>;
  /** Deletes counters whose last failure is before `quietBefore` and that are not locked at `now`. */
  deleteQuietThrottleKeys(quietBefore: Date, now: Date): Promise<void>;
  deleteReservationsExpiredBefore(time: Date): Promise<void>;
  /**
   * Counts one registration attempt on `key` in one upsert: a window that started at or before `windowOver`
   * restarts at `now`; attempts are capped at `cap`. The attempts in the window and its start.
   */
  countRegistration(key: string, now: Date, windowOver: Date, cap: number): Promise<{ attempts: number; windowStart: Date } | undefined>;
  deleteRegistrationWindowsBefore(time: Date): Promise<void>;
}

export function throttleQueries(db: Db): ThrottleQueries {
  return {
    async lockThrottleKeys(keys, now) {
      if (keys.length === 0) return new Map();
      // An upsert that always writes locks the row even when it was deleted (by a success or pruning) a moment
      // ago, which `insert … do nothing` followed by `select … for update` would miss. VALUES rows are taken
      // in the order written, so the locks are too.
      const at = now.toISOString();
      const rows = sql.join(
        keys.map((key) => sql`(${key}, 0, ${at}::timestamptz)`),
        sql`, `,
      );
      type Row = { key: string; failures: number; last_failure_time: string | Date; locked_until: string | Date | null };
      const result = await db.execute<Row>(sql`
          insert into ${loginThrottle} (key, failures, last_failure_time)
          values ${rows}
          on conflict (key) do update set failures = ${loginThrottle.failures}
          returning key, failures, last_failure_time, locked_until`);
      return new Map(
        rowsOf<Row>(result).map((row) => [
          row.key,
          { failures: Number(row.failures), lastFailureTime: new Date(row.last_failure_time), lockedUntil: row.locked_until ? new Date(row.locked_until) : null },
        ]),
      );
    },
    async countReservations(keys, now) {
      if (keys.length === 0) return new Map();
      const counted = await db
        .select({ key: loginThrottleReservations.key, n: sql<number>`count(*)::int` })
        .from(loginThrottleReservations)
        .where(and(inArray(loginThrottleReservations.key, [...keys]), gt(loginThrottleReservations.expireTime, now)))
        .groupBy(loginThrottleReservations.key);
      return new Map(counted.map((c) => [c.key, Number(c.n)]));
    },
    async insertReservations(attemptId, keys, expireTime) {
      await db.insert(loginThrottleReservations).values(keys.map((key) => ({ attemptId, key, expireTime })));
    },
    async releaseReservations(attemptId, forget) {
      if (forget.length === 0) {
        await db.delete(loginThrottleReservations).where(eq(loginThrottleReservations.attemptId, attemptId));
        return;
      }
      await db.execute(sql`
        with freed as (delete from ${loginThrottleReservations} where ${loginThrottleReservations.attemptId} = ${attemptId})
        delete from ${loginThrottle} where ${inArray(loginThrottle.key, [...forget])}`);
    },
    async countFailure(key, now, resetBefore) {
      const result = await db.execute<{ failures: number }>(sql`
        insert into ${loginThrottle} (key, failures, last_failure_time)
        values (${key}, 1, ${now.toISOString()}::timestamptz)
        on conflict (key) do update set
          failures = case when ${loginThrottle.lastFailureTime} < ${resetBefore.toISOString()}::timestamptz then 1 else ${loginThrottle.failures} + 1 end,
          last_failure_time = excluded.last_failure_time
        returning failures`);
      return Number(rowsOf<{ failures: number }>(result)[0]?.failures ?? 0);
    },
    async setThrottleLock(key, lockedUntil) {
      await db.update(loginThrottle).set({ lockedUntil }).where(eq(loginThrottle.key, key));
    },
    async deleteQuietThrottleKeys(quietBefore, now) {
      await db
        .delete(loginThrottle)
        .where(and(lt(loginThrottle.lastFailureTime, quietBefore), sql`coalesce(${loginThrottle.lockedUntil} < ${now.toISOString()}::timestamptz, true)`));
    },
    async deleteReservationsExpiredBefore(time) {
      await db.delete(loginThrottleReservations).where(lt(loginThrottleReservations.expireTime, time));
    },
    async countRegistration(key, now, windowOver, cap) {
      const result = await db.execute<{ attempts: number; window_start: string | Date }>(sql`
        insert into ${registrationThrottle} (key, window_start, attempts)
        values (${key}, ${now.toISOString()}::timestamptz, 1)
        on conflict (key) do update set
          window_start = case when ${registrationThrottle.windowStart} <= ${windowOver.toISOString()}::timestamptz then excluded.window_start else ${registrationThrottle.windowStart} end,
          attempts = case when ${registrationThrottle.windowStart} <= ${windowOver.toISOString()}::timestamptz then 1 else least(${registrationThrottle.attempts} + 1, ${cap}) end
        returning attempts, window_start`);
      const row = rowsOf<{ attempts: number; window_start: string | Date }>(result)[0];
      return row && { attempts: Number(row.attempts), windowStart: new Date(row.window_start) };
    },
    async deleteRegistrationWindowsBefore(time) {
      await db.delete(registrationThrottle).where(lt(registrationThrottle.windowStart, time));
    },
  };
}
