import { invalidArgument } from "../../platform/src/errors.js";

/** AIP-158 page sizes: 0 means the default, larger than the maximum is coerced down, negative is an error. */
export const defaultPageSize = 20;
export const maxPageSize = 100;

/** Throws INVALID_ARGUMENT("page_size") when negative. */
export function resolvePageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) throw invalidArgument("page_size", "must not be negative");
  if (requested === 0) return defaultPageSize;
  return Math.min(requested, maxPageSize);
}

/**
 * Page tokens are opaque to clients: base64url of a small JSON object that carries the position after the last
 * item returned and the query it belongs to, so a token replayed with other parameters is refused.
 */
export function encodePageToken(payload: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(payload), "utf8").toString("base64url");
}

/**
 * Decodes a page token with `parse`, which returns undefined when the shape is wrong. Throws
 * INVALID_ARGUMENT("page_token") for anything that is not a token this service issued for the same query.
 */
export function decodePageToken<T>(token: string, parse: (value: Record<string, unknown>) => T | undefined): T {
  let value: unknown;
  try {
    if (token.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw new Error("not base64url");
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalidArgument("page_token", "not a page token from this method");
  }
  const parsed = typeof value === "object" && value !== null && !Array.isArray(value) ? parse(value as Record<string, unknown>) : undefined;
  if (parsed === undefined) throw invalidArgument("page_token", "not a page token for this request");
  return parsed;
}
