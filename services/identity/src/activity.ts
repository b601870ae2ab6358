import { randomUUID } from "node:crypto";
import { and, desc, eq, lt, or } from "drizzle-orm";
import type { Db } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import { decodePageToken, encodePageToken, pageSizeOf, type Page } from "./pagination.js";
import { activity } from "./schema.js";
import { isUuid } from "./users.js";

/** What can happen to an account; stored by these names, mapped to ActivityKind in the API. */
export const activityKinds = [
  "login.succeeded",
  "login.failed",
  "refresh_token.reused",
  "logout",
  "session.revoked",
  "password.changed",
  "password.reset_requested",
  "password.reset",
  "profile.updated",
  "email.changed",
  "roles.changed",
  "account.disabled",
  "account.enabled",
] as const;
export type ActivityKindName = (typeof activityKinds)[number];

export type ActivityRow = typeof activity.$inferSelect;

/** Where a request came from, as recorded with an event. */
export interface ClientInfo {
  ip: string;
  userAgent: string;
}

export interface ActivityInput {
  userId: string;
  kind: ActivityKindName;
  client?: ClientInfo | undefined;
  sessionId?: string | undefined;
  changedFields?: readonly string[];
}

/** Appends an event to the user's history, in the caller's transaction when given one. */
export async function recordActivity(db: Db, clock: Clock, input: ActivityInput): Promise<void> {
  await db.insert(activity).values({
    id: randomUUID(),
    userId: input.userId,
    kind: input.kind,
    createTime: new Date(clock()),
    ip: input.client?.ip ?? "",
    userAgent: input.client?.userAgent ?? "",
    sessionId: input.sessionId && isUuid(input.sessionId) ? input.sessionId : null,
    changedFields: [...(input.changedFields ?? [])],
  });
}

/** One page of a user's history, newest first (keyset on create_time, id). INVALID_ARGUMENT on a bad page token. */
export async function listActivity(db: Db, userId: string, request: { pageSize: number; pageToken: string }): Promise<Page<ActivityRow>> {
  const size = pageSizeOf(request.pageSize);
  const after = request.pageToken === "" ? undefined : decodePageToken(request.pageToken, `activity:${userId}`, ["number", "uuid"]);
  const position =
    after === undefined
      ? undefined
      : or(
          lt(activity.createTime, new Date(Number(after[0]))),
          and(eq(activity.createTime, new Date(Number(after[0]))), lt(activity.id, String(after[1]))),
        );
  const rows = await db
    .select()
    .from(activity)
    .where(and(eq(activity.userId, userId), position))
    .orderBy(desc(activity.createTime), desc(activity.id))
    .limit(size + 1);
  const items = rows.slice(0, size);
  const last = items.at(-1);
  return {
    items,
    nextPageToken: rows.length > size && last ? encodePageToken(`activity:${userId}`, [last.createTime.getTime(), last.id]) : "",
  };
}

/** Deletes events older than `retentionSeconds`. */
export async function pruneActivity(db: Db, clock: Clock, retentionSeconds: number): Promise<void> {
  await db.delete(activity).where(lt(activity.createTime, new Date(clock() - retentionSeconds * 1000)));
}
