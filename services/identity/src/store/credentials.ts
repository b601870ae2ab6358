import { and, asc, desc, eq, gt, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import { preparedPerHandle, type Db } from "@local-e-grocery/platform/db.js";
import { alreadyExists, sqlState } from "@local-e-grocery/platform/errors.js";
import type { ServiceAccountRecord, SigningKeyRecord } from "../model.js";
import { passwordResetTokens, serviceAccounts, signingKeys } from "../schema.js";

// IssueServiceToken reads an account on every call and touches it at most once a minute: both prepared once.
const serviceAccountById = preparedPerHandle((db) =>
  db.select().from(serviceAccounts).where(eq(serviceAccounts.clientId, sql.placeholder("clientId"))).prepare("identity_service_account_by_id"),
);
const touchServiceAccount = preparedPerHandle((db) =>
  db
    .update(serviceAccounts)
    .set({ lastUsedTime: sql`${sql.placeholder("time")}::timestamptz` })
    .where(eq(serviceAccounts.clientId, sql.placeholder("clientId")))
    .prepare("identity_touch_service_account"),
);

/** Queries over password reset tokens, service accounts and signing keys. */
export interface CredentialQueries {
  insertResetToken(token: { tokenHash: string; userId: string; createTime: Date; expireTime: Date }): Promise<void>;
  /** True when a reset token of the user was created after `after`. */
  resetTokenCreatedAfter(userId: string, after: Date): Promise<boolean>;
  /** The user of the unspent reset token with this hash that expires after `now`. */
  findLiveResetToken(tokenHash: string, now: Date): Promise<{ userId: string } | undefined>;
  /** Spends the reset token if unspent and unexpired at `now`; false when it was not (of two concurrent uses, one wins). */
  spendResetToken(tokenHash: string, now: Date): Promise<boolean>;
  /** Marks every unspent reset token of the user spent at `time`. */
  spendUserResetTokens(userId: string, time: Date): Promise<void>;
  deleteResetTokensExpiredBefore(time: Date): Promise<void>;

  /** Inserts a service account; ALREADY_EXISTS when the name is taken. */
  insertServiceAccount(account: Omit<ServiceAccountRecord, "lastUsedTime">): Promise<ServiceAccountRecord>;
  /** Up to `limit` accounts ordered by name, after `afterName`. */
  listServiceAccounts(afterName: string | undefined, limit: number): Promise<ServiceAccountRecord[]>;
  findServiceAccount(clientId: string): Promise<ServiceAccountRecord | undefined>;
  serviceAccountExists(clientId: string): Promise<boolean>;
  /** False when there was no such account. */
  deleteServiceAccount(clientId: string): Promise<boolean>;
  touchServiceAccount(clientId: string, time: Date): Promise<void>;

  /** Serialises changes of the signing keys across replicas, until the transaction ends. */
  lockSigningKeys(): Promise<void>;
  deleteSigningKeysRetiredBefore(time: Date): Promise<void>;
  /** True when a key has no retirement time or retires after `time`. */
  signingKeyUnretiredAt(time: Date): Promise<boolean>;
  insertSigningKey(key: Omit<SigningKeyRecord, "retireTime">): Promise<void>;
  /** Every key, newest first. */
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Every key that would still sign at `time` retires then. */
  retireSigningKeysAt(time: Date): Promise<void>;
}

export function credentialQueries(db: Db): CredentialQueries {
  return {
    async insertResetToken(token) {
      await db.insert(passwordResetTokens).values(token);
    },
    async resetTokenCreatedAfter(userId, after) {
      const [latest] = await db
        .select({ createTime: passwordResetTokens.createTime })
        .from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.userId, userId), gt(passwordResetTokens.createTime, after)))
        .orderBy(desc(passwordResetTokens.createTime))
        .limit(1);
      return latest !== undefined;
    },
    async findLiveResetToken(tokenHash, now) {
      const [found] = await db
        .select({ userId: passwordResetTokens.userId })
        .from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.spendTime), gt(passwordResetTokens.expireTime, now)));
      return found;
    },
    async spendResetToken(tokenHash, now) {
      const spent = await db
        .update(passwordResetTokens)
        .set({ spendTime: now })
        .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.spendTime), gt(passwordResetTokens.expireTime, now)))
        .returning({ userId: passwordResetTokens.userId });
      return spent.length > 0;
    },
    async spendUserResetTokens(userId, time) {
      await db
        .update(passwordResetTokens)
        .set({ spendTime: time })
        .where(and(eq(passwordResetTokens.userId, userId), isNull(passwordResetTokens.spendTime)));
    },
    async deleteResetTokensExpiredBefore(time) {
      await db.delete(passwordResetTokens).where(lt(passwordResetTokens.expireTime, time));
    },

    async insertServiceAccount(account) {
      try {
        const [row] = await db.insert(serviceAccounts).values(account).returning();
        if (!row) throw new Error("insert returned nothing");
        return row;
      } catch (e) {
        if (sqlState(e) === "23505") throw alreadyExists("service account name");
        throw e;
      }
    },
    async listServiceAccounts(afterName, limit) {
      return db
        .select()
        .from(serviceAccounts)
        .where(afterName === undefined ? undefined : gt(serviceAccounts.name, afterName))
        .orderBy(asc(serviceAccounts.name))
        .limit(limit);
    },
    async findServiceAccount(clientId) {
      const [account] = await serviceAccountById(db).execute({ clientId });
      return account;
    },
    async serviceAccountExists(clientId) {
      const [row] = await db.select({ clientId: serviceAccounts.clientId }).from(serviceAccounts).where(eq(serviceAccounts.clientId, clientId));
      return row !== undefined;
    },
    async deleteServiceAccount(clientId) {
      const rows = await db.delete(serviceAccounts).where(eq(serviceAccounts.clientId, clientId)).returning({ clientId: serviceAccounts.clientId });
      return rows.length > 0;
    },
    async touchServiceAccount(clientId, time) {
      await touchServiceAccount(db).execute({ clientId, time: time.toISOString() });
    },

    async lockSigningKeys() {
      await db.execute(sql`select pg_advisory_xact_lock(hashtext('grocery.identity.signing_keys'))`);
    },
    async deleteSigningKeysRetiredBefore(time) {
      await db.delete(signingKeys).where(and(isNotNull(signingKeys.retireTime), lt(signingKeys.retireTime, time)));
    },
    async signingKeyUnretiredAt(time) {
      const unretired = await db.select({ kid: signingKeys.kid }).from(signingKeys).where(or(isNull(signingKeys.retireTime), gt(signingKeys.retireTime, time)));
      return unretired.length > 0;
    },
    async insertSigningKey(key) {
      await db.insert(signingKeys).values(key);
    },
    async listSigningKeys() {
      return db.select().from(signingKeys).orderBy(desc(signingKeys.createTime));
    },
    async retireSigningKeysAt(time) {
      await db
        .update(signingKeys)
        .set({ retireTime: time })
        .where(or(isNull(signingKeys.retireTime), gt(signingKeys.retireTime, time)));
    },
  };
}
