import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { and, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../../platform/src/db.js";
import { rowsOf } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import type { ThrottleConfig } from "./config.js";
import { loginThrottle } from "./schema.js";

/** One counter: a hashed key and the failures it tolerates before locking. */
export interface ThrottleKey {
  readonly id: string;
  readonly maxFailures: number;
}

/**
 * Brute-force defence in the manner of Keycloak's: each failure counts against the account key (the typed
 * login, so unknown accounts behave exactly like known ones) and against the client IP. Once a counter reaches
 * its threshold every further failure locks it for `waitIncrement × (failures − threshold + 1)`, capped at
 * `maxWait`; a counter with no failure for `failureReset` starts again. While any key of an attempt is locked
 * the attempt is refused before the password is looked at, with RESOURCE_EXHAUSTED and a `retry-after`
 * (seconds) in the error metadata. State is in Postgres, so replicas share it.
 *
 * An attempt is admitted and counted as a failure in one transaction holding the counters' rows (`admit`), before
 * the password is checked; a success then takes its count back (`succeed`, `release`). Checking first and
 * counting after the slow hash would let a burst of concurrent guesses all pass the check before any of them
 * counted, so the lock would never stop them.
 */
export function createLoginThrottle(options: { db: Db; clock: Clock; config: ThrottleConfig }) {
  const { db, clock, config } = options;
  const hashed = (raw: string) => createHash("sha256").update(raw).digest("base64url");

  const throttle = {
    /** The counter of a typed login (username or email, compared ignoring case and surrounding space). */
    accountKey(login: string): ThrottleKey {
      return { id: hashed(`login:${login.trim().toLowerCase()}`), maxFailures: config.accountMaxFailures };
    },
    /** The counter of re-authentication (current password checks) by a signed-in user. */
    userKey(userId: string): ThrottleKey {
      return { id: hashed(`user:${userId}`), maxFailures: config.accountMaxFailures };
    },
    /** The counter of a client address; none when the address is unknown. */
    ipKeys(ip: string): ThrottleKey[] {
      return ip === "" ? [] : [{ id: hashed(`ip:${ip}`), maxFailures: config.ipMaxFailures }];
    },

    /**
     * Admits one attempt: RESOURCE_EXHAUSTED with a retry delay when any of `keys` is locked now, otherwise one
     * failure is counted against each key at once (locking those that reach their threshold). Concurrent attempts
     * on a key queue on its row, so no more than its threshold get past before it locks. Call `succeed` or
     * `release` when the attempt turns out right.
     */
    async admit(keys: readonly ThrottleKey[]): Promise<void> {
      if (keys.length === 0) return;
      const now = clock();
      // One order for every attempt, so two attempts sharing keys cannot deadlock.
      const sorted = [...keys].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      await db.transaction(async (tx) => {
        let until = 0;
        for (const key of sorted) {
          await tx.execute(sql`
            insert into ${loginThrottle} (key, failures, last_failure_time)
            values (${key.id}, 0, ${new Date(now).toISOString()}::timestamptz)
            on conflict (key) do nothing`);
          const [row] = await tx.select({ lockedUntil: loginThrottle.lockedUntil }).from(loginThrottle).where(eq(loginThrottle.key, key.id)).for("update");
          until = Math.max(until, row?.lockedUntil?.getTime() ?? 0);
        }
        if (until > now) throw throttled(Math.ceil((until - now) / 1000));
        await throttle.fail(sorted, tx);
      });
    },

    /** Takes back the failure `admit` counted against `keys` for an attempt that was right, and the lock it may have set. */
    async release(keys: readonly ThrottleKey[]): Promise<void> {
      for (const key of keys) {
        await db
          .update(loginThrottle)
          .set({
            failures: sql`greatest(${loginThrottle.failures} - 1, 0)`,
            lockedUntil: sql`case when ${loginThrottle.failures} - 1 < ${key.maxFailures} then null else ${loginThrottle.lockedUntil} end`,
          })
          .where(eq(loginThrottle.key, key.id));
      }
    },

    /** Counts one failure against each key, locking those past their threshold. Runs in the caller's transaction when given one. */
    async fail(keys: readonly ThrottleKey[], tx: Db = db): Promise<void> {
      const now = clock();
      // Raw SQL gets ISO strings: the postgres.js driver under drizzle does not serialise Date parameters.
      const resetBefore = new Date(now - config.failureReset * 1000).toISOString();
      for (const key of keys) {
        const result = await tx.execute<{ failures: number }>(sql`
          insert into ${loginThrottle} (key, failures, last_failure_time)
          values (${key.id}, 1, ${new Date(now).toISOString()}::timestamptz)
          on conflict (key) do update set
            failures = case when ${loginThrottle.lastFailureTime} < ${resetBefore}::timestamptz then 1 else ${loginThrottle.failures} + 1 end,
            last_failure_time = excluded.last_failure_time
          returning failures`);
        const failures = Number(rowsOf<{ failures: number }>(result)[0]?.failures ?? 0);
        if (failures >= key.maxFailures) {
          const waitSeconds = Math.min(config.maxWait, config.waitIncrement * (failures - key.maxFailures + 1));
          await tx.update(loginThrottle).set({ lockedUntil: new Date(now + waitSeconds * 1000) }).where(eq(loginThrottle.key, key.id));
        }
      }
    },

    /** Forgets the failures of an account key after a successful login (IP counters only decay with time). */
    async succeed(key: ThrottleKey): Promise<void> {
      await db.delete(loginThrottle).where(eq(loginThrottle.key, key.id));
    },

    /** Deletes counters that have been quiet for longer than the reset time and are not locked. */
    async prune(): Promise<void> {
      const now = clock();
      await db
        .delete(loginThrottle)
        .where(and(lt(loginThrottle.lastFailureTime, new Date(now - config.failureReset * 1000)), sql`coalesce(${loginThrottle.lockedUntil} < ${new Date(now).toISOString()}::timestamptz, true)`));
    },
  };
  return throttle;
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

function throttled(retryAfterSeconds: number): ConnectError {
  const seconds = Math.max(1, retryAfterSeconds);
  return new ConnectError(`too many failed attempts; retry in ${seconds} s`, Code.ResourceExhausted, { "retry-after": String(seconds) });
}
