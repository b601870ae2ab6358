import { createHash } from "node:crypto";
import { invalidArgument } from "../../platform/src/errors.js";

/** A page of results and the token of the next one (empty on the last page), as AIP-158 has it. */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

export const defaultPageSize = 50;
export const maxPageSize = 100;

/** AIP-158: 0 means the default, larger values are capped, negative ones are INVALID_ARGUMENT. */
export function pageSizeOf(requested: number, field = "page_size"): number {
  if (requested < 0) throw invalidArgument(field, "must not be negative");
  if (requested === 0) return defaultPageSize;
  return Math.min(requested, maxPageSize);
}

type KeyKind = "number" | "string" | "uuid";
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Page tokens are opaque to clients: base64url JSON holding the sort key of the last item and a digest of the
 * query (`scope`: the caller and the filters), so a token is refused with INVALID_ARGUMENT when replayed against
 * a different query, as AIP-158 asks.
 */
export function encodePageToken(scope: string, keys: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify({ s: digest(scope), k: keys })).toString("base64url");
}

/** The keys of a token made by `encodePageToken` for the same scope, checked against `shape`. */
export function decodePageToken(token: string, scope: string, shape: readonly KeyKind[], field = "page_token"): (string | number)[] {
  const bad = () => invalidArgument(field, "is not a token from a previous call with the same parameters");
  if (token.length > 1024) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  const { s, k } = (parsed ?? {}) as { s?: unknown; k?: unknown };
  if (s !== digest(scope) || !Array.isArray(k) || k.length !== shape.length) throw bad();
  shape.forEach((kind, i) => {
    const v: unknown = k[i];
    const ok = kind === "number" ? Number.isSafeInteger(v) : typeof v === "string" && (kind === "string" || uuidPattern.test(v));
    if (!ok) throw bad();
  });
  return k as (string | number)[];
}

function digest(scope: string): string {
  return createHash("sha256").update(scope).digest("base64url").slice(0, 16);
}
