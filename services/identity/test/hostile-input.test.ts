/**
 * Input PostgreSQL cannot store (a NUL character) or that no account can match must be refused as bad input or
 * answered like any other miss, never reach SQL and come back INTERNAL, and must change nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { codeOf, errorOf } from "../../../test/clients.js";
import { backends, uniqueName } from "../../../test/harness.js";
import { encodeScopedPageToken } from "@local-e-grocery/platform/pagination.js";
import { type Account, bearerOf, type IdentityTestEnv, newAccount, startIdentityWithAdmin } from "./identity-helpers.js";

const NUL = "\u0000";

for (const backend of backends) {
  describe(`hostile input (${backend})`, () => {
    let t: IdentityTestEnv;
    let admin: Account;
    before(async () => ({ t, admin } = await startIdentityWithAdmin(backend)));
    after(() => t.close());

    it("a NUL in the login is the ordinary UNAUTHENTICATED of a wrong login", async () => {
      const a = await newAccount(t);
      const wrong = await errorOf(t.auth.login({ login: a.username, password: "not the password" }));
      for (const login of [`${a.username}${NUL}`, `${NUL}${a.email}`, NUL]) {
        const e = await errorOf(t.auth.login({ login, password: a.password }));
        assert.equal(e.code, Code.Unauthenticated, JSON.stringify(login));
        assert.equal(e.rawMessage, wrong.rawMessage);
      }
    });

    it("a NUL or other control character in an email is INVALID_ARGUMENT naming the field, and stores nothing", async () => {
      const username = uniqueName();
      for (const email of [`${username}${NUL}@example.com`, `${username}@exam${NUL}ple.com`, `${username}\u0007@example.com`]) {
        const e = await errorOf(t.auth.register({ username, email, password: `tomato soup ${username}`, role: Role.CUSTOMER }));
        assert.equal(e.code, Code.InvalidArgument, JSON.stringify(email));
        assert.match(e.rawMessage, /^email:/);
      }
      const listed = await t.users.listUsers({ loginPrefix: username }, bearerOf(admin));
      assert.equal(listed.users.length, 0);

      assert.equal(await codeOf(t.auth.requestPasswordReset({ email: `x${NUL}@example.com` })), Code.InvalidArgument);

      const a = await newAccount(t);
      const e = await errorOf(t.users.updateMe({ user: { email: `new${NUL}@example.com` }, updateMask: { paths: ["email"] }, currentPassword: a.password }, bearerOf(a)));
      assert.equal(e.code, Code.InvalidArgument);
      assert.match(e.rawMessage, /^user\.email:/);
      assert.equal((await t.users.getMe({}, bearerOf(a))).user?.email, a.email);
    });

    it("ListUsers refuses a control character in login_prefix and a forged page token holding one", async () => {
      const e = await errorOf(t.users.listUsers({ loginPrefix: `a${NUL}` }, bearerOf(admin)));
      assert.equal(e.code, Code.InvalidArgument);
      assert.match(e.rawMessage, /^login_prefix:/);
      // Page tokens are not signed and their scope is public knowledge; a forged name must not reach SQL.
      for (const name of [`a${NUL}`, "a".repeat(10_000)]) {
        const pageToken = encodeScopedPageToken("users::", [name]);
        assert.equal(await codeOf(t.users.listUsers({ pageToken }, bearerOf(admin))), Code.InvalidArgument, `${name.length} chars`);
      }
      const serviceToken = encodeScopedPageToken("service-accounts", [`a${NUL}`]);
      assert.equal(await codeOf(t.users.listServiceAccounts({ pageToken: serviceToken }, bearerOf(admin))), Code.InvalidArgument);
    });

    it("DeleteServiceAccount answers NOT_FOUND for a client id no account can have", async () => {
      const { serviceAccount } = await t.users.createServiceAccount({ name: uniqueName("svc").replace(/_/g, "-") }, bearerOf(admin));
      const clientId = serviceAccount?.clientId ?? "";
      for (const bad of [`${clientId}${NUL}`, NUL, "x".repeat(10_000)]) {
        assert.equal(await codeOf(t.users.deleteServiceAccount({ clientId: bad }, bearerOf(admin))), Code.NotFound, `${bad.length} chars`);
      }
      const { serviceAccounts } = await t.users.listServiceAccounts({ pageSize: 100 }, bearerOf(admin));
      assert.ok(serviceAccounts.some((s) => s.clientId === clientId), "the real account is untouched");
    });
  });
}
