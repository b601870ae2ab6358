import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { accessPolicyOf } from "@local-e-grocery/platform/auth/access-interceptor.js";
import type { Principal } from "@local-e-grocery/platform/context.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { SessionState } from "./accounts.js";

export interface SessionCheckOptions {
  /** Liveness of a user's session and the user's current roles. */
  state: (userId: string, sessionId: string) => Promise<SessionState>;
  /** Whether a service account (by client id) still exists; service tokens are refused here once it is deleted. */
  serviceAccountExists?: (clientId: string) => Promise<boolean>;
  clock: Clock;
  ttlMs: number;
}

/**
 * Identity's own RPCs refuse tokens whose session has ended (UNAUTHENTICATED), and tokens whose user no longer
 * holds a role the method needs (PERMISSION_DENIED), so logout, revocation, disabling and role removal bite at
 * once here. Answers are cached for `ttlMs` per session; what changes in this process is forgotten immediately,
 * other replicas see it within `ttlMs`. Other services rely on the short access-token lifetime.
 */
export function createSessionCheck(options: SessionCheckOptions) {
  const cache = new Map<string, { live: boolean; roles: readonly Role[]; at: number }>();
  const cached = async (key: string, load: () => Promise<{ live: boolean; roles: readonly Role[] }>) => {
    const now = options.clock();
    let entry = cache.get(key);
    if (!entry || now - entry.at >= options.ttlMs) {
      entry = { ...(await load()), at: now };
      if (cache.size > 50_000) cache.clear();
      cache.set(key, entry);
    }
    return entry;
  };

  return {
    async check(principal: Principal, method: DescMethod): Promise<void> {
      if (!method.parent.typeName.startsWith("grocery.identity.")) return;
      let entry: { live: boolean; roles: readonly Role[] };
      if (principal.sessionId !== "") {
        entry = await cached(`${principal.subject}/${principal.sessionId}`, () => options.state(principal.subject, principal.sessionId));
      } else if (principal.roles.includes(Role.SERVICE) && options.serviceAccountExists) {
        const exists = options.serviceAccountExists;
        entry = await cached(`${principal.subject}/`, async () => ({ live: await exists(principal.subject), roles: [Role.SERVICE] }));
      } else {
        return;
      }
      if (!entry.live) throw new ConnectError("session has ended", Code.Unauthenticated);
      const allowed = accessPolicyOf(method)?.roles ?? [];
      if (!entry.roles.some((r) => allowed.includes(r) && principal.roles.includes(r))) {
        throw new ConnectError("permission denied", Code.PermissionDenied);
      }
    },
    /** Drops cached answers for these sessions. */
    forget(sessionId: string): void {
      for (const key of cache.keys()) if (key.endsWith(`/${sessionId}`)) cache.delete(key);
    },
    /** Drops cached answers for every session of a user, or for a service account. */
    forgetSubject(subject: string): void {
      for (const key of cache.keys()) if (key.startsWith(`${subject}/`)) cache.delete(key);
    },
  };
}
