import { randomUUID } from "node:crypto";
import { and, desc, eq, gt, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import { preparedPerHandle, type Db } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import { hashRefreshToken, newRefreshToken, openSuccessor, sealSuccessor } from "./refresh-tokens.js";
import { refreshTokens, sessions } from "./schema.js";

export type SessionRow = typeof sessions.$inferSelect;

export interface SessionPolicy {
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
  /** How long a just-spent refresh token still returns the successor it was spent for; none when absent. */
  refreshReuseGraceSeconds?: number;
}

/** A session is live when not revoked, within its absolute lifetime, and used within the idle timeout. */
export function isLive(session: SessionRow, now: number, policy: SessionPolicy): boolean {
  return (
    session.revokeTime === null &&
    session.expireTime.getTime() > now &&
    session.lastUsedTime.getTime() + policy.idleTimeoutSeconds * 1000 > now
  );
}

/** Seconds until the refresh token of `session` stops working if unused. */
export function refreshExpiresIn(session: SessionRow, now: number, policy: SessionPolicy): number {
  const idleEnd = now + policy.idleTimeoutSeconds * 1000;
  return Math.max(0, Math.floor((Math.min(idleEnd, session.expireTime.getTime()) - now) / 1000));
}

/** Opens a session for `userId` and issues its first refresh token. */
export async function openSession(
  db: Db,
  clock: Clock,
  policy: SessionPolicy,
  input: { userId: string; userAgent: string; ip: string },
): Promise<{ session: SessionRow; refreshToken: string }> {
  const now = new Date(clock());
  const refresh = newRefreshToken();
  return db.transaction(async (tx) => {
    const [session] = await tx
      .insert(sessions)
      .values({
        id: randomUUID(),
        userId: input.userId,
        createTime: now,
        lastUsedTime: now,
        expireTime: new Date(now.getTime() + policy.maxLifetimeSeconds * 1000),
        userAgent: input.userAgent,
        ip: input.ip,
      })
      .returning();
    if (!session) throw new Error("session insert returned nothing");
    await tx.insert(refreshTokens).values({ tokenHash: refresh.hash, sessionId: session.id, createTime: now });
    return { session, refreshToken: refresh.token };
  });
}

export type RotateResult =
  | { kind: "rotated"; session: SessionRow; refreshToken: string }
  /** A duplicate use within the grace window: the successor the first use issued, again. */
  | { kind: "replayed"; session: SessionRow; refreshToken: string }
  | { kind: "unknown" }
  | { kind: "dead"; session: SessionRow }
  /** A spent token came back: the session has now been revoked (RFC 9700 reuse detection). */
  | { kind: "reused"; session: SessionRow };

/**
 * Spends `token` and issues its successor in one transaction. The token row is locked, so concurrent uses of the
 * same token are decided one after the other. A spent token presented again within `refreshReuseGraceSeconds` of
 * its spending, while its successor is still unspent, answers that same successor (two tabs refreshing at once, a
 * retry after a lost response), as RFC 9700 §4.14.2 allows; any other spent token revokes the session. Bounding
 * the grace by the successor being unspent means a token two rotations old never gets it, however quick.
 */
export async function rotateRefreshToken(db: Db, clock: Clock, policy: SessionPolicy, token: string): Promise<RotateResult> {
  const now = new Date(clock());
  const graceMs = (policy.refreshReuseGraceSeconds ?? 0) * 1000;
  const tokenHash = hashRefreshToken(token);
  return db.transaction(async (tx): Promise<RotateResult> => {
    const [found] = await tx.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).for("update");
    if (!found) return { kind: "unknown" };
    const [session] = await tx.select().from(sessions).where(eq(sessions.id, found.sessionId)).for("update");
    if (!session) return { kind: "unknown" };
    if (found.spendTime !== null) {
      const successor = withinGrace(found, now, graceMs) ? openSuccessor(token, found.tokenHash, found.successorSealed ?? "") : undefined;
      if (successor !== undefined) {
        const [next] = await tx
          .select({ spendTime: refreshTokens.spendTime })
          .from(refreshTokens)
          .where(and(eq(refreshTokens.tokenHash, hashRefreshToken(successor)), eq(refreshTokens.sessionId, session.id)));
        if (next && next.spendTime === null) {
          // A session ended meanwhile (logout, revocation) stays ended: not a reuse, just dead.
          if (!isLive(session, now.getTime(), policy)) return { kind: "dead", session };
          return { kind: "replayed", session, refreshToken: successor };
        }
      }
      if (session.revokeTime === null) {
        await tx.update(sessions).set({ revokeTime: now, revokeReason: "refresh_token_reuse" }).where(eq(sessions.id, session.id));
      }
      return { kind: "reused", session };
    }
    if (!isLive(session, now.getTime(), policy)) return { kind: "dead", session };
    const next = newRefreshToken();
    // The predecessor's seal (if any) has served its purpose once this token is spent: erase it now.
    await tx
      .update(refreshTokens)
      .set({ successorSealed: null })
      .where(and(eq(refreshTokens.sessionId, session.id), isNotNull(refreshTokens.successorSealed)));
    await tx
      .update(refreshTokens)
      .set({ spendTime: now, successorSealed: graceMs > 0 ? sealSuccessor(token, found.tokenHash, next.token) : null })
      .where(eq(refreshTokens.tokenHash, found.tokenHash));
    await tx.insert(refreshTokens).values({ tokenHash: next.hash, sessionId: session.id, createTime: now });
    const [updated] = await tx.update(sessions).set({ lastUsedTime: now }).where(eq(sessions.id, session.id)).returning();
    return { kind: "rotated", session: updated ?? session, refreshToken: next.token };
  });
}

