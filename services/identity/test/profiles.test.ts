import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { NotificationChannel, PreferencesSchema, UserSchema, type User } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { codeOf } from "../../../test/clients.js";
import { backends, callJson, openTestDatabase } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { bearerOf, login, newAccount, startIdentity, waitForMail, type IdentityTestEnv } from "./identity-helpers.js";

const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });
const user = (init: Parameters<typeof create<typeof UserSchema>>[1]): User => create(UserSchema, init);

for (const backend of backends) {
  describe(`profiles (${backend})`, () => {
    let t: IdentityTestEnv;
    before(async () => {
      t = await startIdentity(backend);
    });
    after(() => t.close());

    it("changes only the masked fields and normalises them", async () => {
      const a = await newAccount(t);
      const { user: updated } = await t.users.updateMe(
        {
          user: user({
            displayName: "  Asha Grocer ",
            phoneNumber: "+49 151 1234-5678",
            username: "ignored",
            preferences: create(PreferencesSchema, { languageCode: "en-gb", currencyCode: "eur", marketingOptIn: true, notificationChannels: [NotificationChannel.SMS, NotificationChannel.PUSH, NotificationChannel.SMS] }),
          }),
          updateMask: mask("display_name", "phone_number", "preferences"),
        },
        bearerOf(a),
      );
      assert.equal(updated?.displayName, "Asha Grocer");
      assert.equal(updated?.phoneNumber, "+4915112345678");
      assert.equal(updated?.username, a.username);
      assert.deepEqual(
        { ...updated?.preferences, $typeName: undefined },
        { $typeName: undefined, languageCode: "en-GB", currencyCode: "EUR", marketingOptIn: true, notificationChannels: [NotificationChannel.SMS, NotificationChannel.PUSH] },
      );
      // A narrower mask leaves the rest alone; a masked empty value clears.
      const { user: second } = await t.users.updateMe({ user: user({ displayName: "ignored too" }), updateMask: mask("phone_number", "preferences.marketing_opt_in") }, bearerOf(a));
      assert.equal(second?.displayName, "Asha Grocer");
      assert.equal(second?.phoneNumber, "");
      assert.equal(second?.preferences?.marketingOptIn, false);
      assert.equal(second?.preferences?.currencyCode, "EUR");
      const { user: me } = await t.users.getMe({}, bearerOf(a));
      assert.deepEqual(me, second);
    });

    it("without a mask changes the fields that are set", async () => {
      const a = await newAccount(t);
      const { user: updated } = await t.users.updateMe({ user: user({ preferences: create(PreferencesSchema, { currencyCode: "CHF" }) }) }, bearerOf(a));
      assert.equal(updated?.preferences?.currencyCode, "CHF");
      assert.equal(updated?.displayName, a.username);
      assert.deepEqual(updated?.preferences?.notificationChannels, [NotificationChannel.EMAIL], "the default channel is untouched");
    });

    it("with an empty mask changes the fields that are set, like without one (AIP-134)", async () => {
      const a = await newAccount(t);
      // Present but empty on the binary wire: an explicit zero-length FieldMask.
      const { user: updated } = await t.users.updateMe({ user: user({ displayName: "Empty Mask", preferences: create(PreferencesSchema, { languageCode: "de" }) }), updateMask: mask() }, bearerOf(a));
      assert.equal(updated?.displayName, "Empty Mask");
      assert.equal(updated?.preferences?.languageCode, "de");
      assert.equal(updated?.preferences?.currencyCode, "", "an unset field is untouched");
      // And in JSON, where an empty mask is the empty string.
      const res = await callJson<{ user: { displayName: string; preferences: { languageCode: string } } }>(
        t.tp.url,
        "grocery.identity.v1.UserService/UpdateMe",
        { user: { displayName: "Json Empty" }, updateMask: "" },
        a.accessToken,
      );
      assert.equal(res.user.displayName, "Json Empty");
      assert.equal(res.user.preferences.languageCode, "de");
    });

    it("refuses unknown and read-only mask paths and bad values, naming the field, and stores nothing", async () => {
      const a = await newAccount(t);
      const cases: [Parameters<typeof t.users.updateMe>[0], string][] = [
        [{ user: user({ displayName: "x" }), updateMask: mask("display_name", "favourite_colour") }, "update_mask"],
        [{ user: user({ roles: [Role.ADMIN] }), updateMask: mask("roles") }, "update_mask"],
        [{ user: user({ username: "other" }), updateMask: mask("username") }, "update_mask"],
        [{ user: user({ displayName: "x" }), updateMask: mask("*", "display_name") }, "update_mask"],
        [{ user: user({ displayName: "x" }), updateMask: mask("preferences.language_code.x") }, "update_mask"],
        [{ user: user({ phoneNumber: "0151 1234567" }), updateMask: mask("phone_number") }, "user.phone_number"],
        [{ user: user({ phoneNumber: "+1234567890123456" }), updateMask: mask("phone_number") }, "user.phone_number"],
        [{ user: user({ preferences: create(PreferencesSchema, { languageCode: "english_uk" }) }), updateMask: mask("preferences.language_code") }, "user.preferences.language_code"],
        [{ user: user({ preferences: create(PreferencesSchema, { languageCode: "x-private" }) }), updateMask: mask("preferences.language_code") }, "user.preferences.language_code"],
        [{ user: user({ preferences: create(PreferencesSchema, { currencyCode: "EURO" }) }), updateMask: mask("preferences.currency_code") }, "user.preferences.currency_code"],
        [{ user: user({ preferences: create(PreferencesSchema, { currencyCode: "XYZ" }) }), updateMask: mask("preferences.currency_code") }, "user.preferences.currency_code"],
        [{ user: user({ preferences: create(PreferencesSchema, { currencyCode: " " }) }), updateMask: mask("preferences.currency_code") }, "user.preferences.currency_code"],
        [{ user: user({ preferences: create(PreferencesSchema, { notificationChannels: [NotificationChannel.UNSPECIFIED] }) }), updateMask: mask("preferences.notification_channels") }, "user.preferences.notification_channels"],
        [{ user: user({ preferences: create(PreferencesSchema, { notificationChannels: [99 as NotificationChannel] }) }), updateMask: mask("preferences") }, "user.preferences.notification_channels"],
        [{ user: user({ displayName: "bad\u0007name" }), updateMask: mask("display_name") }, "user.display_name"],
        [{ user: user({ displayName: "ok", email: "broken" }), updateMask: mask("*") }, "user.email"],
      ];
      for (const [req, field] of cases) {
        const err = await t.users.updateMe(req, bearerOf(a)).then(
          () => assert.fail(`accepted ${JSON.stringify(req.updateMask?.paths)}`),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(err.code, Code.InvalidArgument, err.rawMessage);
        assert.ok(err.rawMessage.startsWith(`${field}:`), `${err.rawMessage} should name ${field}`);
      }
      const { user: me } = await t.users.getMe({}, bearerOf(a));
      assert.equal(me?.displayName, a.username);
      assert.equal(me?.phoneNumber, "");
    });

    it("accepts the mask in JSON (camelCase paths) over Connect", async () => {
      const a = await newAccount(t);
      const res = await callJson<{ user: { displayName: string } }>(
        t.tp.url,
        "grocery.identity.v1.UserService/UpdateMe",
        { user: { displayName: "Json Name" }, updateMask: "displayName" },
        a.accessToken,
      );
      assert.equal(res.user.displayName, "Json Name");
    });

    it("changes the email only with the current password, and tells the old address", async () => {
      const a = await newAccount(t);
      const email = `new-${a.username}@example.com`;
      const req = { user: user({ email }), updateMask: mask("email") };
      const missing = await t.users.updateMe(req, bearerOf(a)).catch((e: unknown) => ConnectError.from(e));
      assert.ok(missing instanceof ConnectError && missing.code === Code.InvalidArgument && missing.rawMessage.startsWith("current_password:"));
      assert.equal(await codeOf(t.users.updateMe({ ...req, currentPassword: "wrong password" }, bearerOf(a))), Code.InvalidArgument);
      const other = await newAccount(t);
      assert.equal(await codeOf(t.users.updateMe({ user: user({ email: other.email.toUpperCase() }), updateMask: mask("email"), currentPassword: a.password }, bearerOf(a))), Code.AlreadyExists);
      const { user: updated } = await t.users.updateMe({ ...req, currentPassword: a.password }, bearerOf(a));
      assert.equal(updated?.email, email);
      await login(t, email, a.password);
      await waitForMail(t.mailDir, a.email, /email address was changed/);
      // Setting the same address again is no change and needs no password.
      await t.users.updateMe({ user: user({ email: email.toUpperCase() }), updateMask: mask("email") }, bearerOf(a));
    });

    it("answers a wrong current password the same whether or not the new email is taken", async () => {
      const a = await newAccount(t);
      const other = await newAccount(t);
      const attempt = (email: string) =>
        t.users.updateMe({ user: user({ email }), updateMask: mask("email"), currentPassword: "wrong password" }, bearerOf(a)).then(
          () => "ok",
          (e: unknown) => {
            const err = ConnectError.from(e);
            return `${Code[err.code]} ${err.rawMessage}`;
          },
        );
      const taken = await attempt(other.email);
      const free = await attempt(`free-${a.username}@example.com`);
      assert.equal(taken, free);
      assert.match(taken, /^InvalidArgument current_password:/);
      // Both wrong passwords counted against the re-authentication throttle like any other.
      const codes: Code[] = [];
      for (let i = 0; i < 30; i++) codes.push(await codeOf(t.users.updateMe({ user: user({ email: other.email }), updateMask: mask("email"), currentPassword: `guess ${i}` }, bearerOf(a))));
      assert.equal(codes.filter((c) => c === Code.InvalidArgument).length, 28, codes.map((c) => Code[c]).join(", "));
      assert.ok(codes.slice(28).every((c) => c === Code.ResourceExhausted));
    });

    it("deletes the account with its password, ends its sessions and records user.deleted", async () => {
      const a = await newAccount(t);
      const second = await login(t, a.username, a.password);
      const wrong = await t.users.deleteMe({ password: "not the password" }, bearerOf(a)).catch((e: unknown) => ConnectError.from(e));
      assert.ok(wrong instanceof ConnectError && wrong.code === Code.InvalidArgument && wrong.rawMessage.startsWith("password:"));
      await t.users.getMe({}, bearerOf(a));
      await t.users.deleteMe({ password: a.password }, bearerOf(a));
      for (const s of [a, second]) {
        assert.equal(await codeOf(t.users.getMe({}, bearerOf(s))), Code.Unauthenticated);
        assert.equal(await codeOf(t.auth.refreshToken({ refreshToken: s.refreshToken })), Code.Unauthenticated);
      }
      assert.equal(await codeOf(t.auth.login({ login: a.username, password: a.password })), Code.Unauthenticated);
      // The name is free again.
      await t.auth.register({ username: a.username, email: a.email, password: a.password });

      // The event waits in the outbox for the services holding the user's data.
      await t.tp.stop();
      const db = await openTestDatabase(t.tp);
      try {
        const rows = rowsOf<{ payload: { user_id: string } }>(await db.db.execute(sql`select payload from identity.outbox where topic = 'user.deleted'`));
        assert.ok(rows.some((r) => r.payload.user_id === a.userId), JSON.stringify(rows));
      } finally {
        await db.close();
      }
      t.tp = await t.tp.restart();
    });
  });
}
