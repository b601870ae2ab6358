import type http from "node:http";
import type http2 from "node:http2";
import { constants as http2constants } from "node:http2";
import { create, isMessage, type DescMessage, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextKey,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { compressionNegotiate, createMethodSerializationLookup, type MethodSerializationLookup } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  errorToJsonBytes,
  parseContentType,
  parseTimeout as parseConnectTimeout,
  trailerMux,
} from "@connectrpc/connect/protocol-connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { kRequestId } from "./context.js";
import { envelope } from "./envelope.js";
import { codeName, isParseFailure, malformedRequest } from "./errors.js";
import type { Logger } from "./logger.js";
import { nextChunkWait, type BodyLimits } from "./request-body.js";
import { acceptCompression, compressMinBytes, jsonOptions } from "./wire-format.js";

type UnaryImpl = (request: unknown, context: HandlerContext) => unknown;

interface UnaryRoute {
  service: DescService;
  method: DescMethodUnary;
  impl: UnaryImpl;
}

interface UnaryEntry extends UnaryRoute {
  /** The interceptors around `impl`, put together once, as connect does per method. */
  call: (r: UnaryRequest) => Promise<UnaryResponse>;
  /** Connect's own parsers and writers for this method's messages, with the server's limits and JSON options. */
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

/** How the innermost step of a method's interceptor chain, built once, finds the context of the call it serves. */
const kCallContext = createContextKey<CallContext | undefined>(undefined);

export interface UnaryFastPathOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: readonly Interceptor[];
  readMaxBytes: number;
  maxTimeoutMs: number;
  shutdownSignal: AbortSignal;
  contextValues: (req: FastRequest) => ContextValues;
  body: BodyLimits;
  /** Where answers given before a call reaches its interceptors (a body that does not parse, say) are logged. */
  logger: Logger;
}

type FastRequest = http.IncomingMessage | http2.Http2ServerRequest;
type FastResponse = http.ServerResponse | http2.Http2ServerResponse;
/** How a call travels: its protocol, whether its messages are binary, and the content type of a successful answer. */
interface Wire {
  readonly protocol: "grpc" | "grpc-web" | "connect";
  readonly binary: boolean;
  readonly contentType: string;
}
const grpc: Wire = { protocol: "grpc", binary: true, contentType: "application/grpc+proto" };
const grpcWeb: Wire = { protocol: "grpc-web", binary: true, contentType: "application/grpc-web+proto" };
const connectProto: Wire = { protocol: "connect", binary: true, contentType: "application/proto" };
const connectJson: Wire = { protocol: "connect", binary: false, contentType: "application/json" };

/** Returns true when it took the request; false leaves it to the general connect-node handler. */
export type UnaryFastPath = (req: FastRequest, res: FastResponse) => boolean;

/** How a request the fast path serves travels, from its content type; undefined for any other. */
function wireOf(contentType: string | undefined, httpVersionMajor: number): Wire | undefined {
  switch (contentType) {
    case undefined:
      return undefined;
    case "application/grpc":
    case "application/grpc+proto":
      return httpVersionMajor === 2 ? grpc : undefined;
    case "application/grpc-web":
    case "application/grpc-web+proto":
      return grpcWeb;
    case "application/proto":
      return connectProto;
    case "application/json":
      return connectJson;
  }
  // The spellings connect also accepts, such as "application/json; charset=utf-8".
  const type = parseContentType(contentType);
  return type === undefined || type.stream ? undefined : type.binary ? connectProto : connectJson;
}

/** Whether the request's body is compressed: such calls go to connect-node, which inflates them. */
function isCompressed(req: FastRequest, wire: Wire): boolean {
  const encoding = wire.protocol === "connect" ? req.headers["content-encoding"] : req.headers["grpc-encoding"];
  return encoding !== undefined && encoding !== "identity";
}

/**
 * Throws when a registration carries handler options. The fast path builds its calls from the server-wide
 * interceptors and limits only; serving such a service here would silently skip whatever the options add (an
 * interceptor, a message limit) on the calls it serves, while connect-node applied it to the rest. Failing at
 * start-up makes that impossible to miss.
 */
function refuseHandlerOptions(what: string, handlerOptions: object | undefined): void {
  const given = Object.entries(handlerOptions ?? {})
    .filter(([, value]) => value !== undefined)
    .map(([key]) => key);
  if (given.length === 0) return;
  throw new Error(
    `${what} is registered with handler options (${given.join(", ")}) that the unary fast path does not honour: ` +
      `move them to the server-wide options, or create the server with unaryFastPath: false`,
  );
}

