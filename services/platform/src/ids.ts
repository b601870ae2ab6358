const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `value` in the canonical form of a UUID, lowercase as PostgreSQL prints it and every service generates it, when
 * it is a UUID in any case; undefined when it is none. Ids from requests go through it, so case variants name one
 * row and a string that is no UUID never reaches a `::uuid` cast in SQL (which would fail there, not answer).
 */
export function canonicalUuid(value: string): string | undefined {
  return uuid.test(value) ? value.toLowerCase() : undefined;
}

/** True when `value` is a UUID in any case. */
export function isUuid(value: string): boolean {
  return canonicalUuid(value) !== undefined;
}
