import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { roleToClaim } from "@local-e-grocery/platform/auth/roles.js";
import type { Principal } from "@local-e-grocery/platform/context.js";
import { notFound } from "@local-e-grocery/platform/errors.js";
import { isUuid } from "@local-e-grocery/platform/ids.js";
import { pageOf, resolvePageSize, type Page } from "@local-e-grocery/platform/pagination.js";
import { deleteAccount } from "./account-deletion.js";
import { recordActivity, type ClientInfo } from "./activity.js";
import { keepAnAdmin } from "./admin-guard.js";
import type { IdentityDeps } from "./identity-deps.js";
import { decodeNameCursor, encodeNameCursor, identityPageSizes } from "./page-cursors.js";
import { revokeAllSessions } from "./sessions.js";
import { recordStanding } from "./user-events.js";
import type { UserRecord } from "./model.js";
import type { IdentityTx } from "./store.js";
import { roleClaims } from "./users.js";

/**
 * Roles an administrator may grant, in the order they are stored; SERVICE belongs to service accounts only.
 * UpdateUserRolesRequest.roles' field rule admits these alone.
 */
const grantable = [Role.CUSTOMER, Role.SHOP_OWNER, Role.ADMIN];

/**
 * Administration of users: ListUsers, GetUser, UpdateUserRoles, SetUserDisabled, DeleteUser. Requests keep
 * their field rules (user_id required, roles and role filter known, login_prefix bounded, page_size ≥ 0); a
 * user_id that is not a UUID names no user, so it is NOT_FOUND here rather than a rule.
 */
export function createUserAdmin(deps: IdentityDeps) {
  const { store, clock, newId, hooks } = deps;
  const destinations = deps.config.events.destinations;

  const lockedUser = async (tx: IdentityTx, userId: string): Promise<UserRecord> => {
    const user = await tx.lockUser(userId);
    if (!user) throw notFound("user");
    return user;
  };

  return {
    /**
     * Users ordered by username; `loginPrefix` matches the start of the username or email ignoring case, `role`
     * (unless UNSPECIFIED) keeps holders of that role. INVALID_ARGUMENT on a page token not issued for this query.
     */
    async list(request: { pageSize: number; pageToken: string; loginPrefix: string; role: Role }): Promise<Page<UserRecord>> {
      const size = resolvePageSize(request.pageSize, identityPageSizes);
      const prefix = request.loginPrefix.trim().toLowerCase();
      const claim = request.role === Role.UNSPECIFIED ? undefined : roleToClaim(request.role);
      const scope = `users:${prefix}:${claim ?? ""}`;
      const after = decodeNameCursor(request.pageToken, scope);
      const rows = await store.direct.listUsers({ prefix, roleClaim: claim, afterUsername: after, limit: size + 1 });
      return pageOf(rows, size, (last) => encodeNameCursor(scope, last.username));
    },

    /** One user; NOT_FOUND when there is no such user. */
    async get(userId: string): Promise<UserRecord> {
      const user = await store.direct.findUserById(userId);
      if (!user) throw notFound("user");
      return user;
    },

    /**
     * Replaces a user's roles (one or more of CUSTOMER, SHOP_OWNER, ADMIN, as the request's field rules
     * guarantee; duplicates dropped). New tokens carry them at once and identity's own checks see them at once;
     * other services see them when the user's sessions next refresh. FAILED_PRECONDITION when it would leave no
     * enabled administrator.
     */
    async updateRoles(actor: Principal, userId: string, roles: readonly Role[], client: ClientInfo): Promise<UserRecord> {
      const granted = grantable.filter((r) => roles.includes(r));
      const claims = roleClaims(granted);
      const updated = await store.write(async (tx) => {
        const user = await lockedUser(tx, userId);
        if (JSON.stringify(user.roles) === JSON.stringify(claims)) return user;
        if (!claims.includes("admin")) await keepAnAdmin(tx, user, "remove the ADMIN role from");
        const row = await tx.updateUser(user.id, { roles: claims, updateTime: new Date(clock()) });
        await recordActivity(tx, clock, { userId: user.id, kind: "roles.changed", client: actor.subject === user.id ? client : undefined, changedFields: granted.map((r) => `ROLE_${Role[r]}`) });
        // Other services care about SHOP_OWNER alone (address lists an owner's shops only while it is held).
        if (row && row.roles.includes("shop_owner") !== user.roles.includes("shop_owner")) await recordStanding(tx, clock, newId, destinations, "user.roles_changed", row);
        return row ?? user;
      });
      hooks.principalChanged(userId);
      hooks.eventQueued();
      return updated;
    },

    /**
     * Disables a user (every session ends at once, logins and refreshes are refused) or enables them again.
     * FAILED_PRECONDITION when disabling the last enabled administrator.
     */
    async setDisabled(actor: Principal, userId: string, disabled: boolean, client: ClientInfo): Promise<UserRecord> {
      const { user, ended } = await store.write(async (tx) => {
        const current = await lockedUser(tx, userId);
        if (current.disabled === disabled) return { user: current, ended: [] as string[] };
        if (disabled) await keepAnAdmin(tx, current, "disable");
        const row = await tx.updateUser(current.id, { disabled, updateTime: new Date(clock()) });
        const endedIds = disabled ? await revokeAllSessions(tx, clock, current.id, "disabled") : [];
        await recordActivity(tx, clock, { userId: current.id, kind: disabled ? "account.disabled" : "account.enabled", client: actor.subject === current.id ? client : undefined });
        if (row) await recordStanding(tx, clock, newId, destinations, disabled ? "user.disabled" : "user.enabled", row);
        return { user: row ?? current, ended: endedIds };
      });
      hooks.sessionsEnded(ended);
      hooks.principalChanged(userId);
      hooks.eventQueued();
      return user;
    },

    /** Deletes a user as DeleteMe does. NOT_FOUND when absent; FAILED_PRECONDITION for the last enabled administrator. */
    async delete(userId: string): Promise<void> {
      if (!isUuid(userId)) throw notFound("user");
      await deleteAccount(store, clock, newId, destinations, userId, "admin");
      hooks.principalChanged(userId);
      hooks.eventQueued();
    },
  };
}

export type UserAdmin = ReturnType<typeof createUserAdmin>;
