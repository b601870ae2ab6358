import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { pruneActivity } from "./activity.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { RegistrationThrottle } from "./registration-throttle.js";
import { eraseExpiredSuccessors, type SessionPolicy } from "./sessions.js";
import type { IdentityStore } from "./store.js";

const DAY = 86_400_000;

/**
 * Deletes what has outlived its use: quiet failure counters, registration windows that are over, old history, reset tokens a day after they
 * expired, sealed refresh-token successors past the reuse grace window, delivered mail after a week, and events
 * every destination acknowledged after OUTBOX_RETENTION (their delivery rows go with them; undelivered mail and
 * events stay).
 */
export function createHousekeeping(options: {
  store: IdentityStore;
  clock: Clock;
  throttle: LoginThrottle;
  registrationThrottle: RegistrationThrottle;
  sessionPolicy: SessionPolicy;
  activityRetentionSeconds: number;
  eventRetentionSeconds: number;
}) {
  const { clock } = options;
  const direct = options.store.direct;
  return async (): Promise<void> => {
    const now = clock();
    await options.throttle.prune();
    await options.registrationThrottle.prune();
    await eraseExpiredSuccessors(direct, clock, options.sessionPolicy);
    await pruneActivity(direct, clock, options.activityRetentionSeconds);
    await direct.deleteResetTokensExpiredBefore(new Date(now - DAY));
    await direct.deleteMailDeliveredBefore(new Date(now - 7 * DAY));
    await direct.deleteEventsDeliveredBefore(new Date(now - options.eventRetentionSeconds * 1000));
  };
}
