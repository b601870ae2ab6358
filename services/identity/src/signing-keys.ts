import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import type { PublicJwk } from "@local-e-grocery/platform/auth/jwks.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { IdentityStore } from "./store.js";

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
   * Adds a new key, published at once, that signs from `publishAheadSeconds` on (at once when `immediate`); the
   * key signing until then stays published for `retainSeconds` (the access token lifetime) after it stopped,
   * and is then dropped. Returns the new kid and when it starts signing.
   */
  rotate(options?: { immediate?: boolean }): Promise<{ kid: string; activateTime: Date }>;
}

function newKeyRow(now: Date, activateTime: Date | null = null) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = randomBytes(12).toString("base64url");
  const jwk = publicKey.export({ format: "jwk" });
  return {
    kid,
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicJwk: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid, use: "sig", alg: "ES256" },
    createTime: now,
    activateTime,
  };
}

/**
 * ES256 keys kept in identity's database so every replica signs with the same key. The first start creates one
 * (under an advisory lock, so replicas starting together agree). Each key signs from its activation time until
 * its retirement time (its successor's activation), both decided when the successor is added, so every replica
 * switches at the same instant without asking the database; keys retired longer ago than `retainSeconds` are
 * deleted on reload. Every key in the table is published, those not signing yet included.
 */
export function createSigningKeyRing(options: { store: IdentityStore; clock: Clock; retainSeconds: number; refreshMs: number; publishAheadSeconds: number }): SigningKeyRing {
  const { store, clock } = options;
  let keys: { kid: string; privateKey: KeyObject; publicJwk: PublicJwk; activeFrom: number; activeUntil: number }[] = [];
  let loadedAt = -Infinity;

  const reload = async () => {
    const now = new Date(clock());
    const rows = await store.write(async (tx) => {
      await tx.lockSigningKeys();
      await tx.deleteSigningKeysRetiredBefore(new Date(now.getTime() - options.retainSeconds * 1000));
      if (!(await tx.signingKeyUnretiredAt(now))) await tx.insertSigningKey(newKeyRow(now));
      return tx.listSigningKeys();
    });
    keys = rows.map((r) => ({
      kid: r.kid,
      privateKey: createPrivateKey(r.privateKeyPem),
      publicJwk: r.publicJwk as PublicJwk,
      // A key that signed from creation signs on a replica whose clock runs behind the creator's too.
      activeFrom: r.activateTime?.getTime() ?? -Infinity,
      activeUntil: r.retireTime?.getTime() ?? Infinity,
    }));
    loadedAt = clock();
  };

  const fresh = async () => {
    if (clock() - loadedAt > options.refreshMs) await reload();
  };

  return {
    async current() {
      await fresh();
      const now = clock();
      const key = keys.find((k) => k.activeFrom <= now && now < k.activeUntil);
      if (!key) throw new Error("no active signing key");
      return { kid: key.kid, privateKey: key.privateKey };
    },
    async publicKeys() {
      await fresh();
      return keys.map((k) => k.publicJwk);
    },
    reload,
    async rotate({ immediate = false } = {}) {
      const now = new Date(clock());
      const activateTime = immediate ? now : new Date(now.getTime() + options.publishAheadSeconds * 1000);
      const row = newKeyRow(now, immediate ? null : activateTime);
      await store.write(async (tx) => {
        await tx.lockSigningKeys();
        // Whatever would still sign at the new key's activation stops there (a key waiting for its own
        // activation included: the newest rotation wins).
        await tx.retireSigningKeysAt(activateTime);
        await tx.insertSigningKey(row);
      });
      await reload();
      return { kid: row.kid, activateTime };
    },
  };
}
