import { resolve } from "node:path";
import { ConfigError, envDuration, envEnum, envInt, envList, envOptional, envString, envUrl, type Env } from "@local-e-grocery/platform/config.js";
import { owaspPasswordCost, type PasswordCost } from "./passwords.js";

export interface ThrottleConfig {
  /** Failures of one account key before it is locked. */
  accountMaxFailures: number;
  /** Failures from one client IP before it is locked. */
  ipMaxFailures: number;
  /** Lock after the threshold is reached; grows by this much with each further failure, seconds. */
  waitIncrement: number;
  /** The lock never exceeds this, seconds. */
  maxWait: number;
  /** A counter with no failure for this long starts again from zero, seconds. */
  failureReset: number;
  /**
   * How long an attempt waits for a free slot when as many attempts as a key still tolerates failures are
   * already being checked (see login-throttle.ts), seconds; then RESOURCE_EXHAUSTED.
   */
  slotWait: number;
}

export interface RegistrationThrottleConfig {
  /** Registrations (successful or finding the name taken) from one client IP per window. */
  ipMaxAttempts: number;
  /** The window, seconds. */
  window: number;
}

export interface MailConfig {
  transport: "file" | "smtp";
  /** Folder the file transport writes `.eml` files into. */
  fileDir: string;
  /** smtp:// or smtps:// URL (with credentials) for the SMTP transport. */
  smtpUrl: string | undefined;
  from: string;
  /** Base URL of the web app, used in links in mail. */
  publicUrl: string;
  /** How often the outbox dispatcher looks for mail to send, ms. */
  dispatchIntervalMs: number;
}

export interface AdminBootstrap {
  username: string;
  email: string;
  password: string;
}

export interface IdentityConfig {
  /** argon2id cost of new password hashes (PASSWORD_HASH_MEMORY_KIB, PASSWORD_HASH_ITERATIONS). */
  passwordCost: PasswordCost;
  /** Access token lifetime, seconds. */
  accessTokenTtl: number;
  /** A session unused for this long ends, seconds. */
  sessionIdleTimeout: number;
  /** A session ends this long after login however active it is, seconds. */
  sessionMaxLifetime: number;
  /**
   * How long a just-spent refresh token still answers with the successor it was spent for instead of revoking
   * the session (concurrent refreshes, a retry after a lost response), seconds.
   */
  refreshReuseGrace: number;
  /** How long a live-session answer is trusted before the database is asked again, ms. */
  sessionCheckCacheMs: number;
  /** How often each replica re-reads the signing keys (to pick up rotations done elsewhere), ms. */
  keyRefreshMs: number;
  issuer: string;
  audience: string;
  /** Password reset token lifetime, seconds. */
  passwordResetTtl: number;
  /** At most one reset mail per account in this time, seconds (stops mail bombing). */
  passwordResetInterval: number;
  /** Activity older than this is deleted, seconds. */
  activityRetention: number;
  throttle: ThrottleConfig;
  registrationThrottle: RegistrationThrottleConfig;
  mail: MailConfig;
  /** The first administrator, created at start-up when absent; undefined when ADMIN_* are not set. */
  admin: AdminBootstrap | undefined;
  /** A new signing key is published this long before it signs (verifiers' JWKS caches must be shorter), seconds. */
  signingKeyPublishAhead: number;
  events: EventsConfig;
}

export interface EventsConfig {
  /** Services that keep user data (USER_DATA_SERVICES): each user event is delivered to each of them. */
  destinations: readonly string[];
  /** Longest wait between two delivery attempts to a destination that fails, ms (the back-off is capped here). */
  maxRetryDelayMs: number;
  /** Events delivered everywhere are deleted after this, seconds. */
  retention: number;
  /** How often the dispatcher looks for events due, ms (it is also woken by each new event). */
  dispatchIntervalMs: number;
}

