import { Code, ConnectError } from "@connectrpc/connect";
import { backoffDelayMs } from "./backoff.js";
import type { Clock } from "./service-module.js";

/** A SERVICE access token for internal calls, as identity issued it. */
export interface IssuedToken {
  accessToken: string;
  /** Seconds until it expires, counted from when it was issued. */
  expiresIn: number;
}

export interface ServiceTokenSource {
  /** A token valid for a while yet; UNAVAILABLE when none can be had now (identity down: try again later). */
  token(): Promise<string>;
}

export interface ServiceTokenSourceOptions {
  /** Asks identity for a token (AuthService/IssueServiceToken with this service's client id and secret). */
  issue: () => Promise<IssuedToken>;
  clock: Clock;
  /** Renew this long before expiry, in the background, so calls never wait on a renewal. */
  renewBeforeMs?: number;
  /** First wait after a failed issue; doubles (with jitter) on each further failure, up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  random?: () => number;
}

/**
 * Caches the service's token and renews it before it expires. Concurrent callers share one request to identity.
 * While identity fails, requests are retried with capped exponential backoff and jitter, and calls in between
 * fail fast with UNAVAILABLE instead of each hammering identity; a still-valid token keeps being used meanwhile.
 */
export function createServiceTokenSource(options: ServiceTokenSourceOptions): ServiceTokenSource {
  const renewBeforeMs = options.renewBeforeMs ?? 60_000;
  const initialBackoffMs = options.initialBackoffMs ?? 200;
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  const random = options.random ?? Math.random;
  let current: { token: string; expiresAt: number } | undefined;
  let inFlight: Promise<string> | undefined;
  let failures = 0;
  let retryAt = 0;
  let lastError: unknown;

  const fetchToken = (): Promise<string> =>
    (inFlight ??= (async () => {
      const asked = options.clock();
      try {
        const issued = await options.issue();
        current = { token: issued.accessToken, expiresAt: asked + issued.expiresIn * 1000 };
        failures = 0;
        return issued.accessToken;
      } catch (e) {
        failures++;
        lastError = e;
        retryAt = options.clock() + backoffDelayMs(failures, { initialMs: initialBackoffMs, maxMs: maxBackoffMs, random });
        throw unavailable(e);
      } finally {
        inFlight = undefined;
      }
    })());

  return {
    async token() {
      const now = options.clock();
      if (current && now < current.expiresAt - renewBeforeMs) return current.token;
      const canAsk = now >= retryAt;
      if (current && now < current.expiresAt) {
        // Still valid: renew in the background, answer at once.
        if (canAsk) fetchToken().catch(() => {});
        return current.token;
      }
      if (!canAsk) throw unavailable(lastError);
      return fetchToken();
    },
  };
}

function unavailable(cause: unknown): ConnectError {
  return new ConnectError("no service token from identity yet, try again", Code.Unavailable, undefined, undefined, cause);
}
