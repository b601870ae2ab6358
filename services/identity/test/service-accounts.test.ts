import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { codeOf } from "../../../test/clients.js";
import { backends, openTestDatabase } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { type Account, bearerOf, claimsOf, type IdentityTestEnv, newAccount, startIdentityWithAdmin } from "./identity-helpers.js";

for (const backend of backends) {
  describe(`service accounts (${backend})`, () => {
    let t: IdentityTestEnv;
    let admin: Account;
    before(async () => ({ t, admin } = await startIdentityWithAdmin(backend)));
    after(() => t.close());

    const createAccount = async (name: string) => {
      const res = await t.users.createServiceAccount({ name }, bearerOf(admin));
      return { clientId: res.serviceAccount?.clientId ?? "", clientSecret: res.clientSecret };
    };

    it("creates an account whose secret is shown once, and lists it by name without the secret", async () => {
      const res = await t.users.createServiceAccount({ name: " Cart-Service " }, bearerOf(admin));
      assert.equal(res.serviceAccount?.name, "cart-service");
      assert.match(res.serviceAccount?.clientId ?? "", /^svc_[0-9a-f]{24}$/);
      assert.ok(Buffer.from(res.clientSecret.replace(/^gsk_/, ""), "base64url").length >= 32);
      await createAccount("address-service");
      const { serviceAccounts, nextPageToken } = await t.users.listServiceAccounts({}, bearerOf(admin));
      assert.deepEqual(serviceAccounts.map((a) => a.name), ["address-service", "cart-service"]);
      assert.equal(nextPageToken, "");
      assert.ok(serviceAccounts.every((a) => !Object.values(a).includes(res.clientSecret)));
      const page = await t.users.listServiceAccounts({ pageSize: 1 }, bearerOf(admin));
      const rest = await t.users.listServiceAccounts({ pageSize: 1, pageToken: page.nextPageToken }, bearerOf(admin));
      assert.deepEqual([...page.serviceAccounts, ...rest.serviceAccounts].map((a) => a.name), ["address-service", "cart-service"]);
      assert.equal(await codeOf(t.users.createServiceAccount({ name: "cart-service" }, bearerOf(admin))), Code.AlreadyExists);
      for (const name of ["", "x", "has space", "-leading", "a".repeat(65)]) {
        const err = await t.users.createServiceAccount({ name }, bearerOf(admin)).catch((e: unknown) => ConnectError.from(e));
        assert.ok(err instanceof ConnectError && err.code === Code.InvalidArgument && err.rawMessage.startsWith("name:"), name);
      }
    });

    it("issues client-credentials tokens: role SERVICE, sub = client id, no session", async () => {
      const sa = await createAccount("orders-service");
      const res = await t.auth.issueServiceToken(sa);
      assert.equal(res.tokenType, "Bearer");
      assert.equal(res.expiresIn, 900);
      const claims = claimsOf(res.accessToken);
      assert.equal(claims["sub"], sa.clientId);
      assert.equal(claims["client_id"], sa.clientId);
      assert.deepEqual(claims["roles"], ["service"]);
      assert.equal(claims["sid"], undefined);
      assert.equal(Number(claims["exp"]) - Number(claims["iat"]), 900);
      const header = JSON.parse(Buffer.from(res.accessToken.split(".")[0] ?? "", "base64url").toString()) as { typ: string; alg: string };
      assert.deepEqual([header.typ, header.alg], ["at+jwt", "ES256"]);
      const { serviceAccounts } = await t.users.listServiceAccounts({}, bearerOf(admin));
      assert.ok(serviceAccounts.find((a) => a.clientId === sa.clientId)?.lastUsedTime);
    });

    it("keeps the last-used time to the minute, writing it at most once a minute", async () => {
      const sa = await createAccount("burst-service");
      const lastUsed = async () => {
        const { serviceAccounts } = await t.users.listServiceAccounts({}, bearerOf(admin));
        const time = serviceAccounts.find((a) => a.clientId === sa.clientId)?.lastUsedTime;
        return time === undefined ? undefined : Number(time.seconds) * 1000 + Math.floor(time.nanos / 1e6);
      };
      assert.equal(await lastUsed(), undefined, "never used");
      await t.auth.issueServiceToken(sa);
      const first = await lastUsed();
      assert.ok(first !== undefined && Math.abs(first - t.clock()) < 5_000, "the first token sets it");
      t.clock.advance(30_000);
      await t.auth.issueServiceToken(sa);
      assert.equal(await lastUsed(), first, "a token within the minute leaves it");
      t.clock.advance(31_000);
      await t.auth.issueServiceToken(sa);
      const third = await lastUsed();
      assert.ok(third !== undefined && third - first >= 60_000, `a token a minute later moves it (${first} → ${third})`);
    });

    it("refuses wrong secrets and unknown clients with one and the same UNAUTHENTICATED", async () => {
      const sa = await createAccount("billing-service");
      const answers = await Promise.all(
        [
          { clientId: sa.clientId, clientSecret: "gsk_wrong" },
          { clientId: sa.clientId, clientSecret: "" },
          { clientId: "svc_000000000000000000000000", clientSecret: sa.clientSecret },
          { clientId: "", clientSecret: "" },
        ].map((req) => t.auth.issueServiceToken(req).then(() => "ok", (e: unknown) => `${ConnectError.from(e).code} ${ConnectError.from(e).rawMessage}`)),
      );
      assert.deepEqual(new Set(answers), new Set([`${Code.Unauthenticated} invalid client credentials`]));
    });

    it("reaches only what ROLE_SERVICE may: GetUser, not the user or admin RPCs", async () => {
      const sa = await createAccount("notify-service");
      const token = (await t.auth.issueServiceToken(sa)).accessToken;
      const u = await newAccount(t);
      const { user } = await t.users.getUser({ userId: u.userId }, bearerOf({ accessToken: token }));
      assert.equal(user?.email, u.email);
      const denied = [
        () => t.users.getMe({}, bearerOf({ accessToken: token })),
        () => t.users.listUsers({}, bearerOf({ accessToken: token })),
        () => t.users.updateUserRoles({ userId: u.userId }, bearerOf({ accessToken: token })),
        () => t.users.listSessions({}, bearerOf({ accessToken: token })),
        () => t.users.createServiceAccount({ name: "escalate" }, bearerOf({ accessToken: token })),
        () => t.auth.logout({}, bearerOf({ accessToken: token })),
        () => t.auth.changePassword({}, bearerOf({ accessToken: token })),
        () => t.auth.rotateSigningKey({}, bearerOf({ accessToken: token })),
      ];
      for (const call of denied) assert.equal(await codeOf(call()), Code.PermissionDenied);
    });

    it("deletes an account: no new tokens, and identity refuses the ones it holds at once", async () => {
      const sa = await createAccount("retired-service");
      const token = (await t.auth.issueServiceToken(sa)).accessToken;
      const u = await newAccount(t);
      await t.users.getUser({ userId: u.userId }, bearerOf({ accessToken: token }));
      await t.users.deleteServiceAccount({ clientId: sa.clientId }, bearerOf(admin));
      assert.equal(await codeOf(t.auth.issueServiceToken(sa)), Code.Unauthenticated);
      assert.equal(await codeOf(t.users.getUser({ userId: u.userId }, bearerOf({ accessToken: token }))), Code.Unauthenticated);
      assert.equal(await codeOf(t.users.deleteServiceAccount({ clientId: sa.clientId }, bearerOf(admin))), Code.NotFound);
      assert.equal(await codeOf(t.users.deleteServiceAccount({ clientId: "" }, bearerOf(admin))), Code.InvalidArgument);
    });

    it("stores only the SHA-256 of each secret", async () => {
      const sa = await createAccount("audit-service");
      await t.tp.stop();
      const db = await openTestDatabase(t.tp);
      try {
        const rows = rowsOf<{ secret_hash: string }>(await db.db.execute(sql`select secret_hash from identity.service_accounts where client_id = ${sa.clientId}`));
        assert.deepEqual(
          rows.map((r) => r.secret_hash),
          [createHash("sha256").update(sa.clientSecret).digest("base64url")],
        );
        const everything = JSON.stringify(rowsOf(await db.db.execute(sql`select * from identity.service_accounts`)));
        assert.ok(!everything.includes(sa.clientSecret));
      } finally {
        await db.close();
      }
      t.tp = await t.tp.restart();
    });
  });
}
