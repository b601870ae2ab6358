import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { UserSchema } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import { ActivityKind, type ActivityEvent } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { codeOf } from "../../../test/clients.js";
import { backends } from "../../../test/harness.js";
import { bearerOf, login, newAccount, startIdentity, type Account, type IdentityTestEnv } from "./identity-helpers.js";

for (const backend of backends) {
  describe(`sessions and activity (${backend})`, () => {
    let t: IdentityTestEnv;
    before(async () => {
      t = await startIdentity(backend);
    });
    after(() => t.close());

    const allActivity = async (a: Account, pageSize = 0): Promise<ActivityEvent[]> => {
      const events: ActivityEvent[] = [];
      let pageToken = "";
      do {
        const page = await t.users.listActivity({ pageSize, pageToken }, bearerOf(a));
        events.push(...page.events);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return events;
    };

    it("lists the caller's live sessions, newest first, with the current one marked", async () => {
      const a = await newAccount(t, undefined, "phone-app/2.0");
      const b = await login(t, a.username, a.password, "browser/1.0");
      const c = await login(t, a.username, a.password, "tablet/3.1");
      await t.users.revokeSession({ sessionId: c.sessionId }, bearerOf(a));
      const { sessions, nextPageToken } = await t.users.listSessions({}, bearerOf(b));
      assert.equal(nextPageToken, "");
      assert.deepEqual(
        sessions.map((s) => s.id),
        [b.sessionId, a.sessionId],
      );
      assert.deepEqual(
        sessions.map((s) => s.current),
        [true, false],
      );
      const [current] = sessions;
      assert.match(current?.userAgent ?? "", /browser\/1\.0/);
      assert.equal(current?.ipAddress, "127.0.0.1");
      assert.ok(current?.createTime && current.lastUsedTime && current.expireTime);
      assert.ok(timestampDate(current.expireTime) > timestampDate(current.createTime));
      // Paged one at a time, the same two.
      const first = await t.users.listSessions({ pageSize: 1 }, bearerOf(b));
      const second = await t.users.listSessions({ pageSize: 1, pageToken: first.nextPageToken }, bearerOf(b));
      assert.deepEqual([...first.sessions, ...second.sessions].map((s) => s.id), [b.sessionId, a.sessionId]);
      assert.equal(second.nextPageToken, "");
    });

    it("revokes one of the caller's sessions at once; another user's session is NOT_FOUND", async () => {
      const a = await newAccount(t);
      const a2 = await login(t, a.username, a.password);
      const other = await newAccount(t);
      assert.equal(await codeOf(t.users.revokeSession({ sessionId: other.sessionId }, bearerOf(a))), Code.NotFound);
      assert.equal(await codeOf(t.users.revokeSession({ sessionId: "not-a-uuid" }, bearerOf(a))), Code.NotFound);
      assert.equal(await codeOf(t.users.revokeSession({ sessionId: "" }, bearerOf(a))), Code.InvalidArgument);
      // The other user's session is untouched.
      await t.users.getMe({}, bearerOf(other));
      await t.auth.refreshToken({ refreshToken: other.refreshToken });

      await t.users.revokeSession({ sessionId: a2.sessionId }, bearerOf(a));
      assert.equal(await codeOf(t.users.getMe({}, bearerOf(a2))), Code.Unauthenticated);
      assert.equal(await codeOf(t.auth.refreshToken({ refreshToken: a2.refreshToken })), Code.Unauthenticated);
      assert.equal(await codeOf(t.users.revokeSession({ sessionId: a2.sessionId }, bearerOf(a))), Code.NotFound, "already ended");
      // Revoking the current session works too, like a logout.
      await t.users.revokeSession({ sessionId: a.sessionId }, bearerOf(a));
      assert.equal(await codeOf(t.users.getMe({}, bearerOf(a))), Code.Unauthenticated);
    });

    it("records logins, failures, reuse, password and profile changes and revocations, newest first", async () => {
      const a = await newAccount(t);
      await codeOf(t.auth.login({ login: a.username, password: "wrong password" }));
      const b = await login(t, a.username, a.password);
      const spent = b.refreshToken;
      await t.auth.refreshToken({ refreshToken: spent });
      t.clock.advance(11_000); // past the reuse grace window
      await codeOf(t.auth.refreshToken({ refreshToken: spent })); // reuse: session b revoked
      await t.users.updateMe({ user: create(UserSchema, { displayName: "New Name", phoneNumber: "+33612345678" }), updateMask: create(FieldMaskSchema, { paths: ["display_name", "phone_number"] }) }, bearerOf(a));
      const c = await login(t, a.username, a.password);
      await t.users.revokeSession({ sessionId: c.sessionId }, bearerOf(a));
      await t.auth.changePassword({ currentPassword: a.password, newPassword: "a brand new passphrase" }, bearerOf(a));

      const events = await allActivity(a);
      assert.deepEqual(
        events.map((e) => ActivityKind[e.kind]),
        ["PASSWORD_CHANGED", "SESSION_REVOKED", "LOGIN_SUCCEEDED", "PROFILE_UPDATED", "REFRESH_TOKEN_REUSED", "LOGIN_SUCCEEDED", "LOGIN_FAILED", "LOGIN_SUCCEEDED"],
      );
      const byKind = (k: ActivityKind) => events.find((e) => e.kind === k);
      assert.deepEqual(byKind(ActivityKind.PROFILE_UPDATED)?.changedFields, ["display_name", "phone_number"]);
      assert.equal(byKind(ActivityKind.REFRESH_TOKEN_REUSED)?.sessionId, b.sessionId);
      assert.equal(byKind(ActivityKind.SESSION_REVOKED)?.sessionId, c.sessionId);
      assert.equal(byKind(ActivityKind.LOGIN_FAILED)?.ipAddress, "127.0.0.1");
      for (let i = 1; i < events.length; i++) {
        assert.ok(timestampDate(events[i - 1]!.createTime!) >= timestampDate(events[i]!.createTime!), "newest first");
      }
      // Page by page gives the same events, each once.
      const paged = await allActivity(a, 3);
      assert.deepEqual(paged.map((e) => e.id), events.map((e) => e.id));
      // A user sees only their own history.
      const other = await newAccount(t);
      assert.deepEqual((await allActivity(other)).map((e) => ActivityKind[e.kind]), ["LOGIN_SUCCEEDED"]);
    });

    it("caps page sizes and refuses negative sizes and foreign or forged page tokens", async () => {
      const a = await newAccount(t);
      const b = await newAccount(t);
      for (let i = 0; i < 3; i++) await login(t, a.username, a.password);
      const page = await t.users.listActivity({ pageSize: 2 }, bearerOf(a));
      assert.equal(page.events.length, 2);
      assert.notEqual(page.nextPageToken, "");
      assert.equal((await t.users.listActivity({ pageSize: 100_000 }, bearerOf(a))).events.length, 4);
      assert.equal(await codeOf(t.users.listActivity({ pageSize: -1 }, bearerOf(a))), Code.InvalidArgument);
      assert.equal(await codeOf(t.users.listActivity({ pageToken: page.nextPageToken }, bearerOf(b))), Code.InvalidArgument);
      assert.equal(await codeOf(t.users.listActivity({ pageToken: "garbage!" }, bearerOf(a))), Code.InvalidArgument);
      assert.equal(await codeOf(t.users.listSessions({ pageToken: page.nextPageToken }, bearerOf(a))), Code.InvalidArgument);
    });
  });
}
