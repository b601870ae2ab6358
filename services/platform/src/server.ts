import { setMaxListeners } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code, ConnectError, createContextValues, cors as connectCors, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { kClientInfo, kRequestId } from "./context.js";
import { codeName } from "./errors.js";
import { createUnaryFastPath } from "./unary-fast-path.js";
import { requestIdFrom } from "./interceptors.js";
import { createLogger, type Logger } from "./logger.js";
import { createRpcAdapter } from "./rpc-adapter.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
/** A plain HTTP endpoint beside the RPCs, such as the JWKS document. */
export type HttpRoute = (req: NodeRequest, res: NodeResponse) => void | Promise<void>;

/** Time and size bounds on every connection, stream and call: a hostile or broken peer cannot hold any of them forever. */
export interface ConnectionLimits {
  /** From accept to the bytes that tell HTTP/2 from HTTP/1.1 (the whole HTTP/2 preface, or a request line's start). */
  readonly firstBytesMs: number;
  /** HTTP/1.1: from the first byte of a request to the end of its headers. */
  readonly headersMs: number;
  /** From the request's headers to the end of its body (both protocols). */
  readonly requestMs: number;
  /** Longest pause within a request body. */
  readonly bodyIdleMs: number;
  /** HTTP/1.1: how long an idle kept-alive connection stays open. */
  readonly keepAliveMs: number;
  /** HTTP/2: a session with no frames for this long is closed when it has no streams, pinged when it has some. */
  readonly sessionIdleMs: number;
  /** HTTP/2: a ping not answered within this ends the session. */
  readonly pingTimeoutMs: number;
  /** A response whose bytes the client has not taken for this long is cut (zero-window and stalled readers). */
  readonly writeStallMs: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: more streams on one connection are refused before any work. */
  readonly streamsPerConnection: number;
  /** Calls served at once by this process; more answer RESOURCE_EXHAUSTED. */
  readonly callsInFlight: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  firstBytesMs: 10_000,
  headersMs: 10_000,
  requestMs: 30_000,
  bodyIdleMs: 10_000,
  keepAliveMs: 5_000,
  sessionIdleMs: 30_000,
  pingTimeoutMs: 5_000,
  writeStallMs: 10_000,
  streamsPerConnection: 100,
  callsInFlight: 2_000,
};

export interface RpcServerOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Plain HTTP GET endpoints by exact path. */
  httpRoutes?: Record<string, HttpRoute>;
  /** Browser origins allowed by CORS; "*" allows any. */
  corsOrigins?: readonly string[];
  /** Largest request message accepted; bigger ones answer RESOURCE_EXHAUSTED. */
  maxMessageBytes?: number;
  /** Take the client address from X-Forwarded-For (only behind a trusted proxy such as the Envoy edge). */
  trustForwardedFor?: boolean;
  /** Longest deadline a client may ask for. */
  maxTimeoutMs?: number;
  /**
   * Serve uncompressed unary calls (gRPC, binary gRPC-web, Connect POST) on the lean path (default true); false
   * sends everything through connect-node.
   */
  unaryFastPath?: boolean;
  /** Timeouts and concurrency bounds; each one left out takes its default. */
  limits?: Partial<ConnectionLimits>;
  /** Where the server's own answers (unknown methods, unparsable requests) are logged. */
  logger?: Logger;
}

export interface RpcServer {
  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Stops accepting connections and calls; in-flight calls get until `graceMs` to finish, then the rest are
   * answered UNAVAILABLE and every socket is closed. Resolves when the listener and all sockets are closed.
   */
  close(graceMs: number): Promise<void>;
  /** Calls running now. */
  readonly inFlight: number;
  /** Open client connections. */
  readonly connections: number;
}

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long cut calls get to write their UNAVAILABLE answer before their sockets are destroyed. */
const cutAnswerMs = 250;

