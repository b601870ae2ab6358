import { sql } from "drizzle-orm";
import { rowsOf, type Db } from "../../platform/src/db.js";
import { cursorId, cursorText, cursorTime, decodeScopedPageToken, encodeScopedPageToken, pageOf, resolvePageSize, type Page } from "../../platform/src/pagination.js";
import { identityPageSizes } from "./page-cursors.js";

export interface PendingDeliveryRow {
  eventId: string;
  topic: string;
  userId: string;
  destination: string;
  attempts: number;
  createTime: Date;
  nextAttemptTime: Date;
  lastError: string;
}

const scope = "pending-deliveries";

/** ListPendingDeliveries: unacknowledged deliveries ordered by (event time, event id, destination). */
export async function listPendingDeliveries(db: Db, request: { pageSize: number; pageToken: string }): Promise<Page<PendingDeliveryRow>> {
  const size = resolvePageSize(request.pageSize, identityPageSizes);
  const after = decodeScopedPageToken(request.pageToken, scope, (key) => {
    if (!Array.isArray(key) || key.length !== 3) return undefined;
    const [time, id, destination]: unknown[] = key;
    const createTime = cursorTime(time);
    const eventId = cursorId(id);
    const name = cursorText(destination, 64);
    return createTime && eventId && name !== undefined ? { createTime, eventId, destination: name } : undefined;
  });
  const raw = rowsOf<{ event_id: string; topic: string; user_id: string | null; destination: string; attempts: number; create_time: Date | string; available_time: Date | string; last_error: string | null }>(
    await db.execute(sql`
      select d.event_id, o.topic, o.payload->>'user_id' as user_id, d.destination, d.attempts, o.create_time, d.available_time, d.last_error
      from identity.outbox_deliveries d join identity.outbox o on o.id = d.event_id
      where d.status = 'pending'
        ${after ? sql`and (o.create_time, d.event_id, d.destination) > (${after.createTime.toISOString()}::timestamptz, ${after.eventId}::uuid, ${after.destination})` : sql``}
      order by o.create_time, d.event_id, d.destination
      limit ${size + 1}`),
  );
  const rows = raw.map((r) => ({
    eventId: r.event_id,
    topic: r.topic,
    userId: r.user_id ?? "",
    destination: r.destination,
    attempts: r.attempts,
    createTime: new Date(r.create_time),
    nextAttemptTime: new Date(r.available_time),
    lastError: r.last_error ?? "",
  }));
  return pageOf(rows, size, (last) => encodeScopedPageToken(scope, [last.createTime.getTime(), last.eventId, last.destination]));
}
