import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeFromString, errorToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { kRequestId } from "./context.js";
import { envelope } from "./envelope.js";
import { codeName, isParseFailure, malformedRequest } from "./errors.js";
import type { Logger } from "./logger.js";
import { guardBody, requestedTimeoutMs, type BodyLimits } from "./request-body.js";
import { acceptCompression, compressMinBytes, jsonOptions } from "./wire-format.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface RpcAdapterOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  readMaxBytes: number;
  maxTimeoutMs: number;
  shutdownSignal: AbortSignal;
  body: BodyLimits;
  contextValues: (req: NodeRequest) => ContextValues;
  logger: Logger;
}

/**
 * The connect-node handler for every protocol (gRPC, gRPC-web, Connect), with what connect-node leaves out:
 * the call's deadline and the body time limits count from the first byte (connect starts its deadline only
 * once the body is in), JSON must be valid UTF-8, a request that does not parse answers INVALID_ARGUMENT on
 * every protocol (connect raises binary parse failures as INTERNAL, outside the interceptors), and an unknown
 * method answers UNIMPLEMENTED in the caller's protocol. Each such answer carries the request id and is logged.
 */
export function createRpcAdapter(options: RpcAdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    maxTimeoutMs: options.maxTimeoutMs,
    shutdownSignal: options.shutdownSignal,
    acceptCompression,
    compressMinBytes,
    jsonOptions,
  });
  options.routes(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));

  return (req, res) => {
    const path = req.url?.split("?", 2)[0] ?? "";
    const values = options.contextValues(req);
    const requestId = values.get(kRequestId);
    const handler = handlers.get(path);
    if (!handler) {
      answerStatus(req, res, Code.Unimplemented, `unknown method ${path.slice(0, 200)}`, requestId);
      options.logger.info("rpc", { path, code: "unimplemented", duration_ms: 0, request_id: requestId });
      return;
    }
    const started = performance.now();
    let uReq: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    } catch (e) {
      // connect-node cannot build a request without an authority (an HTTP/1.0 request with no Host header); it
      // throws synchronously, which would escape the server's request handler and end the process.
      const message = ConnectError.from(e).rawMessage;
      answerStatus(req, res, Code.InvalidArgument, message, requestId);
      options.logger.info("rpc", { service: handler.service.typeName, method: handler.method.name, code: "invalid_argument", duration_ms: 0, request_id: requestId, reason: message });
      return;
    }
    const timeoutMs = requestedTimeoutMs(req.headers, options.maxTimeoutMs);
    if (typeof uReq.body === "object" && uReq.body !== null && Symbol.asyncIterator in uReq.body) {
      uReq.body = guardBody(uReq.body as AsyncIterable<Uint8Array>, {
        limits: options.body,
        deadlineAt: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
        signal: uReq.signal,
        // The rest of the body will never be read: the connection must not be reused for another request.
        onStall: () => dropAfterAnswer(req, res),
      });
    }
    const remapped = (code: Code, message: string) => {
      options.logger.info("rpc", {
        service: handler.service.typeName,
        method: handler.method.name,
        code: codeName(code),
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        request_id: requestId,
        reason: message,
      });
    };
    handler(uReq)
      .then((uRes) => {
        if (!uRes.header) uRes.header = new Headers();
        if (!uRes.header.has("x-request-id")) uRes.header.set("x-request-id", requestId);
        // Answered before its body was read (a message over the size limit, say): on HTTP/1.1 the rest of the body
        // would be read as the next request, so the connection closes after this answer.
        if (!("stream" in req) && !req.complete) dropAfterAnswer(req, res);
        return universalResponseToNodeResponse(remapParseFailures(uRes, remapped), res);
      })
      .catch((reason: unknown) => {
        // A client that went away while its answer was written: nothing left to tell it.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.logger.error("writing a response failed", { service: handler.service.typeName, method: handler.method.name, request_id: requestId, error: reason });
      });
  };
}

/**
 * Rewrites connect's answers to a request that does not parse (isParseFailure) as malformedRequest() wherever the
 * protocol carries the status: a Connect unary error body, gRPC trailers, the trailer frame of gRPC-web, or a
 * Connect end-of-stream message. An answer that already carries details came through our own error mapping.
 */