/**
 * Serves the common case — a unary call with an uncompressed body, over gRPC (HTTP/2), binary gRPC-web or
 * Connect's unary POST with a protobuf or JSON body (HTTP/1.1 or HTTP/2) — without connect-node's general
 * streaming machinery, which costs several times more CPU per call. Same handlers, same interceptors, same
 * HandlerContext, same status mapping, same response compression; anything else (streams, gRPC-web text,
 * Connect GET, compressed requests) goes to connect-node unchanged. Throws at creation when the routes register
 * a service or RPC with handler options, which only connect-node would apply.
 */
export function createUnaryFastPath(options: UnaryFastPathOptions): UnaryFastPath {
  const routes = new Map<string, UnaryRoute>();
  const recorder: ConnectRouter = {
    handlers: [],
    service(service, implementation, handlerOptions) {
      refuseHandlerOptions(service.typeName, handlerOptions);
      for (const method of service.methods) {
        const impl = (implementation as Record<string, unknown>)[method.localName];
        if (method.methodKind === "unary" && typeof impl === "function") {
          routes.set(`/${service.typeName}/${method.name}`, { service, method: method as DescMethodUnary, impl: impl.bind(implementation) as UnaryImpl });
        }
      }
      return this;
    },
    rpc(method, impl, handlerOptions) {
      refuseHandlerOptions(`${method.parent.typeName}/${method.name}`, handlerOptions);
      if (method.methodKind === "unary") {
        routes.set(`/${method.parent.typeName}/${method.name}`, { service: method.parent, method: method as DescMethodUnary, impl: impl as UnaryImpl });
      }
      return this;
    },
  };
  options.routes(recorder);
  const entries = new Map<string, UnaryEntry>();
  for (const [path, entry] of routes) {
    const innermost = async (r: UnaryRequest): Promise<UnaryResponse> => {
      // serve() puts it there before the chain runs.
      const ctx = r.contextValues.get(kCallContext) as CallContext;
      const out = await entry.impl(r.message, ctx);
      return {
        stream: false,
        service: entry.service,
        method: entry.method,
        header: ctx.responseHeader,
        trailer: ctx.responseTrailer,
        message: isMessage(out, entry.method.output) ? out : create(entry.method.output, out as never),
      };
    };
    // As in connect: the first interceptor is the outermost.
    const call = options.interceptors.reduceRight<(r: UnaryRequest) => Promise<UnaryResponse>>(
      (next, interceptor) => interceptor(next as never) as never,
      innermost,
    );
    const serialization = createMethodSerializationLookup(entry.method, undefined, jsonOptions, {
      readMaxBytes: options.readMaxBytes,
      writeMaxBytes: 0xffffffff,
    });
    entries.set(path, { ...entry, call, serialization });
  }

  // The calls running now, so one listener on the shutdown signal reaches them all instead of one listener per call.
  const running = new Set<AbortController>();
  options.shutdownSignal.addEventListener("abort", () => {
    for (const call of running) call.abort(options.shutdownSignal.reason);
  });

  return (req, res) => {
    if (req.method !== "POST") return false;
    const entry = entries.get(req.url ?? "");
    if (!entry) return false;
    const wire = wireOf(req.headers["content-type"], req.httpVersionMajor);
    if (wire === undefined || isCompressed(req, wire)) return false;
    // connect-node refuses a request it cannot build a URL for (HTTP/1.0 without a Host header): so does this path,
    // by leaving it there.
    if (req.headers.host === undefined && req.headers[":authority"] === undefined) return false;
    // Nothing a call does may take the process down: a failure to even write the answer (the stream went away
    // in between) ends that stream (or HTTP/1.1 connection) alone.
    serve(entry, wire, req, res).catch(() => {
      if (!("stream" in res)) res.destroy();
      else if (!res.stream.destroyed) res.stream.close(http2constants.NGHTTP2_INTERNAL_ERROR);
    });
    return true;
  };

  async function serve(entry: UnaryEntry, wire: Wire, req: FastRequest, res: FastResponse): Promise<void> {
    const arrived = Date.now();
    const connect = wire.protocol === "connect";
    const timeout = connect
      ? parseConnectTimeout(headerValue(req.headers["connect-timeout-ms"]), options.maxTimeoutMs)
      : parseTimeout(headerValue(req.headers["grpc-timeout"]), options.maxTimeoutMs);
    const ctx = createCallContext(entry, wire, req, timeout.timeoutMs, options.contextValues(req));
    const onClose = () => ctx.abort(streamClosed());
    res.once("close", onClose);
    if (options.shutdownSignal.aborted) ctx.abort(options.shutdownSignal.reason);
    else running.add(ctx.controller);
    // Once the interceptors run, they log the call; an answer given before that is logged here.
    let intercepted = false;
    try {
      if (timeout.error) throw timeout.error;
      // The deadline counts from the first byte: a client that stops sending its body still gets its answer.
      // A stream the client leaves half open after the answer is reset by the session's write-stall watch.
      const body = await receiveBody(req, {
        started: arrived,
        limits: options.body,
        deadlineAt: timeout.timeoutMs === undefined ? undefined : arrived + timeout.timeoutMs,
        signal: ctx.signal,
        readMaxBytes: options.readMaxBytes,
        enveloped: !connect,
        lengthHint: connect ? headerValue(req.headers["content-length"]) : null,
      });
      const message = parseMessage(entry, wire, connect ? body : unenvelope(body));
      ctx.values.set(kCallContext, ctx);
      intercepted = true;
      const response = await entry.call({
        stream: false,
        service: entry.service,
        method: entry.method,
        requestMethod: "POST",
        url: ctx.url,
        signal: ctx.signal,
        header: ctx.requestHeader,
        contextValues: ctx.values,
        message,
      });
      if (res.closed || res.destroyed) return;
      // As in connect-node, a call whose signal fired (its deadline, say) answers with the reason, whatever the
      // handler returned after it. Bounding a handler that ignores the signal is an interceptor's work
      // (interceptors.ts's call bound), so it holds on both paths.
      if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
      // The logging interceptor sets it; a server without one still answers with the id, as connect-node's path does.
      if (!response.header.has("x-request-id")) response.header.set("x-request-id", ctx.values.get(kRequestId));
      const out = await compressed(req, wire, entry.serialization.getO(wire.binary).serialize(response.message));
      if (connect) {
        writeConnectAnswer(res, 200, wire.contentType, trailerMux(response.header, response.trailer), out);
        return;
      }
      const header = headersObject(response.header);
      if (out.encoding) header["grpc-encoding"] = out.encoding;
      const frame = envelope(out.encoding ? 1 : 0, out.bytes);
      if (wire === grpc) {
        res.writeHead(200, { ...header, "content-type": wire.contentType });
        res.addTrailers({ ...headersObject(response.trailer), "grpc-status": "0" });
        res.end(frame);
      } else {
        const trailer = new Headers(response.trailer);
        trailer.set("grpc-status", "0");
        res.writeHead(200, { ...header, "content-type": wire.contentType });
        res.end(Buffer.concat([frame, trailerFrame(trailer)]));
      }
    } catch (e) {
      // A client that reset its stream (or the shutdown cutting it) leaves nothing to answer.
      if (res.closed || res.destroyed || ("stream" in res && (res.stream.destroyed || res.stream.closed))) return;
      // Anything but a ConnectError is INTERNAL.
      const error = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
      const requestId = ctx.values.get(kRequestId);
      if (!intercepted) {
        options.logger.info("rpc", {
          service: entry.service.typeName,
          method: entry.method.name,
          code: codeName(error.code),
          duration_ms: Date.now() - arrived,
          request_id: requestId,
          reason: error.rawMessage,
        });
      }
      if (!ctx.responseHeader.has("x-request-id")) ctx.responseHeader.set("x-request-id", requestId);
      // An HTTP/1.1 connection whose request body was not read to its end cannot carry another request.
      if (!("stream" in res) && !req.complete) res.setHeader("connection", "close");
      if (connect) {
        // Connect answers an error with its HTTP status and a JSON body; the error's metadata go in the headers.
        error.metadata.forEach((value, key) => ctx.responseHeader.set(key, value));
        const out = await compressed(req, wire, errorToJsonBytes(error, jsonOptions));
        writeConnectAnswer(res, codeToHttpStatus(error.code), "application/json", trailerMux(ctx.responseHeader, ctx.responseTrailer), out);
        return;
      }
      setTrailerStatus(ctx.responseTrailer, error);
      if (wire === grpc && "stream" in res) {
        // An error is sent Trailers-Only (one HEADERS frame that ends the stream), as the gRPC spec asks: clients
        // such as grpc-js retry a call only while no response headers have arrived, so headers followed by
        // trailers would make every error final.
        res.stream.respond(
          { ":status": 200, ...headersObject(ctx.responseHeader), ...headersObject(ctx.responseTrailer), "content-type": wire.contentType },
          { endStream: true },
        );
      } else if (!res.headersSent) {
        // gRPC-web has no HTTP trailers: the status goes in a trailer frame of the body, as connect-node sends it.
        res.writeHead(200, { ...headersObject(ctx.responseHeader), "content-type": wire.contentType });
        res.end(trailerFrame(ctx.responseTrailer));
      }
    } finally {
      res.off("close", onClose);
      running.delete(ctx.controller);
      ctx.end();
    }
  }
}

