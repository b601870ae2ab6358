import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import type { PublicJwk } from "@local-e-grocery/platform/auth/jwks.js";
import { kClientInfo, requirePrincipal } from "@local-e-grocery/platform/context.js";
import type { Accounts } from "./accounts.js";
import { listActivity } from "./activity.js";
import type { PasswordManagement } from "./password-management.js";
import { listPendingDeliveries } from "./pending-deliveries.js";
import type { Profiles } from "./profiles.js";
import type { ServiceAccounts } from "./service-accounts.js";
import type { SessionManagement } from "./session-management.js";
import type { IdentityStore } from "./store.js";
import type { UserAdmin } from "./user-admin.js";
import { profileFromProto, profileMaskFromProto, toActivityProto, toServiceAccountProto, toSessionProto, toUserProto } from "./user-proto.js";

export interface IdentityHandlers {
  store: IdentityStore;
  accounts: Accounts;
  passwords: PasswordManagement;
  profiles: Profiles;
  sessions: SessionManagement;
  admin: UserAdmin;
  serviceAccounts: ServiceAccounts;
  publicKeys: () => Promise<PublicJwk[]>;
  rotateSigningKey: (options: { immediate: boolean }) => Promise<{ kid: string; activateTime: Date }>;
}

const clientOf = (ctx: HandlerContext) => ctx.values.get(kClientInfo);

/** Registers AuthService and UserService; handlers only translate between protos and the domain. */
export function identityRoutes(h: IdentityHandlers): (router: ConnectRouter) => void {
  return (router) => {
    router.service(AuthService, {
      async register(req, ctx) {
        const user = await h.accounts.register(req, clientOf(ctx));
        return { user: toUserProto(user) };
      },
      async login(req, ctx) {
        const { user, tokens } = await h.accounts.login({ login: req.login, password: req.password, ...clientOf(ctx), signal: ctx.signal });
        return { ...tokens, tokenType: "Bearer", user: toUserProto(user) };
      },
      async refreshToken(req, ctx) {
        const { tokens } = await h.accounts.refresh(req.refreshToken, { client: clientOf(ctx) });
        return { ...tokens, tokenType: "Bearer" };
      },
      async logout(_req, ctx) {
        await h.accounts.logout(requirePrincipal(ctx), clientOf(ctx));
        return {};
      },
      async getJwks() {
        return { keys: await h.publicKeys() };
      },
      async changePassword(req, ctx) {
        await h.passwords.changePassword(requirePrincipal(ctx), req, clientOf(ctx));
        return {};
      },
      async requestPasswordReset(req, ctx) {
        await h.passwords.requestPasswordReset(req.email, clientOf(ctx));
        return {};
      },
      async resetPassword(req, ctx) {
        await h.passwords.resetPassword(req, clientOf(ctx));
        return {};
      },
      async issueServiceToken(req) {
        const { accessToken, expiresIn } = await h.serviceAccounts.issueToken(req.clientId, req.clientSecret);
        return { accessToken, expiresIn, tokenType: "Bearer" };
      },
      async rotateSigningKey(req) {
        const { kid, activateTime } = await h.rotateSigningKey({ immediate: req.immediate });
        return { kid, activateTime: timestampFromDate(activateTime) };
      },
    });
    router.service(UserService, {
      async getMe(_req, ctx) {
        const user = await h.accounts.getUser(requirePrincipal(ctx).subject);
        return { user: toUserProto(user) };
      },
      async updateMe(req, ctx) {
        const input = profileFromProto(req.user);
        const mask = profileMaskFromProto(req.updateMask?.paths, req.user);
        const user = await h.profiles.updateMe(requirePrincipal(ctx), input, mask, req.currentPassword, clientOf(ctx));
        return { user: toUserProto(user) };
      },
      async deleteMe(req, ctx) {
        await h.profiles.deleteMe(requirePrincipal(ctx), req.password, clientOf(ctx));
        return {};
      },
      async listSessions(req, ctx) {
        const page = await h.sessions.list(requirePrincipal(ctx), req);
        return { sessions: page.items.map(toSessionProto), nextPageToken: page.nextPageToken };
      },
      async revokeSession(req, ctx) {
        await h.sessions.revoke(requirePrincipal(ctx), req.sessionId, clientOf(ctx));
        return {};
      },
      async listActivity(req, ctx) {
        const page = await listActivity(h.store.direct, requirePrincipal(ctx).subject, req);
        return { events: page.items.map(toActivityProto), nextPageToken: page.nextPageToken };
      },
      async listUsers(req) {
        const page = await h.admin.list(req);
        return { users: page.items.map(toUserProto), nextPageToken: page.nextPageToken };
      },
      async getUser(req) {
        return { user: toUserProto(await h.admin.get(req.userId)) };
      },
      async updateUserRoles(req, ctx) {
        return { user: toUserProto(await h.admin.updateRoles(requirePrincipal(ctx), req.userId, req.roles, clientOf(ctx))) };
      },
      async setUserDisabled(req, ctx) {
        return { user: toUserProto(await h.admin.setDisabled(requirePrincipal(ctx), req.userId, req.disabled, clientOf(ctx))) };
      },
      async deleteUser(req) {
        await h.admin.delete(req.userId);
        return {};
      },
      async createServiceAccount(req, ctx) {
        const { account, clientSecret } = await h.serviceAccounts.create(requirePrincipal(ctx), req.name);
        return { serviceAccount: toServiceAccountProto(account), clientSecret };
      },
      async listPendingDeliveries(req) {
        const page = await listPendingDeliveries(h.store.direct, req);
        return {
          deliveries: page.items.map((d) => ({ ...d, createTime: timestampFromDate(d.createTime), nextAttemptTime: timestampFromDate(d.nextAttemptTime) })),
          nextPageToken: page.nextPageToken,
        };
      },
      async listServiceAccounts(req) {
        const page = await h.serviceAccounts.list(req);
        return { serviceAccounts: page.items.map(toServiceAccountProto), nextPageToken: page.nextPageToken };
      },
      async deleteServiceAccount(req) {
        await h.serviceAccounts.delete(req.clientId);
        return {};
      },
    });
  };
}