/**
 * One port for every client: a net.Server reads the first bytes of each connection and hands it to an HTTP/2
 * server (gRPC clients, `buf curl`, h2c) when they are the HTTP/2 connection preface, and to an HTTP/1.1 server
 * (browsers, curl, gRPC-web and Connect over HTTP/1.1) otherwise. Both serve the same connect-node handler.
 */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const limits: ConnectionLimits = { ...defaultConnectionLimits, ...options.limits };
  const logger = options.logger ?? createLogger({ level: "silent" });
  const shutdown = new AbortController();
  // Every running call listens on the shutdown signal; thousands at once are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const common = {
    readMaxBytes: options.maxMessageBytes ?? 1024 * 1024,
    maxTimeoutMs: options.maxTimeoutMs ?? 5 * 60_000,
    shutdownSignal: shutdown.signal,
    contextValues: (req: NodeRequest) => contextValuesFor(req, options.trustForwardedFor ?? false),
    body: { idleMs: limits.bodyIdleMs, totalMs: limits.requestMs },
  };
  const rpc = createRpcAdapter({ routes: options.routes, interceptors: options.interceptors, logger, ...common });
  const fast = options.unaryFastPath === false ? undefined : createUnaryFastPath({ routes: options.routes, interceptors: options.interceptors, logger, ...common });
  const corsOrigins = new Set(options.corsOrigins ?? []);
  const allowHeaders = [...connectCors.allowedHeaders, "Authorization", "X-Request-Id", "Idempotency-Key"].join(", ");
  const exposeHeaders = [...connectCors.exposedHeaders, "X-Request-Id"].join(", ");
  const allowMethods = connectCors.allowedMethods.join(", ");
  let draining = false;
  /** HTTP/1.1 responses in progress, so shutdown can tell their clients not to reuse the connection. */
  const h1Running = new Set<http.ServerResponse>();
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const handle = (req: NodeRequest, res: NodeResponse) => {
    const origin = req.headers.origin;
    if (origin !== undefined && (corsOrigins.has("*") || corsOrigins.has(origin))) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Vary", "Origin");
      if (req.method === "OPTIONS") {
        res.setHeader("Access-Control-Allow-Methods", allowMethods);
        res.setHeader("Access-Control-Allow-Headers", allowHeaders);
        res.setHeader("Access-Control-Max-Age", "7200");
        res.statusCode = 204;
        res.end();
        return;
      }
      res.setHeader("Access-Control-Expose-Headers", exposeHeaders);
    }
    if (draining) {
      refuse(req, res, Code.Unavailable, "server is shutting down");
      return;
    }
    if (inFlight >= limits.callsInFlight) {
      refuse(req, res, Code.ResourceExhausted, "server is at its limit of concurrent calls, try again");
      return;
    }
    inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (res instanceof http.ServerResponse) {
        h1Running.delete(res);
        socket?.off("close", release);
      }
      inFlight--;
      if (inFlight === 0) idle?.();
    };
    // An HTTP/1.1 response queued behind earlier pipelined ones has no socket yet and emits no "close" when the
    // connection goes: without the socket's own "close" it would count as in flight for ever, and a client that
    // pipelines and hangs up, again and again, would push the process to its call limit.
    const socket = res instanceof http.ServerResponse ? req.socket : undefined;
    if (res instanceof http.ServerResponse) {
      h1Running.add(res);
      socket?.once("close", release);
    }
    res.once("close", release);
    const path = req.url?.split("?")[0] ?? "";
    const route = req.method === "GET" ? options.httpRoutes?.[path] : undefined;
    if (route) {
      Promise.resolve(route(req, res)).catch(() => {
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
      return;
    }
    try {
      if (fast?.(req, res)) return;
      rpc(req, res);
    } catch (e) {
      // A throw here would escape node's request handler and end the process for every client: it is a bug in
      // this request's handling, so it ends this request alone.
      logger.error("request handling failed", { path, error: e });
      if (!res.headersSent) refuse(req, res, Code.Internal, "internal error");
      else res.destroy();
    }
  };

  const h1 = http.createServer(
    {
      keepAliveTimeout: limits.keepAliveMs,
      headersTimeout: limits.headersMs,
      requestTimeout: limits.requestMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersMs),
    },
    handle,
  );
  // Node checks headersTimeout and requestTimeout only on a server that emitted "listening"; this one never
  // listens itself (the sniffer hands it sockets), so start the checker explicitly. Its timer is unref'd.
  h1.emit("listening");
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.streamsPerConnection } }, handle);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    watchSession(session, limits);
  });
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    sniff(socket, limits.firstBytesMs, (isH2) => {
      if (!isH2) h1Writes.watch(socket);
      (isH2 ? h2 : h1).emit("connection", socket);
    });
  });
  const h1Writes = watchStalledWrites(limits.writeStallMs);

  return {
    get inFlight() {
      return inFlight;
    },
    get connections() {
      return sockets.size;
    },
    listen(port, host = "0.0.0.0") {
      return new Promise((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(port, host, () => {
          listener.off("error", reject);
          resolve((listener.address() as net.AddressInfo).port);
        });
      });
    },
    async close(graceMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const session of sessions) session.close(); // GOAWAY: running streams finish, no new ones
      h1.closeIdleConnections();
      for (const res of h1Running) if (!res.headersSent) res.shouldKeepAlive = false; // answers with Connection: close
      const waitForIdle = (ms: number) =>
        inFlight === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, ms);
              idle = () => {
                clearTimeout(timer);
                resolve();
              };
            });
      // Calls still running at the grace deadline are answered UNAVAILABLE (so clients retry elsewhere) rather
      // than seeing their streams reset; the answers get a moment to leave before the sockets go.
      await waitForIdle(Math.max(0, graceMs - cutAnswerMs));
      shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
      await waitForIdle(cutAnswerMs);
      for (const socket of sockets) socket.destroy();
      h1.close(); // stops the timeout checker started above
      h1Writes.stop();
      await closed;
    },
  };
}

