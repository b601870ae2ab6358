/**
 * AIP-158 pagination for every service's List methods: page sizes, opaque page tokens, and cutting a page out of
 * rows read one beyond the page size.
 *
 * A page token is base64url of a small JSON object that the issuing method writes and reads back itself: the sort
 * key of the last item returned and whatever ties the token to its query. Tokens are not signed (a forged one only
 * moves the caller within what the same query shows them), so each is checked in full on the way in: anything the
 * method did not issue for the same query is INVALID_ARGUMENT and never reaches the database. The keys inside are
 * read with `cursorTime`, `cursorId`, `cursorNumber` and `cursorText`, which hold the bounds the database needs.
 */
import { createHash } from "node:crypto";
import { invalidArgument } from "./errors.js";
import { canonicalUuid } from "./ids.js";

/** A page of results and the token of the next one (empty on the last page). */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

export interface PageSizeOptions {
  /** The page size of a request that leaves page_size at 0. */
  readonly defaultSize: number;
  /** Larger requests are coerced down to this, not refused. */
  readonly maxSize: number;
  /** The request field named by INVALID_ARGUMENT; "page_size" unless said. */
  readonly field?: string;
}

/**
 * The number of items to return for a requested page_size: 0 means `defaultSize`, more than `maxSize` means
 * `maxSize`. Throws INVALID_ARGUMENT(field) for a negative (or fractional) size.
 */
export function resolvePageSize(requested: number, { defaultSize, maxSize, field = "page_size" }: PageSizeOptions): number {
  if (!Number.isInteger(requested) || requested < 0) throw invalidArgument(field, "must be zero or a positive whole number");
  if (requested === 0) return defaultSize;
  return Math.min(requested, maxSize);
}

export interface PageTokenOptions {
  /** Longer tokens are refused unread; 1024 characters unless said. */
  readonly maxLength?: number;
  /** The request field named by INVALID_ARGUMENT; "page_token" unless said. */
  readonly field?: string;
}

/** The opaque token for `payload`, which must survive a JSON round trip. URL-safe, no padding. */
export function encodePageToken(payload: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(payload), "utf8").toString("base64url");
}

const base64url = /^[A-Za-z0-9_-]+$/;

/**
 * Reads a token made by `encodePageToken`. The empty token (a request for the first page) gives undefined. Otherwise
 * the token must be base64url of a JSON object, no longer than `maxLength`, and `parse` must accept the object:
 * it returns the position the next page starts after, or undefined when the object is not one its method writes
 * for this query. Throws INVALID_ARGUMENT(field) for anything else.
 */
export function decodePageToken<T>(
  token: string,
  parse: (payload: Record<string, unknown>) => T | undefined,
  { maxLength = 1024, field = "page_token" }: PageTokenOptions = {},
): T | undefined {
  if (token === "") return undefined;
  const refused = () => invalidArgument(field, "is not a page token from a previous call with the same parameters");
  if (token.length > maxLength || !base64url.test(token)) throw refused();
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw refused();
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw refused();
  const position = parse(payload as Record<string, unknown>);
  if (position === undefined) throw refused();
  return position;
}

/**
 * A token bound to a query: `scope` names everything that decides what the query lists (the method, the caller,
 * the filters), and the token carries a digest of it beside `key`, the sort key of the last item. Use it where
 * the query's parameters need not be read back from the token.
 */
export function encodeScopedPageToken(scope: string, key: unknown): string {
  return encodePageToken({ s: scopeDigest(scope), k: key });
}

/**
 * Reads a token made by `encodeScopedPageToken` for the same `scope`, with `parse` checking the key as in
 * `decodePageToken`. A token issued for another scope (other filters, another caller) is INVALID_ARGUMENT.
 */
export function decodeScopedPageToken<T>(token: string, scope: string, parse: (key: unknown) => T | undefined, options?: PageTokenOptions): T | undefined {
  return decodePageToken(token, (payload) => (payload["s"] === scopeDigest(scope) ? parse(payload["k"]) : undefined), options);
}