/**
 * The answer's bytes, compressed as connect-node would: with the first encoding the client accepts that the
 * server has, and only from compressMinBytes on.
 */
async function compressed(req: FastRequest, wire: Wire, bytes: Uint8Array): Promise<{ bytes: Uint8Array; encoding?: string }> {
  if (bytes.byteLength < compressMinBytes) return { bytes };
  const accepted = headerValue(wire.protocol === "connect" ? req.headers["accept-encoding"] : req.headers["grpc-accept-encoding"]);
  const { response } = compressionNegotiate(acceptCompression, null, accepted, "");
  if (response === null) return { bytes };
  return { bytes: await response.compress(bytes), encoding: response.name };
}

/**
 * A Connect unary answer: the bare message or error, its trailers among the headers (`trailer-` prefixed, as
 * `header` already holds them).
 */
function writeConnectAnswer(res: FastResponse, status: number, contentType: string, header: Headers, out: { bytes: Uint8Array; encoding?: string }): void {
  if (out.encoding) header.set("content-encoding", out.encoding);
  res.writeHead(status, { ...headersObject(header), "content-type": contentType, "content-length": String(out.bytes.byteLength) });
  res.end(out.bytes);
}

/** The request message from its bytes: protobuf (every wire but Connect JSON) or JSON. */
function parseMessage(entry: UnaryEntry, wire: Wire, bytes: Uint8Array) {
  try {
    return entry.serialization.getI(wire.binary).parse(bytes);
  } catch (e) {
    // connect raises a protobuf that does not parse as INTERNAL; it is the client's error.
    const error = ConnectError.from(e);
    if (isParseFailure(error.code, error.rawMessage)) throw malformedRequest(error.rawMessage);
    throw error;
  }
}