/** Reads identity's settings; throws ConfigError naming the variable at fault. */
export function readIdentityConfig(env: Env): IdentityConfig {
  const sessionIdleTimeout = envDuration(env, "SESSION_IDLE_TIMEOUT", 14 * 86400);
  const dataDir = resolve(envString(env, "DATA_DIR", "./data"));
  const transport = envEnum(env, "MAIL_TRANSPORT", ["file", "smtp"], "file");
  const smtpUrl = envUrl(env, "SMTP_URL");
  if (transport === "smtp") {
    if (!smtpUrl) throw new ConfigError("SMTP_URL is required when MAIL_TRANSPORT=smtp");
    if (!/^smtps?:$/.test(new URL(smtpUrl).protocol)) throw new ConfigError("SMTP_URL must start with smtp:// or smtps://");
  }
  const refreshReuseGrace = envDuration(env, "REFRESH_REUSE_GRACE", 10);
  // A long window would make a stolen spent token as good as a live one; a minute covers any retry.
  if (refreshReuseGrace > 60) throw new ConfigError("REFRESH_REUSE_GRACE must be at most 60s");
  return {
    accessTokenTtl: envDuration(env, "ACCESS_TOKEN_TTL", 15 * 60),
    sessionIdleTimeout,
    sessionMaxLifetime: envDuration(env, "SESSION_MAX_LIFETIME", 30 * 86400),
    refreshReuseGrace,
    sessionCheckCacheMs: envInt(env, "SESSION_CHECK_CACHE_MS", 2000, { min: 0, max: 60_000 }),
    keyRefreshMs: envInt(env, "SIGNING_KEY_REFRESH_MS", 30_000, { min: 1000 }),
    issuer: env["JWT_ISSUER"] || "https://identity.grocery.local",
    audience: env["JWT_AUDIENCE"] || "grocery",
    passwordResetTtl: envDuration(env, "PASSWORD_RESET_TTL", 30 * 60),
    passwordResetInterval: envInt(env, "PASSWORD_RESET_INTERVAL", 60, { min: 0, max: 86400 }),
    activityRetention: envDuration(env, "ACTIVITY_RETENTION", 180 * 86400),
    // The test suites lower these to make accounts cheap; production keeps OWASP's baseline unless told otherwise.
    passwordCost: {
      memoryKiB: envInt(env, "PASSWORD_HASH_MEMORY_KIB", owaspPasswordCost.memoryKiB, { min: 8, max: 4 * 1024 * 1024 }),
      iterations: envInt(env, "PASSWORD_HASH_ITERATIONS", owaspPasswordCost.iterations, { min: 1, max: 100 }),
    },
    throttle: {
      accountMaxFailures: envInt(env, "LOGIN_MAX_FAILURES", 30, { min: 1, max: 10_000 }),
      ipMaxFailures: envInt(env, "LOGIN_IP_MAX_FAILURES", 100, { min: 1, max: 100_000 }),
      waitIncrement: envDuration(env, "LOGIN_WAIT_INCREMENT", 60),
      maxWait: envDuration(env, "LOGIN_MAX_WAIT", 900),
      failureReset: envDuration(env, "LOGIN_FAILURE_RESET", 12 * 3600),
      slotWait: envDuration(env, "LOGIN_SLOT_WAIT", 10),
    },
    registrationThrottle: {
      // Enough for a shop signing its customers up behind one address; far too few to enumerate accounts.
      ipMaxAttempts: envInt(env, "REGISTER_IP_MAX_ATTEMPTS", 50, { min: 1, max: 100_000 }),
      window: envDuration(env, "REGISTER_IP_WINDOW", 3600),
    },
    mail: {
      transport,
      fileDir: resolve(envOptional(env, "MAIL_FILE_DIR") ?? resolve(dataDir, "outbox-mail")),
      smtpUrl,
      from: envString(env, "MAIL_FROM", "Local E-Grocery <no-reply@grocery.local>"),
      publicUrl: (envUrl(env, "PUBLIC_URL") ?? "http://localhost:8080").replace(/\/+$/, ""),
      dispatchIntervalMs: envInt(env, "MAIL_DISPATCH_INTERVAL_MS", 2000, { min: 50, max: 3_600_000 }),
    },
    admin: readAdminBootstrap(env),
    signingKeyPublishAhead: envDuration(env, "SIGNING_KEY_PUBLISH_AHEAD", 90),
    events: {
      destinations: readDestinations(env),
      maxRetryDelayMs: Math.round(envDuration(env, "EVENT_RETRY_MAX_DELAY", 60) * 1000),
      retention: envDuration(env, "OUTBOX_RETENTION", 7 * 86400),
      dispatchIntervalMs: envInt(env, "EVENT_DISPATCH_INTERVAL_MS", 1000, { min: 50, max: 3_600_000 }),
    },
  };
}

function readDestinations(env: Env): readonly string[] {
  // "none": identity alone, for development and tests of identity by itself; events are recorded as delivered.
  if (envOptional(env, "USER_DATA_SERVICES") === "none") return [];
  const names = envList(env, "USER_DATA_SERVICES", ["cart", "address"]);
  for (const name of names) {
    if (!/^[a-z][a-z0-9]*$/.test(name)) throw new ConfigError(`USER_DATA_SERVICES: ${JSON.stringify(name)} is not a service name ([a-z][a-z0-9]*)`);
  }
  return [...new Set(names)];
}

function readAdminBootstrap(env: Env): AdminBootstrap | undefined {
  const names = ["ADMIN_USERNAME", "ADMIN_EMAIL", "ADMIN_PASSWORD"] as const;
  const values = names.map((n) => envOptional(env, n));
  if (values.every((v) => v === undefined)) return undefined;
  const missing = names.filter((_, i) => values[i] === undefined);
  if (missing.length > 0) throw new ConfigError(`${missing.join(", ")} must be set together with the other ADMIN_* variables`);
  const [username, email, password] = values as [string, string, string];
  return { username, email, password };
}
