import { randomUUID } from "node:crypto";
import { type Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { kPrincipal, kRequestId } from "./context.js";
import { codeName, toConnectError } from "./errors.js";
import { raceSignal } from "./signals.js";
import type { Logger } from "./logger.js";

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `x-request-id` when well-formed, otherwise a new one. */
export function requestIdFrom(offered: string | null | undefined): string {
  return typeof offered === "string" && requestIdPattern.test(offered) ? offered : randomUUID();
}

/**
 * Outermost: gives every call a request id (the caller's `x-request-id` when well-formed), echoes it in the
 * response headers, and logs one line per RPC with its code and duration.
 */
export function createLoggingInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    // The server sets the id before the call is parsed, so its own answers (a body that does not parse) carry it too.
    let requestId = req.contextValues.get(kRequestId);
    if (requestId === "") {
      requestId = requestIdFrom(req.header.get("x-request-id"));
      req.contextValues.set(kRequestId, requestId);
    }
    const line = (code: Code | "OK") => ({
      service: req.service.typeName,
      method: req.method.name,
      code: codeName(code),
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      request_id: requestId,
      principal: req.contextValues.get(kPrincipal)?.subject ?? "",
    });
    try {
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      logger.info("rpc", line("OK"));
      return res;
    } catch (e) {
      // Errors raised outside the error interceptor (in auth, say) get the same mapping here.
      const { error, unexpected } = toConnectError(e);
      if (unexpected && !(e instanceof ConnectError)) logger.error("unexpected error", { ...line(error.code), error: e });
      error.metadata.set("x-request-id", requestId);
      logger.info("rpc", line(error.code));
      throw bounded(error);
    }
  };
}

/**
 * Innermost: maps DomainErrors to their codes, database outages to UNAVAILABLE, and anything else to an
 * INTERNAL whose message says nothing of the cause; the cause is logged with the request id.
 */
export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const map = (e: unknown): ConnectError => {
      const { error, unexpected } = toConnectError(e);
      if (unexpected) {
        logger.error("unexpected error", {
          service: req.service.typeName,
          method: req.method.name,
          request_id: req.contextValues.get(kRequestId),
          error: e,
        });
      }
      return error;
    };
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: mapStreamErrors(res, map) };
    } catch (e) {
      throw map(e);
    }
  };
}

async function* mapStreamErrors(res: StreamResponse, map: (e: unknown) => ConnectError) {
  try {
    yield* res.message;
  } catch (e) {
    throw map(e);
  }
}

/**
 * Answers a unary call as soon as its signal fires (deadline, client gone, shutdown, database outage) even when
 * the handler is stuck waiting on something that ignores the signal: every wait has a bound.
 */
export function createCallBoundInterceptor(): Interceptor {
  return (next) => (req) => (req.stream ? next(req) : raceSignal(next(req), req.signal));
}

/** Longest error message sent: it travels in a header (grpc-message), and headers have a size limit. */
const maxMessageLength = 1024;

function bounded(error: ConnectError): ConnectError {
  if (error.rawMessage.length <= maxMessageLength) return error;
  const outgoing = error.details.filter((d) => "desc" in d) as ConstructorParameters<typeof ConnectError>[3];
  return new ConnectError(error.rawMessage.slice(0, maxMessageLength) + "…", error.code, error.metadata, outgoing, error.cause);
}
