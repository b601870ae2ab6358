import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeOf } from "../../../test/clients.js";
import { sql } from "drizzle-orm";
import { backends, concurrencySkip, openTestDatabase } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { bearerOf, login, mailbox, newAccount, resetTokenIn, restartIdentity, startIdentity, waitForMail, type IdentityTestEnv } from "./identity-helpers.js";

const MINUTE = 60_000;

for (const backend of backends) {
  describe(`password management (${backend})`, () => {
    let t: IdentityTestEnv;
    before(async () => {
      t = await startIdentity(backend);
    });
    after(() => t.close());

    const requestReset = async (email: string) => {
      const before = (await mailbox(t.mailDir)).filter((m) => m.to === email && /Reset your/.test(m.subject)).length;
      await t.auth.requestPasswordReset({ email });
      const [mail] = (await waitForMail(t.mailDir, email, /Reset your/, before + 1)).slice(-1);
      assert.ok(mail);
      return resetTokenIn(mail);
    };

    it("sends a welcome mail on registration through the outbox", async () => {
      const a = await newAccount(t);
      const [mail] = await waitForMail(t.mailDir, a.email, /Welcome/);
      assert.match(mail?.body ?? "", new RegExp(a.username));
    });

    it("changes the password: the calling session survives, every other session ends", async () => {
      const a = await newAccount(t);
      const other = await login(t, a.username, a.password);
      await t.auth.changePassword({ currentPassword: a.password, newPassword: "a brand new passphrase" }, bearerOf(a));
      // The caller keeps working, with the same access and refresh tokens.
      await t.users.getMe({}, bearerOf(a));
      const refreshed = await t.auth.refreshToken({ refreshToken: a.refreshToken });
      assert.ok(refreshed.accessToken);
      // The other session is gone at once, access and refresh token alike.
      assert.equal(await codeOf(t.users.getMe({}, bearerOf(other))), Code.Unauthenticated);
      assert.equal(await codeOf(t.auth.refreshToken({ refreshToken: other.refreshToken })), Code.Unauthenticated);
      // Only the new password logs in.
      assert.equal(await codeOf(t.auth.login({ login: a.username, password: a.password })), Code.Unauthenticated);
      await login(t, a.username, "a brand new passphrase");
      await waitForMail(t.mailDir, a.email, /password was changed/);
    });

    it("refuses a wrong current password and a bad new one, naming the field, and changes nothing", async () => {
      const a = await newAccount(t);
      const cases: [{ currentPassword: string; newPassword: string }, string][] = [
        [{ currentPassword: "not my password", newPassword: "a brand new passphrase" }, "current_password"],
        [{ currentPassword: "", newPassword: "a brand new passphrase" }, "current_password"],
        [{ currentPassword: a.password, newPassword: "short" }, "new_password"],
        [{ currentPassword: a.password, newPassword: "password123" }, "new_password"],
        [{ currentPassword: a.password, newPassword: a.username }, "new_password"],
        [{ currentPassword: a.password, newPassword: a.password }, "new_password"],
      ];
      for (const [req, field] of cases) {
        const err = await t.auth.changePassword(req, bearerOf(a)).then(
          () => assert.fail("accepted"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(err.code, Code.InvalidArgument);
        assert.ok(err.rawMessage.startsWith(`${field}:`), err.rawMessage);
      }
      await login(t, a.username, a.password);
    });

    it("answers a reset request the same way for known and unknown addresses, and mails only the known one", async () => {
      const a = await newAccount(t);
      const unknown = `nobody-${a.username}@example.com`;
      const known = await t.auth.requestPasswordReset({ email: a.email });
      const other = await t.auth.requestPasswordReset({ email: unknown });
      assert.deepEqual(known, other);
      await waitForMail(t.mailDir, a.email, /Reset your/);
      // A graceful stop finishes every reset request already answered; only then is "no mail for the unknown
      // address" a fact rather than a race. The outbox holds everything ever queued (sent mail keeps its recipient).
      await t.tp.stop();
      const db = await openTestDatabase(t.tp);
      try {
        const resetsTo = async (to: string) =>
          rowsOf<{ n: number }>(await db.db.execute(sql`select count(*)::int as n from identity.outbox where topic = 'mail' and payload->>'to' = ${to} and payload->>'subject' like 'Reset%'`))[0]?.n;
        assert.equal(await resetsTo(unknown), 0);
        assert.equal(await resetsTo(a.email), 1);
      } finally {
        await db.close();
      }
      await restartIdentity(t);
      assert.equal((await mailbox(t.mailDir)).filter((m) => m.to === unknown).length, 0);
      // Upper case and spaces are the same address.
      await t.auth.requestPasswordReset({ email: `  ${a.email.toUpperCase()} ` });
      await waitForMail(t.mailDir, a.email, /Reset your/, 2);
      assert.equal(await codeOf(t.auth.requestPasswordReset({ email: "not an address" })), Code.InvalidArgument);
    });

    it("resets the password with a token that works once, and ends every session", async () => {
      const a = await newAccount(t);
      const second = await login(t, a.username, a.password);
      const token = await requestReset(a.email);
      assert.ok(Buffer.from(token, "base64url").length >= 16, "at least 128 random bits");
      await t.auth.resetPassword({ resetToken: token, newPassword: "reset to something new" });
      for (const s of [a, second]) {
        assert.equal(await codeOf(t.users.getMe({}, bearerOf(s))), Code.Unauthenticated);
        assert.equal(await codeOf(t.auth.refreshToken({ refreshToken: s.refreshToken })), Code.Unauthenticated);
      }
      await login(t, a.username, "reset to something new");
      // The token is spent.
      const again = await t.auth.resetPassword({ resetToken: token, newPassword: "and once more again" }).catch((e: unknown) => ConnectError.from(e));
      assert.ok(again instanceof ConnectError);
      assert.equal(again.code, Code.InvalidArgument);
      assert.ok(again.rawMessage.startsWith("reset_token:"));
      await waitForMail(t.mailDir, a.email, /password was changed/);
    });

    it("gives unknown, spent and expired tokens one and the same answer", async () => {
      const a = await newAccount(t);
      const token = await requestReset(a.email);
      const answer = (resetToken: string) =>
        t.auth.resetPassword({ resetToken, newPassword: "reset to something new" }).then(
          () => "ok",
          (e: unknown) => `${ConnectError.from(e).code} ${ConnectError.from(e).rawMessage}`,
        );
      const unknown = await answer("A".repeat(43));
      const empty = await answer("");
      t.clock.advance(31 * MINUTE);
      const expired = await answer(token);
      assert.equal(unknown, `${Code.InvalidArgument} reset_token: is invalid, expired or already used`);
      assert.equal(expired, unknown);
      assert.equal(empty, unknown);
      await login(t, a.username, a.password);
    });

    it("keeps a token usable when the new password is refused, and voids older tokens once one is used", async () => {
      const a = await newAccount(t);
      const first = await requestReset(a.email);
      const second = await requestReset(a.email);
      assert.notEqual(first, second);
      assert.equal(await codeOf(t.auth.resetPassword({ resetToken: second, newPassword: "short" })), Code.InvalidArgument);
      await t.auth.resetPassword({ resetToken: second, newPassword: "reset to something new" });
      assert.equal(await codeOf(t.auth.resetPassword({ resetToken: first, newPassword: "another new passphrase" })), Code.InvalidArgument);
    });

    it("voids reset tokens sent to the old address when the email changes", async () => {
      const a = await newAccount(t);
      const token = await requestReset(a.email);
      await t.users.updateMe({ user: { email: `moved-${a.username}@example.com` }, updateMask: { paths: ["email"] }, currentPassword: a.password }, bearerOf(a));
      assert.equal(await codeOf(t.auth.resetPassword({ resetToken: token, newPassword: "taken over by someone" })), Code.InvalidArgument);
      await login(t, a.username, a.password);
    });

    it("lets one of two concurrent uses of a token win", { skip: concurrencySkip(backend) }, async () => {
      const a = await newAccount(t);
      const token = await requestReset(a.email);
      const results = await Promise.allSettled([
        t.auth.resetPassword({ resetToken: token, newPassword: "first racer passphrase" }),
        t.auth.resetPassword({ resetToken: token, newPassword: "second racer passphrase" }),
      ]);
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    });
  });
}
