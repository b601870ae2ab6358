import { decodeTimeCursor, encodeTimeCursor, type PageSizeOptions } from "@local-e-grocery/platform/pagination.js";

/** ListCarts pages hold 20 carts unless asked for fewer, and 100 at most (AIP-158). */
export const cartPageSizes: PageSizeOptions = { defaultSize: 20, maxSize: 100 };

/** Where a ListCarts page ends: carts are listed by (createTime, id), so the next page starts after this pair. */
export interface CartCursor {
  /** Milliseconds since the epoch. */
  readonly createTime: number;
  readonly id: string;
}

/** A token is the platform's (create_time, id) cursor bound to the owner's ListCarts, as every list's is. */
const scopeOf = (ownerId: string) => `grocery.cart.v1.CartService/ListCarts:${ownerId}`;

/** The page token for the page after `cursor` in `ownerId`'s carts. */
export function encodeCartCursor(ownerId: string, cursor: CartCursor): string {
  return encodeTimeCursor(scopeOf(ownerId), { createTime: new Date(cursor.createTime), id: cursor.id });
}

/**
 * The cursor in a page token; undefined for the empty token (first page); INVALID_ARGUMENT("page_token") when
 * malformed or issued for another caller.
 */
export function decodeCartCursor(ownerId: string, token: string): CartCursor | undefined {
  const cursor = decodeTimeCursor(token, scopeOf(ownerId));
  return cursor && { createTime: cursor.createTime.getTime(), id: cursor.id };
}
