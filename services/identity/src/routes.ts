import type { ConnectRouter } from "@connectrpc/connect";
import { AuthService } from "../../../gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "../../../gen/grocery/identity/v1/user_service_pb.js";
import type { PublicJwk } from "../../platform/src/auth/jwks.js";
import { kClientInfo, requirePrincipal } from "../../platform/src/context.js";
import type { Accounts } from "./accounts.js";
import { toUserProto } from "./user-proto.js";

export interface IdentityHandlers {
  accounts: Accounts;
  publicKeys: () => Promise<PublicJwk[]>;
  /** Called after a session ends here, so the live-session cache forgets it at once. */
  forgetSession: (sessionId: string) => void;
}

/** Registers AuthService and UserService; handlers only translate between protos and the domain. */
export function identityRoutes(h: IdentityHandlers): (router: ConnectRouter) => void {
  return (router) => {
    router.service(AuthService, {
      async register(req) {
        const user = await h.accounts.register(req);
        return { user: toUserProto(user) };
      },
      async login(req, ctx) {
        const client = ctx.values.get(kClientInfo);
        const { user, tokens } = await h.accounts.login({ login: req.login, password: req.password, ...client });
        return { ...tokens, tokenType: "Bearer", user: toUserProto(user) };
      },
      async refreshToken(req) {
        const { tokens } = await h.accounts.refresh(req.refreshToken);
        return { ...tokens, tokenType: "Bearer" };
      },
      async logout(_req, ctx) {
        const principal = requirePrincipal(ctx);
        await h.accounts.logout(principal);
        h.forgetSession(principal.sessionId);
        return {};
      },
      async getJwks() {
        return { keys: await h.publicKeys() };
      },
    });
    router.service(UserService, {
      async getMe(_req, ctx) {
        const user = await h.accounts.getUser(requirePrincipal(ctx).subject);
        return { user: toUserProto(user) };
      },
    });
  };
}
