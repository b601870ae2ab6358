import { fileURLToPath } from "node:url";
import { AuthService } from "../../../gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "../../../gen/grocery/identity/v1/user_service_pb.js";
import type { ServiceDefinition } from "../../platform/src/service-module.js";
import { createAccessTokenSigner } from "./access-tokens.js";
import { createAccounts } from "./accounts.js";
import { readIdentityConfig } from "./config.js";
import { identityRoutes } from "./routes.js";
import { createSessionCheck } from "./session-check.js";
import { createSigningKeyRing } from "./signing-keys.js";

export const identityService: ServiceDefinition = {
  name: "identity",
  migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
  async build({ db, env, logger, clock }) {
    const config = readIdentityConfig(env);
    const keys = createSigningKeyRing({ db, clock, retainSeconds: config.accessTokenTtl + 60, refreshMs: config.keyRefreshMs });
    await keys.reload();
    const signAccessToken = createAccessTokenSigner({ keys, clock, issuer: config.issuer, audience: config.audience, ttlSeconds: config.accessTokenTtl });
    const accounts = createAccounts({
      db,
      clock,
      logger,
      signAccessToken,
      sessionPolicy: { idleTimeoutSeconds: config.sessionIdleTimeout, maxLifetimeSeconds: config.sessionMaxLifetime },
    });
    const sessionCheck = createSessionCheck({ isLive: accounts.sessionIsLive, clock, ttlMs: config.sessionCheckCacheMs });
    const jwksDocument = async () => JSON.stringify({ keys: await keys.publicKeys() });
    return {
      services: [AuthService, UserService],
      routes: identityRoutes({ accounts, publicKeys: keys.publicKeys, forgetSession: sessionCheck.forget }),
      httpRoutes: {
        "/.well-known/jwks.json": async (_req, res) => {
          const body = await jwksDocument();
          res.setHeader("Content-Type", "application/jwk-set+json");
          // Short enough that a rotation reaches every verifier well within the access token lifetime.
          res.setHeader("Cache-Control", "public, max-age=300");
          res.end(body);
        },
      },
      // Verifiers in this process read the key ring directly, re-reading the database on an unknown kid.
      jwksSource: async () => {
        await keys.reload();
        return keys.publicKeys();
      },
      checkPrincipal: sessionCheck.check,
    };
  },
};
