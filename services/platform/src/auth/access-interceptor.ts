import { create, getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { access, AccessPolicySchema, default_access, type AccessPolicy } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { kPrincipal, type Principal } from "../context.js";
import type { Logger } from "../logger.js";
import { InvalidTokenError, type TokenVerifier } from "./verify-token.js";

export interface AccessInterceptorOptions {
  verify: TokenVerifier;
  /**
   * Extra check on an authenticated principal, such as identity's live-session check. Throws (a ConnectError)
   * to refuse the call.
   */
  checkPrincipal?: (principal: Principal, method: DescMethod) => Promise<void>;
  logger?: Logger;
  /**
   * Services whose protos we do not own and so cannot annotate (health, reflection): every method is public.
   */
  publicServices?: readonly string[];
}

/**
 * The access policy the proto gives an RPC: its own `(grocery.auth.v1.access)` when set, else its service's
 * `(grocery.auth.v1.default_access)`, else undefined (and the RPC is denied). The RPC's own policy replaces the
 * default whole rather than merging with it, so reading one option tells the full policy of an RPC that has it.
 */
export function accessPolicyOf(method: DescMethod): AccessPolicy | undefined {
  // Reading an option decodes it from the descriptor's unknown fields each time; descriptors never change, so
  // each method's answer is read once (this runs on every call of identity's session check).
  if (policyByMethod.has(method)) return policyByMethod.get(method);
  const policy = hasOption(method, access)
    ? getOption(method, access)
    : hasOption(method.parent, default_access)
      ? getOption(method.parent, default_access)
      : undefined;
  policyByMethod.set(method, policy);
  return policy;
}

const policyByMethod = new WeakMap<DescMethod, AccessPolicy | undefined>();

/**
 * Enforces each RPC's access policy (see accessPolicyOf): public methods pass; other methods need a valid bearer
 * token carrying one of the listed roles. A method without a policy is denied to everyone.
 */
export function createAccessInterceptor(options: AccessInterceptorOptions): Interceptor {
  const policies = new Map<DescMethod, AccessPolicy | undefined>();
  const publicServices = new Set(options.publicServices ?? []);
  const publicPolicy = create(AccessPolicySchema, { public: true });
  return (next) => async (req) => {
    let policy = policies.get(req.method);
    if (!policies.has(req.method)) {
      policy = publicServices.has(req.method.parent.typeName) ? publicPolicy : accessPolicyOf(req.method);
      policies.set(req.method, policy);
    }
    if (!policy || (!policy.public && policy.roles.length === 0)) {
      throw new ConnectError("method has no access policy", Code.PermissionDenied);
    }
    // Public methods ignore credentials, so a stale token in a browser never blocks Login or Register.
    if (policy.public) return next(req);
    const authorization = req.header.get("authorization");
    if (authorization === null) throw new ConnectError("authentication required", Code.Unauthenticated);
    const m = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim());
    if (!m?.[1]) throw new ConnectError("malformed authorization header", Code.Unauthenticated);
    let principal: Principal;
    try {
      principal = await options.verify(m[1]);
    } catch (e) {
      if (e instanceof InvalidTokenError) {
        options.logger?.debug("token rejected", { reason: e.message, method: req.method.name });
        throw new ConnectError("invalid or expired token", Code.Unauthenticated);
      }
      throw e;
    }
    if (!principal.roles.some((r) => policy.roles.includes(r))) {
      throw new ConnectError("permission denied", Code.PermissionDenied);
    }
    await options.checkPrincipal?.(principal, req.method);
    req.contextValues.set(kPrincipal, principal);
    return next(req);
  };
}
