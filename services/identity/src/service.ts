import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import type { ServiceDefinition } from "@local-e-grocery/platform/service-module.js";
import { createAccessTokenSigner } from "./access-tokens.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { readServiceCallTimeoutMs } from "@local-e-grocery/platform/mesh.js";
import { createServiceTokenSource } from "@local-e-grocery/platform/service-token.js";
import { createAccounts } from "./accounts.js";
import { bootstrapAdmin, validateAdminBootstrap } from "./admin-bootstrap.js";
import { readIdentityConfig } from "./config.js";
import { createHousekeeping } from "./housekeeping.js";
import type { AccountHooks, IdentityDeps } from "./identity-deps.js";
import { createEventDispatcher } from "./event-dispatcher.js";
import { createLoginThrottle } from "./login-throttle.js";
import { createFileMailer, createSmtpMailer } from "./mailer.js";
import { createMailDispatcher } from "./outbox.js";
import { createPasswordManagement } from "./password-management.js";
import { createProfiles } from "./profiles.js";
import { createRegistrationThrottle } from "./registration-throttle.js";
import { identityRoutes } from "./routes.js";
import { createServiceAccounts } from "./service-accounts.js";
import { createSessionCheck } from "./session-check.js";
import { createSessionManagement } from "./session-management.js";
import { createSigningKeyRing } from "./signing-keys.js";
import { createIdentityStore } from "./store.js";
import { createUserAdmin } from "./user-admin.js";
import { createPasswordHasher } from "./passwords.js";

export const identityService: ServiceDefinition = {
  name: "identity",
  migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
  async build({ db, env, logger, clock, mesh }) {
    const config = readIdentityConfig(env);
    // Every module below takes its ids from here, none from node:crypto, so each can be given its own in a test.
    const newId: () => string = randomUUID;
    const admin = config.admin && validateAdminBootstrap(config.admin);
    const store = createIdentityStore(db);
    const keys = createSigningKeyRing({ store, clock, retainSeconds: config.accessTokenTtl + 60, refreshMs: config.keyRefreshMs, publishAheadSeconds: config.signingKeyPublishAhead });
    await keys.reload();
    const signAccessToken = createAccessTokenSigner({ keys, clock, newId, issuer: config.issuer, audience: config.audience, ttlSeconds: config.accessTokenTtl });
    const sessionPolicy = { idleTimeoutSeconds: config.sessionIdleTimeout, maxLifetimeSeconds: config.sessionMaxLifetime, refreshReuseGraceSeconds: config.refreshReuseGrace };
    const throttle = createLoginThrottle({ store, clock, newId, config: config.throttle });
    const registrationThrottle = createRegistrationThrottle({ store, clock, config: config.registrationThrottle });
    const mailer =
      config.mail.transport === "smtp" && config.mail.smtpUrl
        ? await createSmtpMailer({ url: config.mail.smtpUrl, from: config.mail.from, logger })
        : createFileMailer({ dir: config.mail.fileDir, from: config.mail.from, logger, now: clock, newId });
    const dispatcher = createMailDispatcher({
      store,
      clock,
      mailer,
      logger,
      intervalMs: config.mail.dispatchIntervalMs,
      housekeeping: createHousekeeping({ store, clock, throttle, registrationThrottle, sessionPolicy, activityRetentionSeconds: config.activityRetention, eventRetentionSeconds: config.events.retention }),
    });

    const events = createEventDispatcher({
      store,
      clock,
      logger,
      mesh,
      destinations: config.events.destinations,
      intervalMs: config.events.dispatchIntervalMs,
      maxRetryDelayMs: config.events.maxRetryDelayMs,
      leaseMs: 2 * readServiceCallTimeoutMs(env) + 1000,
    });
    // Identity holds the keys: its own calls carry a SERVICE token it signs itself, renewed before expiry.
    const ownToken = createServiceTokenSource({
      clock,
      issue: async () => {
        const { token, expiresIn } = await signAccessToken({ subject: "identity", roles: [Role.SERVICE], sessionId: "", clientId: "identity" });
        return { accessToken: token, expiresIn };
      },
    });

    // Bound late: the session check is built from the domain modules that call these hooks.
    const hooks: AccountHooks = {
      sessionsEnded: (ids) => ids.forEach((id) => sessionCheck.forget(id)),
      principalChanged: (subject) => sessionCheck.forgetSubject(subject),
      mailQueued: () => dispatcher.kick(),
      eventQueued: () => events.kick(),
    };
    const passwordHasher = createPasswordHasher(config.passwordCost);
    const deps: IdentityDeps = { store, clock, newId, logger, config, signAccessToken, sessionPolicy, throttle, registrationThrottle, passwords: passwordHasher, hooks };
    const accounts = createAccounts(deps);
    const serviceAccounts = createServiceAccounts(deps);
    const passwords = createPasswordManagement(deps);
    const sessionCheck = createSessionCheck({ state: accounts.sessionState, serviceAccountExists: serviceAccounts.exists, clock, ttlMs: config.sessionCheckCacheMs });

    // In-process verifiers ask for keys on every unknown kid; the ring answers from memory and re-reads the
    // database at most once a second, so forged kids cannot flood it while a rotation elsewhere shows up at once.
    let lastReload = clock();
    const jwksSource = async () => {
      if (clock() - lastReload >= 1000) {
        lastReload = clock();
        await keys.reload();
      }
      return keys.publicKeys();
    };

    return {
      services: [AuthService, UserService],
      routes: identityRoutes({
        store,
        accounts,
        passwords,
        profiles: createProfiles(deps),
        sessions: createSessionManagement(deps),
        admin: createUserAdmin(deps),
        serviceAccounts,
        publicKeys: keys.publicKeys,
        rotateSigningKey: async ({ immediate }) => {
          const rotated = await keys.rotate({ immediate });
          logger.info("signing key rotated", { kid: rotated.kid, immediate, activate_time: rotated.activateTime.toISOString() });
          return rotated;
        },
      }),
      httpRoutes: {
        "/.well-known/jwks.json": async (_req, res) => {
          const body = JSON.stringify({ keys: await keys.publicKeys() });
          res.setHeader("Content-Type", "application/jwk-set+json");
          // Half the publish-ahead time: a cache that honours it has fetched a new key before the key signs.
          res.setHeader("Cache-Control", `public, max-age=${Math.floor(config.signingKeyPublishAhead / 2)}`);
          res.end(body);
        },
      },
      jwksSource,
      serviceToken: ownToken.token,
      checkPrincipal: sessionCheck.check,
      async start() {
        if (admin) await bootstrapAdmin({ store, clock, newId, logger, passwords: passwordHasher }, admin);
        dispatcher.start();
        events.start();
      },
      async close() {
        await passwords.drain();
        await dispatcher.stop();
        await events.stop();
        await mailer.close?.();
      },
    };
  },
};
