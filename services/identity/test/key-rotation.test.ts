import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import jwt from "jsonwebtoken";
import { codeOf } from "../../../test/clients.js";
import { backends, openTestDatabase } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { type Account, bearerOf, type IdentityTestEnv, loginAdmin, newAccount, restartIdentity, startIdentityWithAdmin } from "./identity-helpers.js";

const MINUTE = 60_000;
const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()) as { kid: string }).kid;

for (const backend of backends) {
  describe(`signing key rotation (${backend})`, () => {
    let t: IdentityTestEnv;
    let admin: Account;
    before(async () => ({ t, admin } = await startIdentityWithAdmin(backend)));
    after(() => t.close());

    const publishedKids = async () => {
      const res = await fetch(`${t.tp.url}/.well-known/jwks.json`);
      const body = (await res.json()) as { keys: { kid: string }[] };
      const rpc = await t.auth.getJwks({});
      assert.deepEqual(rpc.keys.map((k) => k.kid), body.keys.map((k) => k.kid));
      return body.keys.map((k) => k.kid);
    };

    it("an immediate rotation signs with the new key at once, keeps the old one published until its tokens expire, then drops it", async () => {
      const u = await newAccount(t);
      const oldKid = kidOf(u.accessToken);
      assert.deepEqual(await publishedKids(), [oldKid]);

      const { kid } = await t.auth.rotateSigningKey({ immediate: true }, bearerOf(admin));
      assert.notEqual(kid, oldKid);
      assert.deepEqual(await publishedKids(), [kid, oldKid]);
      // New tokens carry the new kid and verify at once; tokens of the old key still work.
      const fresh = await newAccount(t);
      assert.equal(kidOf(fresh.accessToken), kid);
      await t.users.getMe({}, bearerOf(fresh));
      await t.users.getMe({}, bearerOf(u));
      assert.equal(kidOf((await t.auth.refreshToken({ refreshToken: u.refreshToken })).accessToken), kid);

      // Take the retired private key out of the database, as an attacker who stole it would.
      await t.tp.stop();
      const db = await openTestDatabase(t.tp);
      let pem: string;
      try {
        const rows = rowsOf<{ private_key_pem: string }>(await db.db.execute(sql`select private_key_pem from identity.signing_keys where kid = ${oldKid}`));
        pem = rows[0]?.private_key_pem ?? "";
      } finally {
        await db.close();
      }
      await restartIdentity(t);
      const forge = () => {
        const now = Math.floor(t.clock() / 1000);
        return jwt.sign(
          { iss: "https://identity.grocery.local", aud: "grocery", sub: u.userId, roles: ["customer"], sid: u.sessionId, jti: randomUUID(), iat: now, exp: now + 86_400 },
          pem,
          { algorithm: "ES256", header: { alg: "ES256", typ: "at+jwt", kid: oldKid } },
        );
      };
      // While the old key is published a token it signs verifies…
      await t.users.getMe({}, bearerOf({ accessToken: forge() }));

      // …and once its tokens have all expired (15 min + margin) it is dropped, and nothing it signs verifies.
      t.clock.advance(20 * MINUTE);
      assert.deepEqual(await publishedKids(), [kid]);
      assert.equal(await codeOf(t.users.getMe({}, bearerOf({ accessToken: forge() }))), Code.Unauthenticated);
      assert.equal(await codeOf(t.users.getMe({}, bearerOf(u))), Code.Unauthenticated);
      const later = await newAccount(t);
      await t.users.getMe({}, bearerOf(later));
    });

    it("publishes a new key SIGNING_KEY_PUBLISH_AHEAD before signing with it: a verifier refreshing its JWKS every minute never meets an unknown kid", async () => {
      // Like Envoy's remote_jwks: keys fetched on a fixed period, never on an unknown kid.
      let cached: string[] = [];
      let fetchedAt = -Infinity;
      const periodMs = MINUTE;
      const verifierKnows = async (token: string) => {
        if (t.clock() - fetchedAt >= periodMs) {
          cached = await publishedKids();
          fetchedAt = t.clock();
        }
        return cached.includes(kidOf(token));
      };
      // The first test moved the clock past the first admin token's lifetime.
      admin = await loginAdmin(t);
      let session = await newAccount(t);
      const before = kidOf(session.accessToken);
      assert.equal(await verifierKnows(session.accessToken), true);
      // The worst moment: right after the verifier fetched.
      const rotated = await t.auth.rotateSigningKey({}, bearerOf(admin));
      const aheadMs = Number(rotated.activateTime?.seconds ?? 0n) * 1000 + (rotated.activateTime?.nanos ?? 0) / 1e6 - t.clock();
      assert.ok(aheadMs > 85_000 && aheadMs <= 90_000, `activates ${aheadMs} ms ahead`);
      assert.deepEqual((await publishedKids()).slice(0, 2), [rotated.kid, before], "published at once");
      const kids = new Set<string>();
      for (let elapsed = 0; elapsed <= 3 * MINUTE; elapsed += 5000) {
        const refreshed = await t.auth.refreshToken({ refreshToken: session.refreshToken });
        session = { ...session, accessToken: refreshed.accessToken, refreshToken: refreshed.refreshToken };
        kids.add(kidOf(refreshed.accessToken));
        assert.equal(await verifierKnows(refreshed.accessToken), true, `a token issued ${elapsed / 1000} s after the rotation has a kid the verifier has`);
        assert.equal(kidOf(refreshed.accessToken), elapsed < aheadMs ? before : rotated.kid);
        await t.users.getMe({}, bearerOf(session));
        t.clock.advance(5000);
      }
      assert.deepEqual([...kids], [before, rotated.kid]);

      // An immediate rotation (a compromised key) is the documented exception: the verifier does not know the
      // new kid until its next refresh.
      cached = await publishedKids();
      fetchedAt = t.clock();
      const urgent = await t.auth.rotateSigningKey({ immediate: true }, bearerOf(admin));
      const fresh = await t.auth.refreshToken({ refreshToken: session.refreshToken });
      assert.equal(kidOf(fresh.accessToken), urgent.kid);
      assert.equal(await verifierKnows(fresh.accessToken), false);
      t.clock.advance(periodMs);
      assert.equal(await verifierKnows(fresh.accessToken), true);
    });

    it("is for administrators only", async () => {
      const u = await newAccount(t);
      assert.equal(await codeOf(t.auth.rotateSigningKey({}, bearerOf(u))), Code.PermissionDenied);
      assert.equal(await codeOf(t.auth.rotateSigningKey({})), Code.Unauthenticated);
    });
  });
}
