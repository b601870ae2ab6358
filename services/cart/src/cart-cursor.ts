import { invalidArgument } from "../../platform/src/errors.js";

/** Where a ListCarts page ends: carts are listed by (createTime, id), so the next page starts after this pair. */
export interface CartCursor {
  /** Milliseconds since the epoch. */
  readonly createTime: number;
  readonly id: string;
}

export const defaultPageSize = 20;
export const maxPageSize = 100;

/** page_size per AIP-158: 0 means the default, larger values are capped, negative is INVALID_ARGUMENT. */
export function parsePageSize(raw: number): number {
  if (!Number.isInteger(raw) || raw < 0) throw invalidArgument("page_size", "must not be negative");
  if (raw === 0) return defaultPageSize;
  return Math.min(raw, maxPageSize);
}

/**
 * Page tokens are opaque to clients: base64url of a small versioned JSON keyset cursor. They hold no secret (a
 * forged one only moves the caller within their own carts), so they are not signed.
 */
export function encodePageToken(cursor: CartCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, t: cursor.createTime, i: cursor.id })).toString("base64url");
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The cursor in a page token; undefined for the empty token (first page); INVALID_ARGUMENT when malformed. */
export function decodePageToken(token: string): CartCursor | undefined {
  if (token === "") return undefined;
  const bad = () => invalidArgument("page_token", "is not a token this service issued");
  if (token.length > 256 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (typeof parsed !== "object" || parsed === null) throw bad();
  const { v, t, i } = parsed as { v?: unknown; t?: unknown; i?: unknown };
  if (v !== 1 || typeof t !== "number" || !Number.isSafeInteger(t) || t < 0 || t > 8.64e15 || typeof i !== "string" || !uuidPattern.test(i)) {
    throw bad();
  }
  return { createTime: t, id: i };
}