function remapParseFailures(uRes: UniversalServerResponse, onRemap: (code: Code, message: string) => void): UniversalServerResponse {
  const body = uRes.body;
  if (body === undefined || !(Symbol.asyncIterator in Object(body))) return uRes;
  const contentType = uRes.header?.get("content-type") ?? "";
  const chunks = body as AsyncIterable<Uint8Array>;
  if (contentType === "application/json" && (uRes.status === 500 || uRes.status === 400)) {
    // The adapter writes the status after the first chunk is read, so setting it while reading is in time.
    const out: UniversalServerResponse = { ...uRes };
    out.body = (async function* () {
      const bytes = Buffer.concat(await collect(chunks));
      const parsed = safeJson(bytes) as { code?: string; message?: string; details?: unknown } | undefined;
      if (typeof parsed?.code === "string" && typeof parsed.message === "string" && parsed.details === undefined && isParseFailure(codeFromString(parsed.code) ?? Code.Unknown, parsed.message)) {
        out.status = 400;
        const json = errorToJsonBytes(malformedRequest(parsed.message), jsonOptions);
        out.header?.set("content-length", String(json.length));
        onRemap(Code.InvalidArgument, parsed.message);
        yield json;
        return;
      }
      yield bytes;
    })();
    return out;
  }
  if (contentType.startsWith("application/grpc-web")) {
    return { ...uRes, body: mapFrames(chunks, 0x80, (frame) => remapTrailerBlock(frame, onRemap)) };
  }
  if (contentType.startsWith("application/grpc")) {
    return {
      ...uRes,
      body: (async function* () {
        yield* chunks;
        const trailer = uRes.trailer;
        const message = decodeURIComponent(trailer?.get("grpc-message") ?? "");
        if (trailer && !trailer.has("grpc-status-details-bin") && isParseFailure(Number(trailer.get("grpc-status")), message)) {
          setTrailerStatus(trailer, malformedRequest(message));
          onRemap(Code.InvalidArgument, message);
        }
      })(),
    };
  }
  if (contentType.startsWith("application/connect+")) {
    return { ...uRes, body: mapFrames(chunks, 0x02, (frame) => remapEndStream(frame, onRemap)) };
  }
  return uRes;
}

/** Passes enveloped chunks through, handing each whole frame whose flags include `flag` to `rewrite`. */
async function* mapFrames(chunks: AsyncIterable<Uint8Array>, flag: number, rewrite: (payload: Buffer) => Buffer | undefined) {
  for await (const chunk of chunks) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length >= 5 && (buf[0]! & flag) === flag && buf.readUInt32BE(1) === buf.length - 5) {
      const out = rewrite(buf.subarray(5));
      if (out) {
        yield envelope(buf[0]!, out);
        continue;
      }
    }
    yield chunk;
  }
}

function remapTrailerBlock(payload: Buffer, onRemap: (code: Code, message: string) => void): Buffer | undefined {
  const trailer = trailerParse(payload);
  const message = decodeURIComponent(trailer.get("grpc-message") ?? "");
  if (trailer.has("grpc-status-details-bin") || !isParseFailure(Number(trailer.get("grpc-status")), message)) return undefined;
  onRemap(Code.InvalidArgument, message);
  setTrailerStatus(trailer, malformedRequest(message));
  return Buffer.from(trailerSerialize(trailer));
}

function remapEndStream(payload: Buffer, onRemap: (code: Code, message: string) => void): Buffer | undefined {
  const end = safeJson(payload) as { error?: { code?: string; message?: string; details?: unknown } } | undefined;
  const message = end?.error?.message;
  const code = typeof end?.error?.code === "string" ? codeFromString(end.error.code) : undefined;
  if (code === undefined || typeof message !== "string" || end?.error?.details !== undefined || !isParseFailure(code, message)) return undefined;
  onRemap(Code.InvalidArgument, message);
  return Buffer.from(JSON.stringify({ ...end, error: errorToJson(malformedRequest(message), jsonOptions) }));
}

/** Answers a call the handlers never saw, in the caller's protocol: Trailers-Only gRPC, or Connect's JSON error. */
function answerStatus(req: NodeRequest, res: NodeResponse, code: Code, message: string, requestId: string): void {
  const contentType = String(req.headers["content-type"] ?? "");
  res.setHeader("x-request-id", requestId);
  const error = code === Code.InvalidArgument ? malformedRequest(message) : new ConnectError(message, code);
  if (contentType.startsWith("application/grpc")) {
    const status = new Headers();
    setTrailerStatus(status, error);
    const headers: Record<string, string> = { "content-type": contentType.startsWith("application/grpc-web") ? contentType : "application/grpc" };
    status.forEach((value, name) => (headers[name] = value));
    res.writeHead(200, headers);
    res.end();
    return;
  }
  res.writeHead(code === Code.Unimplemented ? 404 : 400, { "content-type": "application/json" });
  res.end(errorToJsonBytes(error, jsonOptions));
}

/**
 * After the answer is out, close what the client still holds open: on HTTP/1.1 its unread body would be read as
 * the next request. (An HTTP/2 stream left half open is reset by the session's write-stall watch; closing it here
 * could overtake the trailers.)
 */
function dropAfterAnswer(req: NodeRequest, res: NodeResponse): void {
  if ("stream" in req) return;
  (res as http.ServerResponse).shouldKeepAlive = false;
  res.once("finish", () => req.socket?.destroySoon());
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}
