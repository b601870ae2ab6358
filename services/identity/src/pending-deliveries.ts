import { cursorId, cursorText, cursorTime, decodeScopedPageToken, encodeScopedPageToken, pageOf, resolvePageSize, type Page } from "@local-e-grocery/platform/pagination.js";
import type { PendingDelivery } from "./model.js";
import { identityPageSizes } from "./page-cursors.js";
import type { IdentityTx } from "./store.js";

const scope = "pending-deliveries";

/** ListPendingDeliveries: unacknowledged deliveries ordered by (event time, event id, destination). */
export async function listPendingDeliveries(tx: IdentityTx, request: { pageSize: number; pageToken: string }): Promise<Page<PendingDelivery>> {
  const size = resolvePageSize(request.pageSize, identityPageSizes);
  const after = decodeScopedPageToken(request.pageToken, scope, (key) => {
    if (!Array.isArray(key) || key.length !== 3) return undefined;
    const [time, id, destination]: unknown[] = key;
    const createTime = cursorTime(time);
    const eventId = cursorId(id);
    const name = cursorText(destination, 64);
    return createTime && eventId && name !== undefined ? { createTime, eventId, destination: name } : undefined;
  });
  const rows = await tx.listPendingDeliveries(after, size + 1);
  return pageOf(rows, size, (last) => encodeScopedPageToken(scope, [last.createTime.getTime(), last.eventId, last.destination]));
}
