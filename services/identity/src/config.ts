import { envDuration, envInt, type Env } from "../../platform/src/config.js";

export interface IdentityConfig {
  /** Access token lifetime, seconds. */
  accessTokenTtl: number;
  /** A session unused for this long ends, seconds. */
  sessionIdleTimeout: number;
  /** A session ends this long after login however active it is, seconds. */
  sessionMaxLifetime: number;
  /** How long a live-session answer is trusted before the database is asked again, ms. */
  sessionCheckCacheMs: number;
  /** How often each replica re-reads the signing keys (to pick up rotations done elsewhere), ms. */
  keyRefreshMs: number;
  issuer: string;
  audience: string;
}

export function readIdentityConfig(env: Env): IdentityConfig {
  const sessionIdleTimeout = envDuration(env, "SESSION_IDLE_TIMEOUT", 14 * 86400);
  return {
    accessTokenTtl: envDuration(env, "ACCESS_TOKEN_TTL", 15 * 60),
    sessionIdleTimeout,
    sessionMaxLifetime: envDuration(env, "SESSION_MAX_LIFETIME", 30 * 86400),
    sessionCheckCacheMs: envInt(env, "SESSION_CHECK_CACHE_MS", 2000, { min: 0, max: 60_000 }),
    keyRefreshMs: envInt(env, "SIGNING_KEY_REFRESH_MS", 30_000, { min: 1000 }),
    issuer: env["JWT_ISSUER"] || "https://identity.grocery.local",
    audience: env["JWT_AUDIENCE"] || "grocery",
  };
}
