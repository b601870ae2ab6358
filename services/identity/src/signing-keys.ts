import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { and, desc, isNotNull, isNull, lt, sql } from "drizzle-orm";
import type { PublicJwk } from "../../platform/src/auth/jwks.js";
import type { Db } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import { signingKeys } from "./schema.js";

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

export interface SigningKeyRing {
  /** The key new tokens are signed with. */
  current(): Promise<SigningKey>;
  /** Every published public key, newest first. */
  publicKeys(): Promise<PublicJwk[]>;
  /** Re-reads the keys from the database (other replicas may have rotated). */
  reload(): Promise<void>;
  /**
   * Adds a new key and signs with it from now on; the previous one stays published for `retainSeconds`
   * (the access token lifetime) and is then dropped. Returns the new kid.
   */
  rotate(): Promise<string>;
}

function newKeyRow(now: Date) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = randomBytes(12).toString("base64url");
  const jwk = publicKey.export({ format: "jwk" });
  return {
    kid,
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicJwk: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid, use: "sig", alg: "ES256" },
    createTime: now,
  };
}

/**
 * ES256 keys kept in identity's database so every replica signs with the same key. The first start creates one
 * (under an advisory lock, so replicas starting together agree). Keys retired longer ago than `retainSeconds`
 * are deleted on reload.
 */
export function createSigningKeyRing(options: { db: Db; clock: Clock; retainSeconds: number; refreshMs: number }): SigningKeyRing {
  const { db, clock } = options;
  let keys: { kid: string; privateKey: KeyObject; publicJwk: PublicJwk; retired: boolean }[] = [];
  let loadedAt = -Infinity;

  const reload = async () => {
    const now = new Date(clock());
    const rows = await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('grocery.identity.signing_keys'))`);
      await tx
        .delete(signingKeys)
        .where(and(isNotNull(signingKeys.retireTime), lt(signingKeys.retireTime, new Date(now.getTime() - options.retainSeconds * 1000))));
      const active = await tx.select({ kid: signingKeys.kid }).from(signingKeys).where(isNull(signingKeys.retireTime));
      if (active.length === 0) await tx.insert(signingKeys).values(newKeyRow(now));
      return tx.select().from(signingKeys).orderBy(desc(signingKeys.createTime));
    });
    keys = rows.map((r) => ({
      kid: r.kid,
      privateKey: createPrivateKey(r.privateKeyPem),
      publicJwk: r.publicJwk as PublicJwk,
      retired: r.retireTime !== null,
    }));
    loadedAt = clock();
  };

  const fresh = async () => {
    if (clock() - loadedAt > options.refreshMs) await reload();
  };

  return {
    async current() {
      await fresh();
      const key = keys.find((k) => !k.retired);
      if (!key) throw new Error("no active signing key");
      return { kid: key.kid, privateKey: key.privateKey };
    },
    async publicKeys() {
      await fresh();
      return keys.map((k) => k.publicJwk);
    },
    reload,
    async rotate() {
      const now = new Date(clock());
      const row = newKeyRow(now);
      await db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtext('grocery.identity.signing_keys'))`);
        await tx.update(signingKeys).set({ retireTime: now }).where(isNull(signingKeys.retireTime));
        await tx.insert(signingKeys).values(row);
      });
      await reload();
      return row.kid;
    },
  };
}
