import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { RefreshTokenRecord, SessionRecord } from "./model.js";
import { hashRefreshToken, newRefreshToken, openSuccessor, sealSuccessor } from "./refresh-tokens.js";
import type { IdentityStore, IdentityTx } from "./store.js";

export interface SessionPolicy {
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
  /** How long a just-spent refresh token still returns the successor it was spent for; none when absent. */
  refreshReuseGraceSeconds?: number;
}

/** A session is live when not revoked, within its absolute lifetime, and used within the idle timeout. */
export function isLive(session: SessionRecord, now: number, policy: SessionPolicy): boolean {
  return (
    session.revokeTime === null &&
    session.expireTime.getTime() > now &&
    session.lastUsedTime.getTime() + policy.idleTimeoutSeconds * 1000 > now
  );
}

/** Seconds until the refresh token of `session` stops working if unused. */
export function refreshExpiresIn(session: SessionRecord, now: number, policy: SessionPolicy): number {
  const idleEnd = now + policy.idleTimeoutSeconds * 1000;
  return Math.max(0, Math.floor((Math.min(idleEnd, session.expireTime.getTime()) - now) / 1000));
}

/** Opens a session with its first refresh token, in the caller's transaction (Login's, which also settles its throttle slot). */
export async function openSessionIn(
  tx: IdentityTx,
  clock: Clock,
  newId: () => string,
  policy: SessionPolicy,
  input: { userId: string; userAgent: string; ip: string },
): Promise<{ session: SessionRecord; refreshToken: string }> {
  const now = new Date(clock());
  const refresh = newRefreshToken();
  const session: SessionRecord = {
    id: newId(),
    userId: input.userId,
    createTime: now,
    lastUsedTime: now,
    expireTime: new Date(now.getTime() + policy.maxLifetimeSeconds * 1000),
    revokeTime: null,
    revokeReason: null,
    userAgent: input.userAgent,
    ip: input.ip,
  };
  await tx.insertSessionWithToken(session, { tokenHash: refresh.hash });
  return { session, refreshToken: refresh.token };
}

export type RotateResult =
  | { kind: "rotated"; session: SessionRecord; refreshToken: string }
  /** A duplicate use within the grace window: the successor the first use issued, again. */
  | { kind: "replayed"; session: SessionRecord; refreshToken: string }
  | { kind: "unknown" }
  | { kind: "dead"; session: SessionRecord }
  /** A spent token came back: the session has now been revoked (RFC 9700 reuse detection). */
  | { kind: "reused"; session: SessionRecord };

/**
 * Spends `token` and issues its successor in one transaction. The token row is locked, so concurrent uses of the
 * same token are decided one after the other. A spent token presented again within `refreshReuseGraceSeconds` of
 * its spending, while its successor is still unspent, answers that same successor (two tabs refreshing at once, a
 * retry after a lost response), as RFC 9700 §4.14.2 allows; any other spent token revokes the session. Bounding
 * the grace by the successor being unspent means a token two rotations old never gets it, however quick.
 */
export async function rotateRefreshToken(store: IdentityStore, clock: Clock, policy: SessionPolicy, token: string): Promise<RotateResult> {
  const now = new Date(clock());
  const graceMs = (policy.refreshReuseGraceSeconds ?? 0) * 1000;
  const tokenHash = hashRefreshToken(token);
  return store.write(async (tx): Promise<RotateResult> => {
    const found = await tx.lockRefreshToken(tokenHash);
    if (!found) return { kind: "unknown" };
    const session = await tx.lockSession(found.sessionId);
    if (!session) return { kind: "unknown" };
    if (found.spendTime !== null) {
      const successor = withinGrace(found, now, graceMs) ? openSuccessor(token, found.tokenHash, found.successorSealed ?? "") : undefined;
      if (successor !== undefined) {
        const next = await tx.refreshTokenSpendTime(hashRefreshToken(successor), session.id);
        if (next && next.spendTime === null) {
          // A session ended meanwhile (logout, revocation) stays ended: not a reuse, just dead.
          if (!isLive(session, now.getTime(), policy)) return { kind: "dead", session };
          return { kind: "replayed", session, refreshToken: successor };
        }
      }
      if (session.revokeTime === null) {
        await tx.revokeSessionById(session.id, now, "refresh_token_reuse");
      }
      return { kind: "reused", session };
    }
    if (!isLive(session, now.getTime(), policy)) return { kind: "dead", session };
    const next = newRefreshToken();
    // The predecessor's seal (if any) has served its purpose once this token is spent: the rotation erases it.
    const successorSealed = graceMs > 0 ? sealSuccessor(token, found.tokenHash, next.token) : null;
    await tx.rotateRefreshToken({ sessionId: session.id, spent: found.tokenHash, successorSealed, next: next.hash, time: now });
    // Both rows are locked: the session is as read, but for the use just recorded.
    return { kind: "rotated", session: { ...session, lastUsedTime: now }, refreshToken: next.token };
  });
}

function withinGrace(row: RefreshTokenRecord, now: Date, graceMs: number): boolean {
  return graceMs > 0 && row.spendTime !== null && row.successorSealed !== null && now.getTime() - row.spendTime.getTime() <= graceMs;
}

/** Erases the sealed successors of tokens spent longer ago than the grace window: they can no longer be honoured. */
export async function eraseExpiredSuccessors(tx: IdentityTx, clock: Clock, policy: SessionPolicy): Promise<void> {
  await tx.eraseSealsSpentBefore(new Date(clock() - (policy.refreshReuseGraceSeconds ?? 0) * 1000));
}

/** Revokes one session of `userId`; false when there is no such live session of that user. */
export async function revokeSession(tx: IdentityTx, clock: Clock, userId: string, sessionId: string, reason: string): Promise<boolean> {
  return tx.revokeUserSession(userId, sessionId, new Date(clock()), reason);
}

/** Revokes every live session of `userId` except `keep`; returns the revoked ids. */
export async function revokeAllSessions(tx: IdentityTx, clock: Clock, userId: string, reason: string, keep?: string): Promise<string[]> {
  return tx.revokeUserSessions(userId, new Date(clock()), reason, keep);
}

/** When a session ends if not used again: the idle timeout or the absolute lifetime, whichever is sooner. */
export function sessionEnd(session: SessionRecord, policy: SessionPolicy): Date {
  return new Date(Math.min(session.expireTime.getTime(), session.lastUsedTime.getTime() + policy.idleTimeoutSeconds * 1000));
}

/** Live sessions of `userId`, newest first, keyset-paged after (create_time, id). */
export async function listLiveSessions(
  tx: IdentityTx,
  clock: Clock,
  policy: SessionPolicy,
  userId: string,
  page: { limit: number; after?: { createTime: Date; id: string } | undefined },
): Promise<SessionRecord[]> {
  const now = new Date(clock());
  const idleCutoff = new Date(now.getTime() - policy.idleTimeoutSeconds * 1000);
  return tx.listLiveSessions({ userId, now, idleCutoff, after: page.after, limit: page.limit });
}
