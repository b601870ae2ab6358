/**
 * Clients that misbehave on purpose, over real sockets: raw TCP peers that stop half-way, trickle or never read,
 * and HTTP/2 peers that reset streams or refuse to take data. Each reports what the server did to it and when.
 */
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";

export const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface RawPeer {
  readonly socket: net.Socket;
  /** Everything the server sent so far. */
  readonly received: () => Buffer;
  /** Resolves with the milliseconds from connect to the server closing the socket, or rejects after `withinMs`. */
  closedWithin(withinMs: number): Promise<number>;
}

/** Opens a TCP connection and writes `bytes` (if any); the peer never sends anything else unless told to. */
export async function rawPeer(port: number, bytes?: Buffer | string): Promise<RawPeer> {
  const socket = net.connect(port, "127.0.0.1");
  const opened = Date.now();
  const chunks: Buffer[] = [];
  let closedAt: number | undefined;
  const closed = new Promise<void>((resolve) => socket.once("close", () => ((closedAt = Date.now()), resolve())));
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  if (bytes !== undefined && bytes.length > 0) socket.write(bytes);
  return {
    socket,
    received: () => Buffer.concat(chunks),
    async closedWithin(withinMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`socket still open after ${withinMs} ms`)), withinMs - (Date.now() - opened));
      });
      try {
        await Promise.race([closed, late]);
      } finally {
        clearTimeout(timer);
        socket.destroy();
      }
      return (closedAt ?? Date.now()) - opened;
    },
  };
}

/** Writes `data` one byte every `everyMs` until the socket closes; the returned function stops it. */
export function trickle(peer: RawPeer, data: Buffer | string, everyMs: number): () => void {
  const bytes = Buffer.from(data);
  let i = 0;
  const timer = setInterval(() => {
    if (peer.socket.destroyed || i >= bytes.length) return clearInterval(timer);
    peer.socket.write(bytes.subarray(i, i + 1));
    i++;
  }, everyMs);
  peer.socket.once("close", () => clearInterval(timer));
  return () => clearInterval(timer);
}

/** One gRPC length-prefixed message. */
export function grpcFrame(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  return frame;
}

export const healthCheckFrame = grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {})));

/** What happened to one HTTP/2 stream: its grpc-status (from headers or trailers), or the reset code. */
export interface StreamOutcome {
  grpcStatus: string;
  /** The HTTP :status of the response (0 when none came). */
  httpStatus: number;
  rstCode: number;
  /** From the request to the stream's close. */
  ms: number;
  /** From the request to the grpc-status arriving (-1 when none came). */
  statusMs: number;
  /** grpc-status-details-bin, from headers or trailers ("" when none came). */
  statusDetails: string;
}

/** Opens a stream on `session`, sends `body` (ending the stream unless `keepOpen`), and waits for it to close. */
export function h2Call(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
  options: { headers?: http2.OutgoingHttpHeaders; keepOpen?: boolean; contentType?: string } = {},
): Promise<StreamOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    let grpcStatus = "";
    let httpStatus = 0;
    let statusMs = -1;
    let statusDetails = "";
    const status = (v: unknown, details: unknown) => {
      if (v === undefined) return;
      grpcStatus = String(v);
      statusDetails = typeof details === "string" ? details : "";
      statusMs = Date.now() - started;
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": options.contentType ?? "application/grpc",
        te: "trailers",
        ...options.headers,
      });
    } catch {
      resolve({ grpcStatus: "", httpStatus, rstCode: -1, ms: 0, statusMs, statusDetails });
      return;
    }
    stream.on("response", (h) => {
      httpStatus = Number(h[":status"] ?? 0);
      status(h["grpc-status"], h["grpc-status-details-bin"]);
    });
    stream.on("trailers", (t) => status(t["grpc-status"], t["grpc-status-details-bin"]));
    stream.on("data", () => {});
    stream.on("error", () => {});
    stream.on("close", () => resolve({ grpcStatus, httpStatus, rstCode: stream.rstCode ?? 0, ms: Date.now() - started, statusMs, statusDetails }));
    if (options.keepOpen) stream.write(body);
    else stream.end(body);
  });
}

/** An HTTP/2 session; `settings` lets a test advertise, say, a zero flow-control window. */
export async function h2Session(url: string, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(url, { settings });
  session.on("error", () => {});
  await new Promise<void>((resolve, reject) => session.once("connect", () => resolve()).once("error", reject));
  return session;
}

/** Resolves with the milliseconds until `session` closes, or rejects after `withinMs`. */
export function sessionClosedWithin(session: http2.ClientHttp2Session, withinMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (session.closed || session.destroyed) return resolve(0);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`HTTP/2 session still open after ${withinMs} ms`));
    }, withinMs);
    session.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

/** One raw HTTP/2 frame (RFC 9113 §4.1), for peers that break the rules Node's own client keeps. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

export const H2 = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, END_STREAM: 0x1, END_HEADERS: 0x4, ACK: 0x1 } as const;

/** A header block of literal fields without indexing or Huffman coding (RFC 7541 §6.2.2); names and values < 127 bytes. */
export function hpackLiterals(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    parts.push(Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value));
  }
  return Buffer.concat(parts);
}

export interface ParsedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** The complete frames in what a server sent after the connection preface. */
export function parseH2Frames(bytes: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  for (let at = 0; at + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    frames.push({ type: bytes.readUInt8(at + 3), flags: bytes.readUInt8(at + 4), streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff, payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return frames;
}

/** Polls `condition` every 10 ms until it holds, failing with `what` after `withinMs`. */
export async function until(condition: () => boolean, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sends `body` on a new stream and resolves with how many response bytes arrived before it closed. */
export function h2Body(session: http2.ClientHttp2Session, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => (bytes += chunk.length));
    stream.on("error", reject);
    stream.on("close", () => resolve(bytes));
    stream.end(body);
  });
}
