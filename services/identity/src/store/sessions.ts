import { and, desc, eq, gt, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import { preparedPerHandle, type Db } from "@local-e-grocery/platform/db.js";
import type { RefreshTokenRecord, SessionRecord } from "../model.js";
import { refreshTokens, sessions } from "../schema.js";

/** Queries over identity.sessions and identity.refresh_tokens. */
export interface SessionQueries {
  /** Inserts a session and its first refresh token, in one statement. */
  insertSessionWithToken(session: Omit<SessionRecord, "revokeTime" | "revokeReason">, token: { tokenHash: string }): Promise<void>;
  /** The refresh token with this hash, locked (FOR UPDATE) until the transaction ends. */
  lockRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
  /** The session, locked (FOR UPDATE) until the transaction ends. */
  lockSession(sessionId: string): Promise<SessionRecord | undefined>;
  /** The spend time of the session's refresh token with this hash; undefined when there is no such token. */
  refreshTokenSpendTime(tokenHash: string, sessionId: string): Promise<{ spendTime: Date | null } | undefined>;
  /**
   * One rotation, in one statement: erases the seals kept on the session's other tokens (their purpose is served
   * once this one is spent), spends `spent` keeping `successorSealed` (or none) on it, adds `next` and marks the
   * session used at `time`. The caller holds the token's and the session's row locks.
   */
  rotateRefreshToken(rotation: { sessionId: string; spent: string; successorSealed: string | null; next: string; time: Date }): Promise<void>;
  /** Erases the sealed successors of tokens spent before `spentBefore`. */
  eraseSealsSpentBefore(spentBefore: Date): Promise<void>;
  /** Revokes the session, whatever its state. */
  revokeSessionById(sessionId: string, time: Date, reason: string): Promise<void>;
  /** Revokes the user's session unless already revoked; false when there is no such unrevoked session of that user. */
  revokeUserSession(userId: string, sessionId: string, time: Date, reason: string): Promise<boolean>;
  /** Revokes every unrevoked session of the user except `keep`; the revoked ids. */
  revokeUserSessions(userId: string, time: Date, reason: string, keep?: string): Promise<string[]>;
  findSession(sessionId: string): Promise<SessionRecord | undefined>;
  /**
   * Up to `limit` of the user's unrevoked sessions that expire after `now` and were used after `idleCutoff`,
   * newest first, after (createTime, id).
   */
  listLiveSessions(query: { userId: string; now: Date; idleCutoff: Date; after?: { createTime: Date; id: string } | undefined; limit: number }): Promise<SessionRecord[]>;
}

// The session check reads one on every identity call whose cached answer has expired.
const sessionById = preparedPerHandle((db) => db.select().from(sessions).where(eq(sessions.id, sql.placeholder("sessionId"))).prepare("identity_session_by_id"));

export function sessionQueries(db: Db): SessionQueries {
  return {
    async insertSessionWithToken(session, token) {
      const createTime = session.createTime.toISOString();
      await db.execute(sql`
        with opened as (
          insert into ${sessions} (id, user_id, create_time, last_used_time, expire_time, user_agent, ip)
          values (${session.id}, ${session.userId}, ${createTime}::timestamptz, ${session.lastUsedTime.toISOString()}::timestamptz,
                  ${session.expireTime.toISOString()}::timestamptz, ${session.userAgent}, ${session.ip})
          returning id, create_time
        )
        insert into ${refreshTokens} (token_hash, session_id, create_time)
        select ${token.tokenHash}, opened.id, opened.create_time from opened`);
    },
    async lockRefreshToken(tokenHash) {
      const [found] = await db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).for("update");
      return found;
    },
    async lockSession(sessionId) {
      const [session] = await db.select().from(sessions).where(eq(sessions.id, sessionId)).for("update");
      return session;
    },
    async refreshTokenSpendTime(tokenHash, sessionId) {
      const [next] = await db
        .select({ spendTime: refreshTokens.spendTime })
        .from(refreshTokens)
        .where(and(eq(refreshTokens.tokenHash, tokenHash), eq(refreshTokens.sessionId, sessionId)));
      return next;
    },
    async rotateRefreshToken({ sessionId, spent, successorSealed, next, time }) {
      const at = time.toISOString();
      // Every part touches a different row (the other tokens, the spent one, the new one, the session), as
      // statements of one WITH must.
      await db.execute(sql`
        with erased as (
          update ${refreshTokens} set successor_sealed = null
          where session_id = ${sessionId} and successor_sealed is not null and token_hash <> ${spent}
        ), spent as (
          update ${refreshTokens} set spend_time = ${at}::timestamptz, successor_sealed = ${successorSealed}
          where token_hash = ${spent}
        ), added as (
          insert into ${refreshTokens} (token_hash, session_id, create_time) values (${next}, ${sessionId}, ${at}::timestamptz)
        )
        update ${sessions} set last_used_time = ${at}::timestamptz where id = ${sessionId}`);
    },
    async eraseSealsSpentBefore(spentBefore) {
      await db
        .update(refreshTokens)
        .set({ successorSealed: null })
        .where(and(isNotNull(refreshTokens.successorSealed), lt(refreshTokens.spendTime, spentBefore)));
    },
    async revokeSessionById(sessionId, time, reason) {
      await db.update(sessions).set({ revokeTime: time, revokeReason: reason }).where(eq(sessions.id, sessionId));
    },
    async revokeUserSession(userId, sessionId, time, reason) {
      const rows = await db
        .update(sessions)
        .set({ revokeTime: time, revokeReason: reason })
        .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokeTime)))
        .returning({ id: sessions.id });
      return rows.length > 0;
    },
    async revokeUserSessions(userId, time, reason, keep) {
      const rows = await db
        .update(sessions)
        .set({ revokeTime: time, revokeReason: reason })
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokeTime), keep ? sql`${sessions.id} <> ${keep}` : undefined))
        .returning({ id: sessions.id });
      return rows.map((r) => r.id);
    },
    async findSession(sessionId) {
      const [row] = await sessionById(db).execute({ sessionId });
      return row;
    },
    async listLiveSessions({ userId, now, idleCutoff, after, limit }) {
      return db
        .select()
        .from(sessions)
        .where(
          and(
            eq(sessions.userId, userId),
            isNull(sessions.revokeTime),
            gt(sessions.expireTime, now),
            gt(sessions.lastUsedTime, idleCutoff),
            after ? or(lt(sessions.createTime, after.createTime), and(eq(sessions.createTime, after.createTime), lt(sessions.id, after.id))) : undefined,
          ),
        )
        .orderBy(desc(sessions.createTime), desc(sessions.id))
        .limit(limit);
    },
  };
}
