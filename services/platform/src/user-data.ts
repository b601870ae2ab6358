import type { ConnectRouter } from "@connectrpc/connect";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from "./auth/verify-token.js";
import { envDuration, type Env } from "./config.js";
import type { ServiceModule } from "./service-module.js";

/**
 * The default tombstone outlasts a token issued just before the purge: its lifetime (identity's default
 * ACCESS_TOKEN_TTL, 15 minutes), the verifiers' tolerance past `exp`, and a minute for the clocks of identity and
 * of the purging service disagreeing, since the tombstone is timed by the one and the token by the other.
 */
export const DEFAULT_PURGE_TOMBSTONE_TTL_SECONDS = 15 * 60 + DEFAULT_CLOCK_TOLERANCE_SECONDS + 60;

/**
 * PURGE_TOMBSTONE_TTL: how long a purged user's writes stay refused, in milliseconds. Read once here so every
 * service holding user data refuses for the same time.
 */
export function readPurgeTombstoneTtlMs(env: Env): number {
  return Math.round(envDuration(env, "PURGE_TOMBSTONE_TTL", DEFAULT_PURGE_TOMBSTONE_TTL_SECONDS) * 1000);
}

export type UserDataHolder = Required<Pick<ServiceModule, "purgeUser">> & Pick<ServiceModule, "setUserStanding">;

/** The modules of this process that keep user data, i.e. that implement the purge hook. */
export function userDataHolders(modules: readonly ServiceModule[]): UserDataHolder[] {
  return modules.flatMap((m) =>
    m.purgeUser ? [{ purgeUser: m.purgeUser.bind(m), ...(m.setUserStanding ? { setUserStanding: m.setUserStanding.bind(m) } : {}) }] : [],
  );
}

/**
 * Registers grocery.userdata.v1.UserDataService once for the whole process (PurgeUser and SetUserStanding).
 *
 * Why the platform and not each service's routes: every service holding user data serves this one service name,
 * and a router accepts a path only once, so in the all-in-one process cart and address cannot both register it.
 * Instead each module declares a `purgeUser` hook and this handler calls every hook of the process. In one
 * process per service that is the service's own hook alone; in `npm start` one call purges cart and address
 * both, which is what the caller (identity's dispatcher, delivering to each configured address) needs either way.
 *
 * Each hook runs its own transaction (each service owns its schema and its consistency); they run one after the
 * other, and a failure fails the call, which the caller retries: every hook is idempotent, so a retry after a
 * partial purge finishes it. The user id is lower-cased because tokens carry it, and the stores key it, that way.
 */
export function userDataRoutes(holders: readonly UserDataHolder[]): (router: ConnectRouter) => void {
  return (router) =>
    router.service(UserDataService, {
      async purgeUser(req) {
        const userId = req.userId.toLowerCase();
        let rowsDeleted = 0n;
        for (const holder of holders) rowsDeleted += BigInt(await holder.purgeUser(userId));
        return { rowsDeleted };
      },
      async setUserStanding(req) {
        const standing = { userId: req.userId.toLowerCase(), enabled: req.enabled, shopOwner: req.shopOwner, sequence: req.sequence };
        let applied = false;
        for (const holder of holders) if (holder.setUserStanding && (await holder.setUserStanding(standing))) applied = true;
        return { applied };
      },
    });
}