interface CallContext extends HandlerContext {
  readonly controller: AbortController;
  /** Cancels the call: its signal aborts with `reason` (a client gone, the deadline, the shutdown). */
  abort(reason: unknown): void;
  /** The call is over: stops its deadline timer and aborts its signal, as connect does, so work tied to it stops. */
  end(): void;
}

const streamClosed = () => new ConnectError("client closed the stream", Code.Canceled);
/**
 * The reason a finished call's signal carries. One shared error: the call has answered by then, so the reason
 * reaches no client and no log line, and building a fresh error (or connect's DOMException, whose stack is
 * captured) on every call costs more than the rest of the call context together.
 */
const callEnded = new ConnectError("the call has ended", Code.Canceled);

/**
 * The HandlerContext of one call, as connect's createHandlerContext builds it, but on a single AbortController:
 * the client's stream closing, the deadline and the shutdown abort it directly instead of through linked
 * controllers, and a call without a deadline sets no timer.
 */
function createCallContext(entry: UnaryEntry, wire: Wire, req: FastRequest, timeoutMs: number | undefined, values: ContextValues): CallContext {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let timeLeft: () => number | undefined = () => undefined;
  if (timeoutMs !== undefined) {
    const deadline = Date.now() + timeoutMs;
    timeLeft = () => deadline - Date.now();
    const expire = () => controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    if (timeoutMs <= 0) expire();
    else timer = setTimeout(expire, timeoutMs);
  }
  return {
    service: entry.service,
    method: entry.method,
    protocolName: wire.protocol,
    requestMethod: "POST",
    url: req.url ?? "",
    signal: controller.signal,
    timeoutMs: timeLeft,
    requestHeader: requestHeaders(req.headers),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values,
    controller,
    abort(reason) {
      clearTimeout(timer);
      if (!controller.signal.aborted) controller.abort(reason);
    },
    end() {
      clearTimeout(timer);
      if (!controller.signal.aborted) controller.abort(callEnded);
    },
  };
}

