#!/usr/bin/env node
// A grpc.health.v1.Health/Check over cleartext HTTP/2, with nothing but node: — the image's HEALTHCHECK.
//
//   node scripts/grpc-health-probe.mjs [host:port] [service]
//
// Defaults: 127.0.0.1:$PORT (8080) and the whole process (service ""). Exits 0 when the answer is SERVING with
// grpc-status 0, 1 for any other answer, an error or no answer within HEALTH_PROBE_DEADLINE_MS (3000).
import http2 from "node:http2";

const target = process.argv[2] ?? `127.0.0.1:${process.env.PORT || "8080"}`;
const service = process.argv[3] ?? "";
const deadlineMs = Number(process.env.HEALTH_PROBE_DEADLINE_MS || 3000);

/** HealthCheckRequest { string service = 1 } in protobuf, inside a gRPC length-prefixed frame. */
function requestFrame(name) {
  const bytes = Buffer.from(name, "utf8");
  if (bytes.length > 127) throw new Error("service name too long for this probe");
  const message = bytes.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/** The `status` (field 1, varint) of a HealthCheckResponse frame; 0 (UNKNOWN) when absent. */
function statusOf(body) {
  if (body.length < 5 || body[0] !== 0) throw new Error("no uncompressed response message");
  const message = body.subarray(5, 5 + body.readUInt32BE(1));
  for (let at = 0; at < message.length; ) {
    const key = message[at++];
    if (key === 0x08) return message[at];
    throw new Error(`unexpected field key ${key}`);
  }
  return 0;
}

const statusNames = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function fail(why) {
  process.stderr.write(`health ${target} ${JSON.stringify(service)}: ${why}\n`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`no answer within ${deadlineMs} ms`), deadlineMs);
const session = http2.connect(`http://${target}`);
session.on("error", (e) => fail(e.message));
const stream = session.request({
  ":method": "POST",
  ":path": "/grpc.health.v1.Health/Check",
  "content-type": "application/grpc",
  te: "trailers",
  "grpc-timeout": `${deadlineMs}m`,
});
const chunks = [];
let grpcStatus;
stream.on("response", (headers) => (grpcStatus = headers["grpc-status"]));
stream.on("trailers", (trailers) => (grpcStatus = trailers["grpc-status"] ?? grpcStatus));
stream.on("data", (c) => chunks.push(c));
stream.on("error", (e) => fail(e.message));
stream.on("end", () => {
  clearTimeout(timer);
  session.close();
  if (grpcStatus !== "0") fail(`grpc-status ${grpcStatus ?? "missing"}`);
  let status;
  try {
    status = statusOf(Buffer.concat(chunks));
  } catch (e) {
    fail(e.message);
  }
  if (status !== 1) fail(statusNames[status] ?? `status ${status}`);
  process.exit(0);
});
stream.end(requestFrame(service));
