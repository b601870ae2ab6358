/**
 * Where identity's lists resume. Every token is bound to its query's scope (the list, the caller and the filters),
 * so a token replayed with other parameters is INVALID_ARGUMENT, as AIP-158 asks.
 */
import { cursorText, decodeScopedPageToken, encodeScopedPageToken, type PageSizeOptions } from "@local-e-grocery/platform/pagination.js";

/** Identity's lists hold 50 items unless asked for fewer, and 100 at most. */
export const identityPageSizes: PageSizeOptions = { defaultSize: 50, maxSize: 100 };

export { decodeTimeCursor, encodeTimeCursor, type TimeCursor } from "@local-e-grocery/platform/pagination.js";

/** A token for the page after `name`, in a list ordered by a unique name. */
export function encodeNameCursor(scope: string, name: string): string {
  return encodeScopedPageToken(scope, [name]);
}

/** The name in a token from `encodeNameCursor` for `scope`; undefined for the first page. */
export function decodeNameCursor(token: string, scope: string): string | undefined {
  return decodeScopedPageToken(token, scope, (key) => {
    if (!Array.isArray(key) || key.length !== 1) return undefined;
    const [name]: unknown[] = key;
    // Usernames and service account names are far shorter; the bound only keeps a forged token small.
    return cursorText(name, 254);
  });
}
