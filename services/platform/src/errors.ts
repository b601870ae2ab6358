import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";

/** One wrong request field, as a google.rpc.BadRequest field violation carries it to the client. */
export interface FieldViolation {
  /** The field's path in the request, in the proto's names: `address.postal_code`, `item.unit_price.amount_minor`. */
  readonly field: string;
  /** What is wrong with it, for the person who filled it in. */
  readonly description: string;
}

/**
 * DomainError is what domain code throws for an expected failure. The error-mapping interceptor turns it into
 * a ConnectError with the same code; the message is written for clients and never carries internals.
 */
export class DomainError extends Error {
  override readonly name = "DomainError";
  /** The wrong request fields; sent as google.rpc.BadRequest so a client can show each next to its input. */
  readonly violations: readonly FieldViolation[];
  constructor(
    readonly code: Code,
    message: string,
    /** The request field at fault, for INVALID_ARGUMENT (the first of `violations` when there are several). */
    readonly field?: string,
    options?: { cause?: unknown; violations?: readonly FieldViolation[] },
  ) {
    super(message, options);
    this.violations = options?.violations ?? (field === undefined ? [] : [{ field, description: message }]);
  }
}

/** A bad request field; the message names the field so a client can point at it. */
export function invalidArgument(field: string, reason: string): DomainError {
  return new DomainError(Code.InvalidArgument, `${field}: ${reason}`, field, { violations: [{ field, description: reason }] });
}

/** Several bad request fields found by one check, all reported at once; the message lists every one. */
export function invalidArguments(violations: readonly [FieldViolation, ...FieldViolation[]]): DomainError {
  const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return new DomainError(Code.InvalidArgument, message, violations[0].field, { violations });
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
const unavailableStates = new Set(["57P01", "57P02", "57P03", "25P03", "08000", "08001", "08003", "08004", "08006", "53300"]);
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

/**
 * True for connect's own words for a request message that does not parse: protobuf it raises as INTERNAL
 * although the client is at fault, JSON as INVALID_ARGUMENT but without the google.rpc.BadRequest every other
 * INVALID_ARGUMENT carries. Either is answered as malformedRequest().
 */
export function isParseFailure(code: number, message: string): boolean {
  return (code === Code.Internal && message.startsWith("parse binary:")) || (code === Code.InvalidArgument && message.startsWith("cannot decode message "));
}

/**
 * INVALID_ARGUMENT for a request that is not a message at all (a body that does not parse, an envelope that lies
 * about its length), with the same google.rpc.BadRequest every other INVALID_ARGUMENT carries: one violation on
 * the request as a whole (field ""), since no field of it could be read.
 */
export function malformedRequest(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument, undefined, [{ desc: BadRequestSchema, value: { fieldViolations: [{ field: "", description: message }] } }]);
}

/**
 * SQLSTATEs of a statement PostgreSQL gave up on because of other transactions, not because it is wrong: the
 * statement (and its transaction) was rolled back, so repeating the call is safe. A serialization failure or a
 * deadlock is ABORTED (a concurrency conflict, AIP-193); a statement cut by DATABASE_STATEMENT_TIMEOUT, typically
 * waiting for a lock held too long, is DEADLINE_EXCEEDED.
 */
const conflict = { code: Code.Aborted, message: "conflicting concurrent change, try again" };
const conflictStates: ReadonlyMap<string, { code: Code; message: string }> = new Map([
  ["40001", conflict],
  ["40P01", conflict],
  ["55P03", conflict],
  ["57014", { code: Code.DeadlineExceeded, message: "the database did not answer in time, try again" }],
]);

/**
 * Converts anything thrown by a handler into the ConnectError a client sees. A DomainError's field violations
 * go into the error details as one google.rpc.BadRequest, which connect writes on every protocol (gRPC and
 * gRPC-web: grpc-status-details-bin; Connect: the JSON `details`), so clients need not parse the message.
 */
export function toConnectError(e: unknown): { error: ConnectError; unexpected: boolean } {
  if (e instanceof DomainError) {
    const details =
      e.violations.length === 0
        ? undefined
        : [{ desc: BadRequestSchema, value: { fieldViolations: e.violations.map(({ field, description }) => ({ field, description })) } }];
    return { error: new ConnectError(e.message, e.code, undefined, details, e), unexpected: false };
  }
  if (e instanceof ConnectError) {
    // A streaming call's messages are parsed inside the handler's stream: the client's fault, not a bug.
    if (isParseFailure(e.code, e.rawMessage)) return { error: malformedRequest(e.rawMessage), unexpected: false };
    return { error: e, unexpected: e.code === Code.Internal || e.code === Code.Unknown };
  }
  if (isDatabaseUnavailable(e)) {
    return { error: new ConnectError("service unavailable, try again", Code.Unavailable, undefined, undefined, e), unexpected: false };
  }
  const given = conflictStates.get(sqlState(e) ?? "");
  if (given) return { error: new ConnectError(given.message, given.code, undefined, undefined, e), unexpected: false };
  if (e instanceof Error && e.name === "AbortError") return { error: ConnectError.from(e), unexpected: false };
  return { error: new ConnectError("internal error", Code.Internal, undefined, undefined, e), unexpected: true };
}
