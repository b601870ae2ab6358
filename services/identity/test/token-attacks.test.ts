import assert from "node:assert/strict";
import { createHmac, createPublicKey, generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import jwt from "jsonwebtoken";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { bearer, clientFor, codeOf } from "../../../test/clients.js";
import { sql } from "drizzle-orm";
import { backends, openTestDatabase, registerAndLogin, startTestPlatform, type TestPlatform, type TestUser } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

for (const backend of backends) {
  describe(`token attacks are UNAUTHENTICATED (${backend})`, () => {
    let tp: TestPlatform;
    let user: TestUser;
    let users: ReturnType<typeof clientFor<typeof UserService>>;
    let claims: Record<string, unknown>;
    let header: Record<string, string>;

    /** Identity's own signing key, taken from its database, so claim checks can be tested apart from signatures. */
    let realKey: string;

    before(async () => {
      tp = await startTestPlatform({ backend });
      user = await registerAndLogin(tp.url);
      const [h, p] = user.accessToken.split(".");
      header = JSON.parse(Buffer.from(h!, "base64url").toString()) as Record<string, string>;
      claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
      // PGlite admits one process at a time: read the key while the platform is stopped, then serve again.
      await tp.stop();
      const db = await openTestDatabase(tp);
      try {
        const rows = rowsOf<{ private_key_pem: string }>(await db.db.execute(sql`select private_key_pem from identity.signing_keys where kid = ${header["kid"]}`));
        realKey = rows[0]?.private_key_pem ?? "";
      } finally {
        await db.close();
      }
      tp = await tp.restart();
      users = clientFor(UserService, tp.url);
    });
    after(() => tp.close());

    const rejected = async (token: string) => assert.equal(await codeOf(users.getMe({}, bearer(token))), Code.Unauthenticated);
    /** A token signed with a fresh key that identity never published, but with identity's real kid. */
    const signWithOtherKey = (payload: Record<string, unknown>, kid = header["kid"]!) => {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      return jwt.sign(payload, privateKey, { algorithm: "ES256", header: { alg: "ES256", typ: "at+jwt", kid } });
    };

    const signWithRealKey = (payload: Record<string, unknown>, kid = header["kid"]!, typ = "at+jwt") =>
      jwt.sign(payload, realKey, { algorithm: "ES256", header: { alg: "ES256", typ, kid } });

    it("accepts the genuine token (control)", async () => {
      assert.equal((await users.getMe({}, bearer(user.accessToken))).user?.id, user.userId);
    });

    it("accepts a token signed here with identity's key and sound claims (control for the claim cases)", async () => {
      const now = Math.floor(Date.now() / 1000);
      assert.equal((await users.getMe({}, bearer(signWithRealKey({ ...claims, iat: now, exp: now + 600 })))).user?.id, user.userId);
    });

    it("no token on a protected method", async () => {
      assert.equal(await codeOf(users.getMe({})), Code.Unauthenticated);
    });

    it("garbage and malformed Authorization headers", async () => {
      await rejected("not.a.jwt");
      assert.equal(await codeOf(users.getMe({}, { headers: { authorization: "Basic dXNlcjpwYXNz" } })), Code.Unauthenticated);
      assert.equal(await codeOf(users.getMe({}, { headers: { authorization: "Bearer" } })), Code.Unauthenticated);
    });

    it("alg none", async () => {
      await rejected(`${b64({ alg: "none", typ: "at+jwt", kid: header["kid"] })}.${b64(claims)}.`);
    });

    it("HS256 signed with the public key as the secret", async () => {
      const { keys } = await clientFor(AuthService, tp.url).getJwks({});
      const jwk = keys.find((k) => k.kid === header["kid"])!;
      const pem = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: "jwk" }).export({ type: "spki", format: "pem" });
      const token = `${b64({ alg: "HS256", typ: "at+jwt", kid: header["kid"] })}.${b64(claims)}`;
      const sig = createHmac("sha256", pem).update(token).digest("base64url");
      await rejected(`${token}.${sig}`);
    });

    it("expired", async () => {
      const now = Math.floor(Date.now() / 1000);
      await rejected(signWithRealKey({ ...claims, iat: now - 3600, exp: now - 1800 }));
    });

    it("expired but genuinely signed", async () => {
      // Move the server's clock past the token's expiry; the real signature no longer helps.
      tp.clock.advance(16 * 60_000);
      try {
        await rejected(user.accessToken);
      } finally {
        tp.clock.advance(-16 * 60_000);
      }
    });

    it("not yet valid (nbf in the future)", async () => {
      await rejected(signWithRealKey({ ...claims, nbf: Math.floor(Date.now() / 1000) + 3600 }));
    });

    it("wrong iss, wrong aud", async () => {
      await rejected(signWithRealKey({ ...claims, iss: "https://evil.example" }));
      await rejected(signWithRealKey({ ...claims, aud: "someone-else" }));
    });

    it("unknown kid", async () => {
      await rejected(signWithRealKey(claims, "no-such-kid"));
    });

    it("payload tampered (roles raised to admin, sub changed)", async () => {
      const [h, , s] = user.accessToken.split(".");
      await rejected(`${h}.${b64({ ...claims, roles: ["admin"] })}.${s}`);
      await rejected(`${h}.${b64({ ...claims, sub: "00000000-0000-0000-0000-000000000000" })}.${s}`);
    });

    it("signed by another key under the real kid", async () => {
      await rejected(signWithOtherKey(claims));
    });

    it("not an access token (typ JWT), though signed with identity's own key and otherwise sound", async () => {
      // Signed for real, so only the typ check (RFC 9068 at+jwt) can refuse it; the control above is the same
      // token with typ at+jwt.
      const now = Math.floor(Date.now() / 1000);
      for (const typ of ["JWT", "jwt", "", "application/jwt"]) await rejected(signWithRealKey({ ...claims, iat: now, exp: now + 600 }, header["kid"], typ));
    });

    it("refresh token used as a bearer token", async () => {
      await rejected(user.refreshToken);
    });
  });
}
