/**
 * Where identity's lists resume. Every token is bound to its query's scope (the list, the caller and the filters),
 * so a token replayed with other parameters is INVALID_ARGUMENT, as AIP-158 asks.
 */
import { decodeScopedPageToken, encodeScopedPageToken, type PageSizeOptions } from "../../platform/src/pagination.js";
import { isUuid } from "./users.js";

/** Identity's lists hold 50 items unless asked for fewer, and 100 at most. */
export const identityPageSizes: PageSizeOptions = { defaultSize: 50, maxSize: 100 };

/** The last item of a page of a list ordered by (create_time, id). */
export interface TimeCursor {
  readonly createTime: Date;
  readonly id: string;
}

export function encodeTimeCursor(scope: string, last: TimeCursor): string {
  return encodeScopedPageToken(scope, [last.createTime.getTime(), last.id]);
}

/** The cursor in a token from `encodeTimeCursor` for `scope`; undefined for the first page. */
export function decodeTimeCursor(token: string, scope: string): TimeCursor | undefined {
  return decodeScopedPageToken(token, scope, (key) => {
    if (!Array.isArray(key) || key.length !== 2) return undefined;
    const [time, id]: unknown[] = key;
    // Dates reach only ±8.64e15 ms; a forged time beyond that would become an Invalid Date in the query.
    const valid = Number.isSafeInteger(time) && Math.abs(time as number) <= 8.64e15 && typeof id === "string" && isUuid(id);
    return valid ? { createTime: new Date(time as number), id } : undefined;
  });
}

/** A token for the page after `name`, in a list ordered by a unique name. */
export function encodeNameCursor(scope: string, name: string): string {
  return encodeScopedPageToken(scope, [name]);
}

/** The name in a token from `encodeNameCursor` for `scope`; undefined for the first page. */
export function decodeNameCursor(token: string, scope: string): string | undefined {
  return decodeScopedPageToken(token, scope, (key) => {
    if (!Array.isArray(key) || key.length !== 1) return undefined;
    const [name]: unknown[] = key;
    // Tokens are not signed: a forged name with a NUL would reach SQL and fail there instead of being refused.
    return typeof name === "string" && name.length <= 254 && !name.includes("\0") ? name : undefined;
  });
}
