import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { type Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";

/** Who is calling: set by the auth interceptor from a verified access token. */
export interface Principal {
  /** The token's `sub`: a user id, or a service account's client id. */
  readonly subject: string;
  readonly roles: readonly Role[];
  /** The token's `sid`; empty for service tokens, which have no session. */
  readonly sessionId: string;
  /** The token's `jti`. */
  readonly tokenId: string;
  /** The token's `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
}

export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "principal" });
export const kRequestId = createContextKey<string>("", { description: "request id" });
/** The caller's address and user agent, recorded with sessions and activity. */
export const kClientInfo = createContextKey<{ ip: string; userAgent: string }>({ ip: "", userAgent: "" }, { description: "client info" });

/** The caller, or UNAUTHENTICATED when the method was reached without a token. */
export function requirePrincipal(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(kPrincipal);
  if (!principal) throw new ConnectError("authentication required", Code.Unauthenticated);
  return principal;
}

export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.includes(role);
}