/** The last item of a page of a list ordered by (create_time, id), the order most lists here use. */
export interface TimeCursor {
  readonly createTime: Date;
  readonly id: string;
}

/** A scoped token (see `encodeScopedPageToken`) for the page after `last` in a (create_time, id) list. */
export function encodeTimeCursor(scope: string, last: TimeCursor): string {
  return encodeScopedPageToken(scope, [last.createTime.getTime(), last.id]);
}

/** The cursor in a token from `encodeTimeCursor` for `scope`; undefined for the first page. */
export function decodeTimeCursor(token: string, scope: string): TimeCursor | undefined {
  return decodeScopedPageToken(token, scope, (key) => {
    if (!Array.isArray(key) || key.length !== 2) return undefined;
    const [time, id]: unknown[] = key;
    const createTime = cursorTime(time);
    const lastId = cursorId(id);
    return createTime && lastId ? { createTime, id: lastId } : undefined;
  });
}

/*
 * Key readers. A page token's keys go into SQL as query parameters, and a forged one must be refused here rather
 * than fail there (INTERNAL) or be read as something the method never wrote. Every List method reads the keys of
 * its tokens with these, so the bounds live in one place. Each returns the key, or undefined when the value is not
 * one a method issues: the `parse` callback of `decodePageToken` returns undefined in turn and the token is refused.
 */

/**
 * The times a page token may hold, in milliseconds since the epoch: 1970-01-01 to the last millisecond of year
 * 9999. Nothing this platform stores predates its clock's epoch; PostgreSQL's timestamptz input refuses what JS
 * prints beyond year 9999 ("+010000-…") and before year 1 ("-000001-…", "0000-…"), and JS dates end at ±8.64e15.
 */
export const cursorTimeRange = { min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) } as const;

/** A time key as a method writes it (`date.getTime()`): a whole number of milliseconds within `cursorTimeRange`. */
export function cursorTime(value: unknown): Date | undefined {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) return undefined;
  return value >= cursorTimeRange.min && value <= cursorTimeRange.max ? new Date(value) : undefined;
}

/**
 * An id key: a UUID in the lowercase form PostgreSQL prints and every service generates. Any other spelling is
 * not one a method wrote, and a string that is no UUID at all would fail the `::uuid` cast in SQL.
 */
export function cursorId(value: unknown): string | undefined {
  return typeof value === "string" && canonicalUuid(value) === value ? value : undefined;
}

/** The values a numeric key may take, both ends included. */
export interface CursorNumberRange {
  readonly min: number;
  readonly max: number;
}

/**
 * A numeric key within `range`. JSON cannot write NaN, but a hand-made token can hold 1e999, which parses as
 * Infinity; neither is ever finite, so neither is in any range.
 */
export function cursorNumber(value: unknown, { min, max }: CursorNumberRange): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= min && value <= max ? value : undefined;
}

/**
 * A text key (a name the list is ordered by) of at most `maxLength` UTF-16 units. PostgreSQL text cannot hold NUL,
 * so a forged one would fail in SQL instead of here.
 */
export function cursorText(value: unknown, maxLength: number): string | undefined {
  return typeof value === "string" && value.length <= maxLength && !value.includes("\0") ? value : undefined;
}

function scopeDigest(scope: string): string {
  return createHash("sha256").update(scope).digest("base64url").slice(0, 16);
}

/**
 * The page in `rows`, read with a limit of `pageSize + 1`: the extra row only says that another page follows, and
 * that page's token is `tokenAfter(last item of this page)`.
 */
export function pageOf<T>(rows: readonly T[], pageSize: number, tokenAfter: (last: T) => string): Page<T> {
  const items = rows.slice(0, pageSize);
  const last = items.at(-1);
  return { items, nextPageToken: rows.length > pageSize && last !== undefined ? tokenAfter(last) : "" };
}
