import { createHash } from "node:crypto";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { RegistrationThrottleConfig } from "./config.js";
import { throttled } from "./login-throttle.js";
import type { IdentityStore } from "./store.js";

/**
 * Register limit per client IP: at most `ipMaxAttempts` registrations in each window of `window` seconds. Every
 * well-formed attempt counts, the ones that find the username or email taken too: ALREADY_EXISTS says an
 * address has an account, so without a limit Register is an unthrottled enumeration oracle (and each success
 * costs an argon2 hash and a welcome mail). Malformed requests are refused before they count; they reveal
 * nothing and cost nothing.
 */
export function createRegistrationThrottle(options: { store: IdentityStore; clock: Clock; config: RegistrationThrottleConfig }) {
  const { store, clock, config } = options;
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
      // Refused attempts keep counting, capped just past the limit; they never extend the window.
      const row = await store.direct.countRegistration(keyOf(ip), new Date(now), new Date(now - config.window * 1000), config.ipMaxAttempts + 1);
      if (!row || row.attempts <= config.ipMaxAttempts) return;
      const windowEnd = row.windowStart.getTime() + config.window * 1000;
      throw throttled(Math.ceil((windowEnd - now) / 1000), "too many registrations from this address");
    },

    /** Deletes the rows of windows that are over. */
    async prune(): Promise<void> {
      await store.direct.deleteRegistrationWindowsBefore(new Date(clock() - config.window * 1000));
    },
  };
}

export type RegistrationThrottle = ReturnType<typeof createRegistrationThrottle>;
