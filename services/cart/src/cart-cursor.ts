import { decodePageToken, encodePageToken, type PageSizeOptions } from "../../platform/src/pagination.js";

/** ListCarts pages hold 20 carts unless asked for fewer, and 100 at most (AIP-158). */
export const cartPageSizes: PageSizeOptions = { defaultSize: 20, maxSize: 100 };

/** Where a ListCarts page ends: carts are listed by (createTime, id), so the next page starts after this pair. */
export interface CartCursor {
  /** Milliseconds since the epoch. */
  readonly createTime: number;
  readonly id: string;
}

/**
 * The page token for the page after `cursor`: a small versioned keyset cursor. It holds no secret (a forged one
 * only moves the caller within their own carts), so it is not signed.
 */
export function encodeCartCursor(cursor: CartCursor): string {
  return encodePageToken({ v: 1, t: cursor.createTime, i: cursor.id });
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The last millisecond of year 9999. Later times print with a six-digit year ("+010000-…") that PostgreSQL's
 * timestamptz input refuses, so a doctored token beyond it would fail in SQL (INTERNAL) instead of here.
 */
const maxCursorTime = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** The cursor in a page token; undefined for the empty token (first page); INVALID_ARGUMENT("page_token") when malformed. */
export function decodeCartCursor(token: string): CartCursor | undefined {
  return decodePageToken(
    token,
    ({ v, t, i }) =>
      v === 1 && typeof t === "number" && Number.isSafeInteger(t) && t >= 0 && t <= maxCursorTime && typeof i === "string" && uuidPattern.test(i)
        ? { createTime: t, id: i }
        : undefined,
    { maxLength: 256 },
  );
}