/**
 * Reads the first bytes of a connection until they tell the protocol: the full HTTP/2 preface, or anything that
 * departs from it (an HTTP/1.1 request). Bytes are only put back once, at the decision; a peer that stops short
 * of deciding is closed after `timeoutMs` from accept, however slowly it trickles.
 */
function sniff(socket: net.Socket, timeoutMs: number, decided: (isH2: boolean) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const stop = () => {
    clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("end", onEnd);
    socket.off("close", stop);
  };
  const onEnd = () => {
    stop();
    socket.destroy();
  };
  const onReadable = () => {
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
      chunks.push(chunk);
      size += chunk.length;
    }
    if (size === 0) return;
    const head = Buffer.concat(chunks, size);
    const n = Math.min(size, h2Preface.length);
    const isH2 = head.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isH2 && size < h2Preface.length) return; // a prefix of the preface: wait for the rest
    stop();
    socket.unshift(head);
    decided(isH2);
  };
  socket.on("readable", onReadable);
  socket.once("end", onEnd);
  socket.once("close", stop);
}

/**
 * HTTP/1.1 sockets whose written bytes the client has not taken for `stallMs` are destroyed: a client that never
 * reads (pipelining requests, say) otherwise pins its answers in memory, and node stops reading its requests, so
 * no request or keep-alive timer runs. A slow handler writes nothing and keeps its connection.
 */
function watchStalledWrites(stallMs: number): { watch(socket: net.Socket): void; stop(): void } {
  const watched = new Map<net.Socket, { flushed: number; since: number }>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [socket, seen] of watched) {
      const flushed = socket.bytesWritten - socket.writableLength;
      if (socket.writableLength === 0 || flushed !== seen.flushed) watched.set(socket, { flushed, since: now });
      else if (now - seen.since >= stallMs) socket.destroy();
    }
  }, Math.max(50, stallMs / 4));
  sweep.unref();
  return {
    watch(socket) {
      watched.set(socket, { flushed: 0, since: Date.now() });
      socket.once("close", () => watched.delete(socket));
    },
    stop: () => clearInterval(sweep),
  };
}

