import type { Logger } from "@local-e-grocery/platform/logger.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { AccessTokenSigner } from "./access-tokens.js";
import type { IdentityConfig } from "./config.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { PasswordHasher } from "./passwords.js";
import type { RegistrationThrottle } from "./registration-throttle.js";
import type { SessionPolicy } from "./sessions.js";
import type { IdentityStore } from "./store.js";

/**
 * Side effects that must follow a committed change in this process: the live-session cache forgets ended
 * sessions and changed users at once (other replicas catch up within SESSION_CHECK_CACHE_MS), and the mail
 * and event dispatchers are woken for newly queued work.
 */
export interface AccountHooks {
  sessionsEnded(sessionIds: readonly string[]): void;
  /** Roles, status or existence of a user (or a service account) changed. */
  principalChanged(subject: string): void;
  mailQueued(): void;
  /** An event for other services was committed (event-dispatcher.ts delivers it). */
  eventQueued(): void;
}

export const noHooks: AccountHooks = { sessionsEnded: () => {}, principalChanged: () => {}, mailQueued: () => {}, eventQueued: () => {} };

/** What the identity domain modules share; built once in service.ts. */
export interface IdentityDeps {
  store: IdentityStore;
  clock: Clock;
  /** New ids (random UUIDs in the service). */
  newId: () => string;
  logger: Logger;
  config: IdentityConfig;
  signAccessToken: AccessTokenSigner;
  sessionPolicy: SessionPolicy;
  throttle: LoginThrottle;
  registrationThrottle: RegistrationThrottle;
  passwords: PasswordHasher;
  hooks: AccountHooks;
}
