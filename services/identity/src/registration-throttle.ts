import { createHash } from "node:crypto";
import { lt, sql } from "drizzle-orm";
import type { Db } from "../../platform/src/db.js";
import { rowsOf } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import type { RegistrationThrottleConfig } from "./config.js";
import { throttled } from "./login-throttle.js";
import { registrationThrottle } from "./schema.js";

/**
 * Register limit per client IP: at most `ipMaxAttempts` registrations in each window of `window` seconds. Every
 * well-formed attempt counts, the ones that find the username or email taken too: ALREADY_EXISTS says an
 * address has an account, so without a limit Register is an unthrottled enumeration oracle (and each success
 * costs an argon2 hash and a welcome mail). Malformed requests are refused before they count; they reveal
 * nothing and cost nothing.
 */
export function createRegistrationThrottle(options: { db: Db; clock: Clock; config: RegistrationThrottleConfig }) {
  const { db, clock, config } = options;
  const keyOf = (ip: string) => createHash("sha256").update(`register-ip:${ip}`).digest("base64url");

  return {
    /**
     * Counts one attempt from `ip` before anything about the request is looked up; RESOURCE_EXHAUSTED with a
     * `retry-after` (seconds, to the end of the window) when the address has used up its window. Counting and
     * checking are one upsert on the address's row, so concurrent attempts cannot get past the limit together.
     * Addresses that are unknown ("") are not limited.
     */
    async admit(ip: string): Promise<void> {
      if (ip === "") return;
      const now = clock();
      // Raw SQL gets ISO strings: the postgres.js driver under drizzle does not serialise Date parameters.
      const nowIso = new Date(now).toISOString();
      const windowOver = new Date(now - config.window * 1000).toISOString();
      // Refused attempts keep counting, capped just past the limit; they never extend the window.
      const result = await db.execute<{ attempts: number; window_start: string | Date }>(sql`
        insert into ${registrationThrottle} (key, window_start, attempts)
        values (${keyOf(ip)}, ${nowIso}::timestamptz, 1)
        on conflict (key) do update set
          window_start = case when ${registrationThrottle.windowStart} <= ${windowOver}::timestamptz then excluded.window_start else ${registrationThrottle.windowStart} end,
          attempts = case when ${registrationThrottle.windowStart} <= ${windowOver}::timestamptz then 1 else least(${registrationThrottle.attempts} + 1, ${config.ipMaxAttempts + 1}) end
        returning attempts, window_start`);
      const row = rowsOf<{ attempts: number; window_start: string | Date }>(result)[0];
      if (!row || Number(row.attempts) <= config.ipMaxAttempts) return;
      const windowEnd = new Date(row.window_start).getTime() + config.window * 1000;
      throw throttled(Math.ceil((windowEnd - now) / 1000), "too many registrations from this address");
    },

    /** Deletes the rows of windows that are over. */
    async prune(): Promise<void> {
      await db.delete(registrationThrottle).where(lt(registrationThrottle.windowStart, new Date(clock() - config.window * 1000)));
    },
  };
}

export type RegistrationThrottle = ReturnType<typeof createRegistrationThrottle>;
