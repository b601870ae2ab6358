import { randomBytes } from "node:crypto";
import { isUuid } from "@local-e-grocery/platform/ids.js";
import { pageOf, resolvePageSize, type Page } from "@local-e-grocery/platform/pagination.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { decodeTimeCursor, encodeTimeCursor, identityPageSizes } from "./page-cursors.js";
import type { ActivityRecord } from "./model.js";
import type { IdentityTx } from "./store.js";

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

let lastMs = -1;
let sequence = 0;
/**
 * A UUIDv7 (RFC 9562) for time `ms`, with a 12-bit sequence so that ids made in the same millisecond by this
 * process still sort in the order they were made: events of one request keep their order in the history.
 */
export function uuidV7(ms: number): string {
  if (ms === lastMs) sequence = (sequence + 1) & 0xfff;
  else {
    lastMs = ms;
    sequence = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Appends an event to the user's history, in the caller's transaction when given one. */
export async function recordActivity(tx: IdentityTx, clock: Clock, input: ActivityInput): Promise<void> {
  const now = clock();
  await tx.insertActivity({
    id: uuidV7(now),
    userId: input.userId,
    kind: input.kind,
    createTime: new Date(now),
    ip: input.client?.ip ?? "",
    userAgent: input.client?.userAgent ?? "",
    sessionId: input.sessionId && isUuid(input.sessionId) ? input.sessionId : null,
    changedFields: [...(input.changedFields ?? [])],
  });
}

/** One page of a user's history, newest first (keyset on create_time, id). INVALID_ARGUMENT on a bad page token. */
export async function listActivity(tx: IdentityTx, userId: string, request: { pageSize: number; pageToken: string }): Promise<Page<ActivityRecord>> {
  const size = resolvePageSize(request.pageSize, identityPageSizes);
  const scope = `activity:${userId}`;
  const after = decodeTimeCursor(request.pageToken, scope);
  const rows = await tx.listActivity(userId, after, size + 1);
  return pageOf(rows, size, (last) => encodeTimeCursor(scope, last));
}

/** Deletes events older than `retentionSeconds`. */
export async function pruneActivity(tx: IdentityTx, clock: Clock, retentionSeconds: number): Promise<void> {
  await tx.deleteActivityBefore(new Date(clock() - retentionSeconds * 1000));
}
