import { cursorId, cursorTime, decodePageToken, encodePageToken, type PageSizeOptions } from "../../platform/src/pagination.js";

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

/** The cursor in a page token; undefined for the empty token (first page); INVALID_ARGUMENT("page_token") when malformed. */
export function decodeCartCursor(token: string): CartCursor | undefined {
  return decodePageToken(
    token,
    ({ v, t, i }) => {
      // The shared readers bound the time to what PostgreSQL's timestamptz takes and the id to a UUID.
      const createTime = cursorTime(t);
      const id = cursorId(i);
      return v === 1 && createTime && id ? { createTime: createTime.getTime(), id } : undefined;
    },
    { maxLength: 256 },
  );
}
