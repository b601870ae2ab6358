import { aborted } from "./errors.js";

/**
 * Optimistic concurrency (AIP-154), one shape for every service: a request carries `optional int64
 * expected_version`, absent means "no check", present means "only if the resource is still at this version".
 * Throws ABORTED when it is not, so the caller re-reads and retries; call it after the resource is locked (or
 * read in the writing transaction) and before anything is written, so a stale request changes nothing. A
 * version no resource has (0, or beyond any issued) is simply stale; a negative one is bad input, refused by the
 * field's `int64.gte = 0` rule before this runs.
 */
export function checkExpectedVersion(expected: bigint | undefined, actual: bigint, resource: string): void {
  if (expected !== undefined && expected !== actual) {
    throw aborted(`the ${resource} is at version ${actual}, not ${expected}; read it again and retry`);
  }
}
