import { Code, ConnectError } from "@connectrpc/connect";

/**
 * DomainError is what domain code throws for an expected failure. The error-mapping interceptor turns it into
 * a ConnectError with the same code; the message is written for clients and never carries internals.
 */
export class DomainError extends Error {
  override readonly name = "DomainError";
  constructor(
    readonly code: Code,
    message: string,
    /** The request field at fault, for INVALID_ARGUMENT. */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A bad request field; the message names the field so a client can point at it. */
export function invalidArgument(field: string, reason: string): DomainError {
  return new DomainError(Code.InvalidArgument, `${field}: ${reason}`, field);
}

export function notFound(what: string): DomainError {
  return new DomainError(Code.NotFound, `${what} not found`);
}

export function alreadyExists(what: string): DomainError {
  return new DomainError(Code.AlreadyExists, `${what} already exists`);
}

export function failedPrecondition(message: string): DomainError {
  return new DomainError(Code.FailedPrecondition, message);
}

/** A stale expected_version (AIP-154): the client should re-read and retry. */
export function aborted(message: string): DomainError {
  return new DomainError(Code.Aborted, message);
}

export function resourceExhausted(message: string): DomainError {
  return new DomainError(Code.ResourceExhausted, message);
}

export function permissionDenied(message = "permission denied"): DomainError {
  return new DomainError(Code.PermissionDenied, message);
}

export function unauthenticated(message = "unauthenticated"): DomainError {
  return new DomainError(Code.Unauthenticated, message);
}

/** Postgres SQLSTATEs that mean the database is unreachable or going away, not that the query is wrong. */
const unavailableStates = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"]);
const unavailableErrnos = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT"]);

/** True when `e` says the database could not be reached (→ UNAVAILABLE rather than INTERNAL). */
export function isDatabaseUnavailable(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && (unavailableStates.has(code) || unavailableErrnos.has(code))) return true;
    if (/PGlite is closed/i.test(cur.message)) return true;
  }
  return false;
}

/** The SQLSTATE of a Postgres error from postgres.js or PGlite, possibly wrapped by drizzle. */
export function sqlState(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** A code as the logs and Connect's JSON spell it: `invalid_argument`, `ok`… */
export function codeName(code: Code | "OK"): string {
  return code === "OK" ? "ok" : Code[code].replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase());
}

/** Converts anything thrown by a handler into the ConnectError a client sees. */
export function toConnectError(e: unknown): { error: ConnectError; unexpected: boolean } {
  if (e instanceof DomainError) return { error: new ConnectError(e.message, e.code, undefined, undefined, e), unexpected: false };
  if (e instanceof ConnectError) return { error: e, unexpected: e.code === Code.Internal || e.code === Code.Unknown };
  if (isDatabaseUnavailable(e)) {
    return { error: new ConnectError("service unavailable, try again", Code.Unavailable, undefined, undefined, e), unexpected: false };
  }
  if (e instanceof Error && e.name === "AbortError") return { error: ConnectError.from(e), unexpected: false };
  return { error: new ConnectError("internal error", Code.Internal, undefined, undefined, e), unexpected: true };
}