function withinGrace(row: typeof refreshTokens.$inferSelect, now: Date, graceMs: number): boolean {
  return graceMs > 0 && row.spendTime !== null && row.successorSealed !== null && now.getTime() - row.spendTime.getTime() <= graceMs;
}

/** Erases the sealed successors of tokens spent longer ago than the grace window: they can no longer be honoured. */
export async function eraseExpiredSuccessors(db: Db, clock: Clock, policy: SessionPolicy): Promise<void> {
  const cutoff = new Date(clock() - (policy.refreshReuseGraceSeconds ?? 0) * 1000);
  await db
    .update(refreshTokens)
    .set({ successorSealed: null })
    .where(and(isNotNull(refreshTokens.successorSealed), lt(refreshTokens.spendTime, cutoff)));
}

/** Revokes one session of `userId`; false when there is no such live session of that user. */
export async function revokeSession(db: Db, clock: Clock, userId: string, sessionId: string, reason: string): Promise<boolean> {
  const rows = await db
    .update(sessions)
    .set({ revokeTime: new Date(clock()), revokeReason: reason })
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokeTime)))
    .returning({ id: sessions.id });
  return rows.length > 0;
}

/** Revokes every live session of `userId` except `keep`; returns the revoked ids. */
export async function revokeAllSessions(db: Db, clock: Clock, userId: string, reason: string, keep?: string): Promise<string[]> {
  const rows = await db
    .update(sessions)
    .set({ revokeTime: new Date(clock()), revokeReason: reason })
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokeTime), keep ? sql`${sessions.id} <> ${keep}` : undefined))
    .returning({ id: sessions.id });
  return rows.map((r) => r.id);
}

export async function findSession(db: Db, sessionId: string): Promise<SessionRow | undefined> {
  const [row] = await sessionById(db).execute({ sessionId });
  return row;
}

// The session check reads one on every identity call whose cached answer has expired.
const sessionById = preparedPerHandle((db) => db.select().from(sessions).where(eq(sessions.id, sql.placeholder("sessionId"))).prepare("identity_session_by_id"));

/** When a session ends if not used again: the idle timeout or the absolute lifetime, whichever is sooner. */
export function sessionEnd(session: SessionRow, policy: SessionPolicy): Date {
  return new Date(Math.min(session.expireTime.getTime(), session.lastUsedTime.getTime() + policy.idleTimeoutSeconds * 1000));
}

/** Live sessions of `userId`, newest first, keyset-paged after (create_time, id). */
export async function listLiveSessions(
  db: Db,
  clock: Clock,
  policy: SessionPolicy,
  userId: string,
  page: { limit: number; after?: { createTime: Date; id: string } | undefined },
): Promise<SessionRow[]> {
  const now = new Date(clock());
  const idleCutoff = new Date(now.getTime() - policy.idleTimeoutSeconds * 1000);
  const after = page.after;
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
    .limit(page.limit);
}
