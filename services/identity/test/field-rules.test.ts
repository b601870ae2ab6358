/**
 * Identity's field rules are buf.validate annotations in its protos, enforced by the platform's validate
 * interceptor: a request breaking them answers INVALID_ARGUMENT naming every wrong field by proto path in one
 * google.rpc.BadRequest, on gRPC, gRPC-web and Connect, and changes nothing. The security contract is kept: the
 * credential-checking RPCs carry no rules, so malformed credentials get the same answer as wrong ones. The
 * administrator's configuration is checked with Register's rules.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { NotificationChannel } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { badRequestFields, clientFor, errorOf, type Protocol } from "../../../test/clients.js";
import { uniqueName } from "../../../test/harness.js";
import { ConfigError } from "@local-e-grocery/platform/config.js";
import { validateAdminBootstrap } from "../src/admin-bootstrap.js";
import { type Account, bearerOf, type IdentityTestEnv, newAccount, startIdentityWithAdmin } from "./identity-helpers.js";

describe("identity field rules over the wire (pglite)", () => {
  let t: IdentityTestEnv;
  let admin: Account;
  let a: Account;
  before(async () => {
    ({ t, admin } = await startIdentityWithAdmin("pglite"));
    a = await newAccount(t);
  });
  after(() => t.close());

  for (const protocol of ["grpc", "grpc-web", "connect"] as Protocol[]) {
    describe(protocol, () => {
      it("Register names every broken rule at once and creates nothing", async () => {
        const auth = clientFor(AuthService, t.tp.url, protocol);
        const username = uniqueName();
        const err = await errorOf(auth.register({ username, email: `${username}\u0000@example.com`, password: "short", role: Role.ADMIN, displayName: "a\u0007b" }));
        assert.deepEqual(badRequestFields(err), ["email", "password", "role", "display_name"]);
        assert.match(err.rawMessage, /^email: /);
        const listed = await clientFor(UserService, t.tp.url, protocol).listUsers({ loginPrefix: username }, bearerOf(admin));
        assert.equal(listed.users.length, 0);
      });

      it("UpdateMe names nested fields by proto path and changes nothing", async () => {
        const users = clientFor(UserService, t.tp.url, protocol);
        const before = (await users.getMe({}, bearerOf(a))).user;
        const err = await errorOf(
          users.updateMe(
            {
              user: { displayName: "Fine Name", phoneNumber: "0151 1234567", preferences: { languageCode: "x-private", currencyCode: "EURO", notificationChannels: [NotificationChannel.UNSPECIFIED] } },
              updateMask: { paths: ["display_name", "phone_number", "preferences"] },
            },
            bearerOf(a),
          ),
        );
        assert.deepEqual(badRequestFields(err), [
          "user.phone_number",
          "user.preferences.language_code",
          "user.preferences.currency_code",
          "user.preferences.notification_channels",
        ]);
        assert.deepEqual((await users.getMe({}, bearerOf(a))).user, before);
      });

      it("admin requests: roles, role filter, login_prefix, page_size and required ids", async () => {
        const users = clientFor(UserService, t.tp.url, protocol);
        assert.deepEqual(badRequestFields(await errorOf(users.updateUserRoles({ roles: [Role.SERVICE] }, bearerOf(admin)))), ["user_id", "roles"]);
        assert.deepEqual(badRequestFields(await errorOf(users.updateUserRoles({ userId: a.userId, roles: [] }, bearerOf(admin)))), ["roles"]);
        const listed = await errorOf(users.listUsers({ pageSize: -1, loginPrefix: "a\u0000", role: 99 as Role }, bearerOf(admin)));
        assert.deepEqual(badRequestFields(listed), ["page_size", "login_prefix", "role"]);
        assert.deepEqual(badRequestFields(await errorOf(users.createServiceAccount({ name: "-leading" }, bearerOf(admin)))), ["name"]);
        assert.deepEqual((await users.getUser({ userId: a.userId }, bearerOf(admin))).user?.roles, [Role.CUSTOMER]);
        // Ids that are not ids stay NOT_FOUND, like someone else's: only their absence is a rule.
        assert.equal((await errorOf(users.getUser({ userId: "nope" }, bearerOf(admin)))).code, Code.NotFound);
        assert.equal((await errorOf(users.revokeSession({ sessionId: "nope" }, bearerOf(a)))).code, Code.NotFound);
      });

      it("re-authenticating requests require the password, and an empty one changes nothing", async () => {
        const users = clientFor(UserService, t.tp.url, protocol);
        const auth = clientFor(AuthService, t.tp.url, protocol);
        assert.deepEqual(badRequestFields(await errorOf(users.deleteMe({ password: "" }, bearerOf(a)))), ["password"]);
        const change = auth.changePassword({ currentPassword: "", newPassword: "short" }, bearerOf(a));
        assert.deepEqual(badRequestFields(await errorOf(change)), ["current_password", "new_password"]);
        // The account is still there, with its password.
        await auth.login({ login: a.username, password: a.password });
      });

      it("credentials checks carry no rules: malformed answers like wrong, with no BadRequest", async () => {
        const auth = clientFor(AuthService, t.tp.url, protocol);
        const wrong = await errorOf(auth.login({ login: a.username, password: "not the password" }));
        for (const login of ["ab", "\u0000", "x".repeat(300)]) {
          const err = await errorOf(auth.login({ login, password: "" }));
          assert.equal(err.code, Code.Unauthenticated);
          assert.equal(err.rawMessage, wrong.rawMessage);
          assert.equal(err.findDetails(BadRequestSchema).length, 0);
        }
        // The reset token is judged before the new password, whatever the password's shape.
        const reset = await errorOf(auth.resetPassword({ resetToken: "A".repeat(43), newPassword: "short" }));
        assert.deepEqual(badRequestFields(reset), ["reset_token"]);
        assert.equal((await errorOf(auth.issueServiceToken({ clientId: "\u0000", clientSecret: "" }))).code, Code.Unauthenticated);
        // An unknown but well-formed address is accepted like a known one.
        await auth.requestPasswordReset({ email: `${uniqueName()}@example.com` });
      });
    });
  }
});

describe("administrator configuration", () => {
  it("is checked with Register's field rules and the password checks, naming the variables", () => {
    const good = { username: " Root_Admin ", email: "Root@Grocery.example", password: "carrots in the cellar" };
    assert.deepEqual(validateAdminBootstrap(good), { username: "root_admin", email: "root@grocery.example", password: good.password });
    assert.throws(
      () => validateAdminBootstrap({ username: "ab", email: "not an address", password: "short" }),
      (e: unknown) => e instanceof ConfigError && /^ADMIN_USERNAME: .+; ADMIN_EMAIL: .+; ADMIN_PASSWORD: /.test(e.message),
    );
    assert.throws(() => validateAdminBootstrap({ ...good, password: "password123" }), (e: unknown) => e instanceof ConfigError && e.message.startsWith("ADMIN_PASSWORD: "));
  });
});