/**
 * Receives the body of a unary call, with the bounds of request-body.ts's guardBody (the call's deadline, the
 * pause between chunks, the total time; DEADLINE_EXCEEDED) and the size limit, which refuses an oversized message
 * before buffering it: from its envelope header (gRPC, gRPC-web) or its Content-Length (Connect). Listens to the
 * stream's events directly: one promise and one timer per call instead of an async iterator, a promise and a timer
 * per chunk. `signal` ends the wait with its reason.
 */
function receiveBody(
  req: FastRequest,
  o: {
    started: number;
    limits: BodyLimits;
    deadlineAt: number | undefined;
    signal: AbortSignal;
    readMaxBytes: number;
    /** The body is one length-prefixed message (gRPC, gRPC-web), not the bare message (Connect). */
    enveloped: boolean;
    /** Connect's Content-Length, which must match what arrives. */
    lengthHint: string | null;
  },
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let declared = -1;
    let timer: NodeJS.Timeout | undefined;
    const settle = (error: unknown, body?: Buffer) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      o.signal.removeEventListener("abort", onAbort);
      // Whatever else the client sends is read and dropped: the answer does not wait for it.
      if (error !== undefined) reject(error);
      else resolve(body ?? Buffer.alloc(0));
    };
    const tooLarge = (bytes: number, known: boolean) =>
      new ConnectError(`message size ${known ? `${bytes} ` : ""}is larger than configured readMaxBytes ${o.readMaxBytes}`, Code.ResourceExhausted);
    const arm = () => {
      clearTimeout(timer);
      const wait = nextChunkWait(o.started, Date.now(), o.limits, o.deadlineAt);
      timer = setTimeout(() => settle(wait.error()), wait.ms);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (!o.enveloped) {
        if (declared >= 0 && size > declared) return settle(malformedRequest(`protocol error: promised ${declared} bytes, received ${size}`));
        if (size > o.readMaxBytes) return settle(tooLarge(size, false));
      } else {
        if (declared < 0 && size >= 5) {
          declared = (chunks.length === 1 ? chunk : Buffer.concat(chunks, size)).readUInt32BE(1);
          if (declared > o.readMaxBytes) return settle(tooLarge(declared, true));
        }
        if (size > o.readMaxBytes + 5) return settle(new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented));
      }
      arm();
    };
    const onEnd = () => {
      if (!o.enveloped && declared >= 0 && size < declared) {
        return settle(malformedRequest(`protocol error: promised ${declared} bytes, received ${size}`));
      }
      settle(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (e: unknown) => settle(e);
    const onAbort = () => settle(ConnectError.from(o.signal.reason ?? new ConnectError("call cancelled", Code.Canceled)));
    if (o.signal.aborted) return onAbort();
    if (!o.enveloped && o.lengthHint !== null) {
      const hint = Number.parseInt(o.lengthHint, 10);
      if (Number.isSafeInteger(hint) && hint >= 0) {
        if (hint > o.readMaxBytes) return settle(tooLarge(hint, true));
        declared = hint;
      }
    }
    o.signal.addEventListener("abort", onAbort, { once: true });
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    arm();
  });
}

/** The bytes of the single length-prefixed message of a unary call's body (gRPC, gRPC-web). */
function unenvelope(data: Buffer): Buffer {
  if (data.length < 5) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  if ((data[0]! & 0b1) === 0b1) throw new ConnectError("protocol error: received compressed message without grpc-encoding", Code.Internal);
  const length = data.readUInt32BE(1);
  if (data.length < 5 + length) throw malformedRequest("protocol error: incomplete envelope");
  if (data.length > 5 + length) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  return data.subarray(5);
}

function headerValue(v: string | string[] | undefined): string | null {
  return v === undefined ? null : Array.isArray(v) ? (v[0] ?? null) : v;
}

function requestHeaders(incoming: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const key in incoming) {
    if (key.charCodeAt(0) === 58 /* ":" pseudo-header */) continue;
    const value = incoming[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else headers.append(key, value);
  }
  return headers;
}

/** A gRPC-web trailer frame: the fields as `name: value` lines, enveloped with the trailer flag. */
function trailerFrame(trailer: Headers): Buffer {
  return envelope(trailerFlag, trailerSerialize(trailer));
}

function headersObject(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}
