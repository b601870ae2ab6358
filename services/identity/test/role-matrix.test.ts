/**
 * The role matrix, built from the protos: every RPC of AuthService and UserService, called with an empty
 * request with no token and with a token of each role, answers exactly as its `(grocery.auth.v1.access)` option
 * promises: UNAUTHENTICATED without a token, PERMISSION_DENIED for a role it does not list, and anything else
 * (the handler's own answer, never INTERNAL) for one it lists. Public RPCs answer every caller alike.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type CallOptions } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { transportFor } from "../../../test/clients.js";
import { backends } from "../../../test/harness.js";
import { accessPolicyOf } from "@local-e-grocery/platform/auth/access-interceptor.js";
import { bearerOf, loginAdmin, newAccount, startIdentity, type IdentityTestEnv } from "./identity-helpers.js";

const services = [AuthService, UserService];
// Logout ends the caller's session, so it goes last.
const methods: DescMethod[] = services.flatMap((s) => s.methods).sort((a, b) => Number(a.name === "Logout") - Number(b.name === "Logout"));
const roles = [Role.CUSTOMER, Role.SHOP_OWNER, Role.ADMIN, Role.SERVICE] as const;

type Outcome = "OK" | keyof typeof Code;

for (const backend of backends) {
  describe(`role matrix from the protos (${backend})`, () => {
    let t: IdentityTestEnv;
    const tokens = new Map<Role, string>();

    before(async () => {
      t = await startIdentity(backend);
      tokens.set(Role.CUSTOMER, (await newAccount(t, Role.CUSTOMER)).accessToken);
      tokens.set(Role.SHOP_OWNER, (await newAccount(t, Role.SHOP_OWNER)).accessToken);
      const admin = await loginAdmin(t);
      tokens.set(Role.ADMIN, admin.accessToken);
      const sa = await t.users.createServiceAccount({ name: "matrix-service" }, bearerOf(admin));
      tokens.set(Role.SERVICE, (await t.auth.issueServiceToken({ clientId: sa.serviceAccount?.clientId ?? "", clientSecret: sa.clientSecret })).accessToken);
    });
    after(() => t.close());

    const call = async (method: DescMethod, token: string | undefined): Promise<Outcome> => {
      const client = createClient(method.parent, transportFor(t.tp.url, "grpc")) as unknown as Record<string, (req: unknown, options?: CallOptions) => Promise<unknown>>;
      const fn = client[method.localName];
      assert.ok(fn, method.name);
      try {
        await fn(create(method.input), token ? { headers: { authorization: `Bearer ${token}` } } : {});
        return "OK";
      } catch (e) {
        return Code[ConnectError.from(e).code] as keyof typeof Code;
      }
    };

    it("covers every RPC of both services, each with a policy", () => {
      assert.equal(methods.length, AuthService.methods.length + UserService.methods.length);
      assert.ok(methods.length >= 24);
      for (const m of methods) {
        const policy = accessPolicyOf(m);
        assert.ok(policy && (policy.public || policy.roles.length > 0), `${m.parent.name}.${m.name} has no access policy`);
      }
    });

    it("gives every RPC × caller the answer its access option promises", async (ctx) => {
      const rows: string[] = [];
      for (const method of methods) {
        const policy = accessPolicyOf(method);
        assert.ok(policy);
        const anonymous = await call(method, undefined);
        const outcomes: [string, Outcome][] = [["none", anonymous]];
        for (const role of roles) outcomes.push([Role[role], await call(method, tokens.get(role))]);
        const name = `${method.parent.name}.${method.name}`;
        if (policy.public) {
          for (const [who, outcome] of outcomes) assert.equal(outcome, anonymous, `${name} is public: ${who} must be answered like anyone`);
          assert.notEqual(anonymous, "PermissionDenied", name);
        } else {
          assert.equal(anonymous, "Unauthenticated", `${name} without a token`);
          for (const [i, role] of roles.entries()) {
            const outcome = outcomes[i + 1]?.[1];
            if (policy.roles.includes(role)) {
              assert.ok(outcome !== "Unauthenticated" && outcome !== "PermissionDenied", `${name} as ${Role[role]} is allowed, got ${outcome}`);
            } else {
              assert.equal(outcome, "PermissionDenied", `${name} as ${Role[role]}`);
            }
          }
        }
        // An empty request is bad input at worst: a handler that fails on it with INTERNAL has a bug.
        for (const [who, outcome] of outcomes) assert.ok(outcome !== "Internal" && outcome !== "Unknown", `${name} as ${who}: ${outcome}`);
        rows.push(`${name.padEnd(36)} ${outcomes.map(([who, o]) => `${who}=${o}`).join(" ")}`);
      }
      for (const row of rows) ctx.diagnostic(row);
    });
  });
}