/**
 * Idle HTTP/2 sessions are closed; busy ones whose frames stopped are pinged and destroyed when the ping goes
 * unanswered; a stream whose response the client does not take (a zero or stalled flow-control window) is reset
 * after `writeStallMs`, so a reader that never reads cannot pin responses in memory.
 */
function watchSession(session: http2.Http2Session, limits: ConnectionLimits): void {
  // Streams waiting on the client: bytes it has not taken, or a complete answer while its half is still open.
  // Each sweep, a stream that has waited without progress for writeStallMs is reset. (Node's per-stream timer
  // is restarted by unrelated frames, so it cannot tell a stalled stream from a quiet one.)
  const open = new Set<http2.ServerHttp2Stream>();
  const waiting = new Map<http2.ServerHttp2Stream, { since: number; buffered: number }>();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open.add(stream);
    stream.once("close", () => {
      open.delete(stream);
      waiting.delete(stream);
    });
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const stream of open) {
      const pending = stream.writableLength > 0 || stream.writableEnded;
      const seen = waiting.get(stream);
      if (!pending) waiting.delete(stream);
      else if (!seen || stream.bufferSize < seen.buffered) waiting.set(stream, { since: now, buffered: stream.bufferSize });
      else if (now - seen.since >= limits.writeStallMs) stream.close(http2.constants.NGHTTP2_CANCEL);
    }
  }, Math.max(50, limits.writeStallMs / 4));
  sweep.unref();
  session.once("close", () => clearInterval(sweep));
  session.setTimeout(limits.sessionIdleMs, () => {
    if (session.destroyed || session.closed) return;
    if (open.size === 0) {
      session.close();
      setTimeout(() => session.destroy(), limits.pingTimeoutMs).unref();
      return;
    }
    const dead = setTimeout(() => session.destroy(), limits.pingTimeoutMs);
    dead.unref();
    const sent = session.ping((err) => {
      clearTimeout(dead);
      if (err) session.destroy();
    });
    if (!sent) {
      clearTimeout(dead);
      session.destroy();
    }
  });
}

/**
 * Answers a call without running it: UNAVAILABLE after shutdown began (clients retry elsewhere), RESOURCE_EXHAUSTED
 * when the process is at its call limit.
 */
function refuse(req: NodeRequest, res: NodeResponse, code: Code.Unavailable | Code.ResourceExhausted | Code.Internal, message: string): void {
  const contentType = String(req.headers["content-type"] ?? "");
  if (code === Code.Unavailable && req.httpVersionMajor === 1) res.setHeader("Connection", "close");
  if (contentType.startsWith("application/grpc")) {
    res.statusCode = 200;
    res.setHeader("Content-Type", contentType.startsWith("application/grpc-web") ? contentType : "application/grpc");
    res.setHeader("grpc-status", String(code));
    res.setHeader("grpc-message", encodeURIComponent(message));
    res.end();
    return;
  }
  res.statusCode = code === Code.Unavailable ? 503 : code === Code.ResourceExhausted ? 429 : 500;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ code: codeName(code), message }));
}

function contextValuesFor(req: NodeRequest, trustForwardedFor: boolean) {
  let ip = req.socket.remoteAddress ?? "";
  if (trustForwardedFor) {
    // Behind Envoy the peer is the proxy; the last hop it appended is the client it saw.
    const forwarded = String(req.headers["x-forwarded-for"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    ip = forwarded.at(-1) ?? ip;
  }
  const values = createContextValues();
  values.set(kRequestId, requestIdFrom(headerOf(req.headers["x-request-id"])));
  values.set(kClientInfo, { ip, userAgent: String(req.headers["user-agent"] ?? "").slice(0, 256) });
  return values;
}

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
