import { and, eq, lt, ne } from "drizzle-orm";
import type { Db } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import { pruneActivity } from "./activity.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { RegistrationThrottle } from "./registration-throttle.js";
import { outbox, passwordResetTokens } from "./schema.js";
import { eraseExpiredSuccessors, type SessionPolicy } from "./sessions.js";

const DAY = 86_400_000;

/**
 * Deletes what has outlived its use: quiet failure counters, registration windows that are over, old history, reset tokens a day after they
 * expired, sealed refresh-token successors past the reuse grace window, delivered mail after a week, and events
 * every destination acknowledged after OUTBOX_RETENTION (their delivery rows go with them; undelivered mail and
 * events stay).
 */
export function createHousekeeping(options: {
  db: Db;
  clock: Clock;
  throttle: LoginThrottle;
  registrationThrottle: RegistrationThrottle;
  sessionPolicy: SessionPolicy;
  activityRetentionSeconds: number;
  eventRetentionSeconds: number;
}) {
  const { db, clock } = options;
  return async (): Promise<void> => {
    const now = clock();
    await options.throttle.prune();
    await options.registrationThrottle.prune();
    await eraseExpiredSuccessors(db, clock, options.sessionPolicy);
    await pruneActivity(db, clock, options.activityRetentionSeconds);
    await db.delete(passwordResetTokens).where(lt(passwordResetTokens.expireTime, new Date(now - DAY)));
    await db.delete(outbox).where(and(eq(outbox.topic, "mail"), eq(outbox.status, "delivered"), lt(outbox.deliverTime, new Date(now - 7 * DAY))));
    await db
      .delete(outbox)
      .where(and(ne(outbox.topic, "mail"), eq(outbox.status, "delivered"), lt(outbox.deliverTime, new Date(now - options.eventRetentionSeconds * 1000))));
  };
}
