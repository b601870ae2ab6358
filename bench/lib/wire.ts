/**
 * Requests as bytes on the wire, and a bare node:http2 client that sends them: gRPC and gRPC-web frames (5-byte
 * prefix + protobuf), Connect JSON bodies, and a closed-loop driver that reads the status of every call
 * (grpc-status from trailers, from the gRPC-web trailer frame, or the HTTP status for Connect).
 */
import http2 from "node:http2";
import { create, toBinary, toJsonString, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";

export type WireProtocol = "grpc" | "grpc-web" | "connect";

/** One call as sent: path, headers and body. */
export interface WireRequest {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** A gRPC length-prefixed message frame (flags 0, big-endian length, message). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The request of a unary call of `method` (`pkg.Service/Method`) with `input`, in `protocol`. */
export function wireRequest<M extends DescMessage>(
  protocol: WireProtocol,
  method: string,
  schema: M,
  input: MessageInitShape<M>,
  token?: string,
): WireRequest {
  const message = create(schema, input);
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (protocol === "connect") {
    return { path: `/${method}`, headers: { "content-type": "application/json", ...auth }, body: Buffer.from(toJsonString(schema, message)) };
  }
  const body = grpcFrame(toBinary(schema, message));
  const contentType = protocol === "grpc" ? "application/grpc" : "application/grpc-web+proto";
  return { path: `/${method}`, headers: { "content-type": contentType, te: "trailers", ...auth }, body };
}

/** The h2load arguments that send `req` (the body goes to a file, `-d`). */
export function h2loadHeaderArgs(req: WireRequest): string[] {
  return Object.entries(req.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
}

/** gRPC status names, for reporting; Connect codes map onto the same numbers. */
export const codeNames = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

const connectCodes = new Map(codeNames.map((n, i) => [n.toLowerCase(), i]));

/** The outcome of one call: a status name ("OK", "NOT_FOUND"…, or "transport" / "http <n>"), latency, response body. */
export interface CallResult {
  code: string;
  ms: number;
  body: Buffer;
}

function grpcWebTrailerStatus(body: Buffer): string | undefined {
  let off = 0;
  while (off + 5 <= body.length) {
    const flags = body[off]!;
    const len = body.readUInt32BE(off + 1);
    if (flags & 0x80) {
      const m = /grpc-status:\s*(\d+)/i.exec(body.subarray(off + 5, off + 5 + len).toString());
      return m?.[1];
    }
    off += 5 + len;
  }
  return undefined;
}

/** The first message of a gRPC / gRPC-web response body (without its prefix). */
export function firstMessage(body: Buffer): Buffer {
  if (body.length < 5) return Buffer.alloc(0);
  return body.subarray(5, 5 + body.readUInt32BE(1));
}

/** Sends one call on `session` and reads its status. */
export function call(session: http2.ClientHttp2Session, protocol: WireProtocol, req: WireRequest): Promise<CallResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status: string | undefined;
    let httpStatus = 0;
    const chunks: Buffer[] = [];
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ":method": "POST", ":path": req.path, ...req.headers });
    } catch {
      resolve({ code: "transport", ms: performance.now() - started, body: Buffer.alloc(0) });
      return;
    }
    stream.on("response", (h) => {
      httpStatus = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    stream.on("trailers", (t) => {
      if (t["grpc-status"] !== undefined) status = String(t["grpc-status"]);
    });
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("error", () => {});
    stream.on("close", () => {
      const body = Buffer.concat(chunks);
      const ms = performance.now() - started;
      let code: string;
      if (protocol === "connect") {
        if (httpStatus === 200) code = "OK";
        else {
          let name: string | undefined;
          try {
            name = (JSON.parse(body.toString()) as { code?: string }).code;
          } catch {
            // Not a Connect error body.
          }
          const n = name === undefined ? undefined : connectCodes.get(name);
          code = n === undefined ? (httpStatus ? `http ${httpStatus}` : "transport") : codeNames[n]!;
        }
      } else {
        if (protocol === "grpc-web" && status === undefined) status = grpcWebTrailerStatus(body);
        code = status === undefined ? (httpStatus && httpStatus !== 200 ? `http ${httpStatus}` : "transport") : (codeNames[Number(status)] ?? `status ${status}`);
      }
      resolve({ code, ms, body });
    });
    stream.end(req.body);
  });
}

/** Opens `n` HTTP/2 connections to `url` and waits until each is connected. */
export async function connect(url: string, n: number): Promise<http2.ClientHttp2Session[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const s = http2.connect(url, { settings: { enablePush: false } });
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        }),
    ),
  );
}

export function closeAll(sessions: http2.ClientHttp2Session[]): Promise<void> {
  return Promise.all(sessions.map((s) => new Promise<void>((r) => (s.closed ? r() : s.close(() => r()))))).then(() => {});
}

/** What a closed-loop run measured: calls by status, the latencies of the successful ones, and elapsed time. */
export interface LoopResult {
  codes: Record<string, number>;
  latenciesMs: number[];
  seconds: number;
  ok: number;
}

/**
 * Drives `connections` × `streams` concurrent calls for `seconds`, each loop asking `next(worker)` for its next
 * request (so writes get fresh bodies) and telling `done` the result (so a chained token can be kept).
 */
export async function closedLoop(options: {
  url: string;
  protocol: WireProtocol;
  connections: number;
  streams: number;
  seconds: number;
  next: (worker: number) => WireRequest;
  done?: (worker: number, result: CallResult) => void;
}): Promise<LoopResult> {
  const sessions = await connect(options.url, options.connections);
  const codes: Record<string, number> = {};
  const latenciesMs: number[] = [];
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  let ok = 0;
  try {
    await Promise.all(
      Array.from({ length: options.connections * options.streams }, async (_, worker) => {
        const session = sessions[worker % options.connections]!;
        while (performance.now() < deadline) {
          const r = await call(session, options.protocol, options.next(worker));
          codes[r.code] = (codes[r.code] ?? 0) + 1;
          if (r.code === "OK") {
            ok++;
            latenciesMs.push(r.ms);
          }
          options.done?.(worker, r);
        }
      }),
    );
  } finally {
    await closeAll(sessions);
  }
  return { codes, latenciesMs, seconds: (performance.now() - started) / 1000, ok };
}

/** Sends `req` `count` times, `concurrency` at a time, on one connection; counts the outcomes by status. */
export async function sample(url: string, protocol: WireProtocol, req: WireRequest, count: number, concurrency = 8): Promise<Record<string, number>> {
  const [session] = await connect(url, 1);
  const codes: Record<string, number> = {};
  let left = count;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) {
          const r = await call(session!, protocol, req);
          codes[r.code] = (codes[r.code] ?? 0) + 1;
        }
      }),
    );
  } finally {
    await closeAll([session!]);
  }
  return codes;
}
