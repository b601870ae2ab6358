import { setMaxListeners } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code, ConnectError, createContextValues, cors as connectCors, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { kClientInfo } from "./context.js";
import { createGrpcFastPath } from "./grpc-fast-path.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
/** A plain HTTP endpoint beside the RPCs, such as the JWKS document. */
export type HttpRoute = (req: NodeRequest, res: NodeResponse) => void | Promise<void>;

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
  /** Serve unary gRPC over HTTP/2 on the lean path (default true); false sends everything through connect-node. */
  grpcFastPath?: boolean;
}

export interface RpcServer {
  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Stops accepting connections and calls; in-flight calls get until `graceMs` to finish, then every socket is
   * destroyed. Resolves when the listener and all sockets are closed.
   */
  close(graceMs: number): Promise<void>;
  /** Calls running now. */
  readonly inFlight: number;
}

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One port for every client: a net.Server peeks at the first bytes of each connection and hands it to an HTTP/2
 * server (gRPC clients, `buf curl`, h2c) when they are the HTTP/2 connection preface, and to an HTTP/1.1 server
 * (browsers, curl, gRPC-web and Connect over HTTP/1.1) otherwise. Both serve the same connect-node handler.
 */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const shutdown = new AbortController();
  // Every running call listens on the shutdown signal; thousands at once are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const limits = {
    readMaxBytes: options.maxMessageBytes ?? 1024 * 1024,
    maxTimeoutMs: options.maxTimeoutMs ?? 5 * 60_000,
    shutdownSignal: shutdown.signal,
    contextValues: (req: NodeRequest) => contextValuesFor(req, options.trustForwardedFor ?? false),
  };
  const rpc = connectNodeAdapter({ routes: options.routes, interceptors: options.interceptors, ...limits });
  const fast = options.grpcFastPath === false ? undefined : createGrpcFastPath({ routes: options.routes, interceptors: options.interceptors, ...limits });
  const corsOrigins = new Set(options.corsOrigins ?? []);
  const allowHeaders = [...connectCors.allowedHeaders, "Authorization", "X-Request-Id"].join(", ");
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
      refuse(req, res);
      return;
    }
    inFlight++;
    if (res instanceof http.ServerResponse) h1Running.add(res);
    res.once("close", () => {
      if (res instanceof http.ServerResponse) h1Running.delete(res);
      inFlight--;
      if (inFlight === 0) idle?.();
    });
    const path = req.url?.split("?")[0] ?? "";
    const route = req.method === "GET" ? options.httpRoutes?.[path] : undefined;
    if (route) {
      Promise.resolve(route(req, res)).catch(() => {
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
      return;
    }
    if (fast && req.httpVersionMajor === 2 && fast(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse)) return;
    rpc(req, res);
  };

  const h1 = http.createServer({ keepAliveTimeout: 5000 }, handle);
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, handle);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("readable", () => {
      // Wait for enough bytes to tell the HTTP/2 preface apart from an HTTP/1.1 request line.
      const peek = (): void => {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) {
          socket.once("readable", peek);
          return;
        }
        const n = Math.min(chunk.length, 3);
        const isH2 = chunk.subarray(0, n).equals(h2Preface.subarray(0, n));
        if (isH2 && chunk.length < 3) {
          socket.unshift(chunk);
          socket.once("readable", peek);
          return;
        }
        socket.unshift(chunk);
        (isH2 ? h2 : h1).emit("connection", socket);
      };
      peek();
    });
    socket.on("error", () => socket.destroy());
  });

  return {
    get inFlight() {
      return inFlight;
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
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function refuse(req: NodeRequest, res: NodeResponse): void {
  // A call that arrives on a kept-alive connection after shutdown began: UNAVAILABLE, so clients retry elsewhere.
  const contentType = String(req.headers["content-type"] ?? "");
  res.setHeader("Connection", "close");
  if (contentType.startsWith("application/grpc")) {
    res.statusCode = 200;
    res.setHeader("Content-Type", contentType.startsWith("application/grpc-web") ? contentType : "application/grpc");
    res.setHeader("grpc-status", String(Code.Unavailable));
    res.setHeader("grpc-message", "server is shutting down");
    res.end();
    return;
  }
  res.statusCode = 503;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ code: "unavailable", message: "server is shutting down" }));
}

function contextValuesFor(req: NodeRequest, trustForwardedFor: boolean) {
  let ip = req.socket.remoteAddress ?? "";
  if (trustForwardedFor) {
    // Behind Envoy the peer is the proxy; the last hop it appended is the client it saw.
    const forwarded = String(req.headers["x-forwarded-for"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    ip = forwarded.at(-1) ?? ip;
  }
  const values = createContextValues();
  values.set(kClientInfo, { ip, userAgent: String(req.headers["user-agent"] ?? "").slice(0, 256) });
  return values;
}
