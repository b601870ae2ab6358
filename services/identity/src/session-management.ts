import type { Principal } from "@local-e-grocery/platform/context.js";
import { notFound } from "@local-e-grocery/platform/errors.js";
import { isUuid } from "@local-e-grocery/platform/ids.js";
import { pageOf, resolvePageSize, type Page } from "@local-e-grocery/platform/pagination.js";
import { recordActivity, type ClientInfo } from "./activity.js";
import type { IdentityDeps } from "./identity-deps.js";
import { decodeTimeCursor, encodeTimeCursor, identityPageSizes } from "./page-cursors.js";
import type { SessionRecord } from "./model.js";
import { listLiveSessions, revokeSession, sessionEnd } from "./sessions.js";

export interface SessionView {
  session: SessionRecord;
  /** Idle timeout or absolute end, whichever is sooner. */
  endTime: Date;
  current: boolean;
}

/** A signed-in user's view of their own sessions. */
export function createSessionManagement(deps: Pick<IdentityDeps, "store" | "clock" | "sessionPolicy" | "hooks">) {
  const { clock } = deps;
  const direct = deps.store.direct;
  return {
    /** The caller's live sessions, newest first. INVALID_ARGUMENT on a page token not issued for this query. */
    async list(principal: Principal, request: { pageSize: number; pageToken: string }): Promise<Page<SessionView>> {
      const size = resolvePageSize(request.pageSize, identityPageSizes);
      const scope = `sessions:${principal.subject}`;
      const after = decodeTimeCursor(request.pageToken, scope);
      const rows = await listLiveSessions(direct, clock, deps.sessionPolicy, principal.subject, { limit: size + 1, after });
      const page = pageOf(rows, size, (last) => encodeTimeCursor(scope, last));
      const items = page.items.map((session) => ({ session, endTime: sessionEnd(session, deps.sessionPolicy), current: session.id === principal.sessionId }));
      return { items, nextPageToken: page.nextPageToken };
    },

    /**
     * Ends one of the caller's live sessions (the current one too, if asked). Someone else's session, an
     * unknown id (a non-UUID too: the schema only requires one) and an already ended session all answer
     * NOT_FOUND, so ids of others cannot be probed.
     */
    async revoke(principal: Principal, sessionId: string, client: ClientInfo): Promise<void> {
      if (!isUuid(sessionId) || !(await revokeSession(direct, clock, principal.subject, sessionId, "revoked_by_user"))) throw notFound("session");
      deps.hooks.sessionsEnded([sessionId]);
      await recordActivity(direct, clock, { userId: principal.subject, kind: "session.revoked", sessionId, client });
    },
  };
}

export type SessionManagement = ReturnType<typeof createSessionManagement>;
