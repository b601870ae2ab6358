/**
 * One error mapping for every protocol: a request that does not parse, JSON that is broken or not UTF-8, a
 * compressed body that does not inflate, and an unknown method get the right code (never INTERNAL), a request id
 * and a log line; and the call's deadline counts from the first byte on every protocol, even while the body is
 * still arriving.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "@local-e-grocery/gen/google/rpc/status_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { clientFor, bearer } from "../../../test/clients.js";
import { registerAndLogin, startTestPlatform, type TestPlatform } from "../../../test/harness.js";
import { grpcFrame, h2Call, h2Session, rawPeer } from "../../../test/hostile-peers.js";
import { createHealthRegistry } from "../src/health.js";
import { createLogger } from "../src/logger.js";
import { createRpcServer } from "../src/server.js";

/** The fields of the google.rpc.BadRequest in a grpc-status-details-bin value (a google.rpc.Status). */
function violationsOfStatusBin(value: string): string[] {
  assert.notEqual(value, "", "grpc-status-details-bin is sent");
  const status = fromBinary(StatusSchema, Buffer.from(value, "base64"));
  const requests = status.details.flatMap((any) => {
    const unpacked = anyUnpack(any, BadRequestSchema);
    return unpacked ? [unpacked] : [];
  });
  assert.equal(requests.length, 1, "one google.rpc.BadRequest");
  return requests[0]!.fieldViolations.map((v) => (assert.notEqual(v.description, ""), v.field));
}

/** The fields of the google.rpc.BadRequest in a Connect error body. */
function violationsOfConnectJson(body: unknown): string[] {
  const { code, details } = body as { code: string; details?: { type: string; value: string }[] };
  assert.equal(code, "invalid_argument");
  const requests = (details ?? []).filter((d) => d.type === BadRequestSchema.typeName);
  assert.equal(requests.length, 1, `one google.rpc.BadRequest in ${JSON.stringify(body)}`);
  return fromBinary(BadRequestSchema, Buffer.from(requests[0]!.value, "base64")).fieldViolations.map((v) => v.field);
}

/** Bytes that are not a protobuf message: field 1, length 5, but one byte of it. */
const notProtobuf = Buffer.from([0x0a, 0x05, 0x61]);

describe("malformed requests answer the right code on every protocol", () => {
  let tp: TestPlatform;
  let token: string;
  before(async () => {
    // Streams a client leaves half open are reset after the write-stall timeout; keep it short so the suite is.
    tp = await startTestPlatform({ backend: "pglite", env: { WRITE_STALL_TIMEOUT: "1s" } });
    token = (await registerAndLogin(tp.url)).accessToken;
  });
  after(() => tp.close());

  const post = (path: string, body: Buffer | string, headers: Record<string, string>) =>
    fetch(`${tp.url}/${path}`, { method: "POST", body: typeof body === "string" ? body : new Uint8Array(body), headers });

  it("Connect: protobuf that does not parse is INVALID_ARGUMENT (400) with a request id", async () => {
    const res = await post("grocery.identity.v1.AuthService/Login", notProtobuf, { "content-type": "application/proto" });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, "invalid_argument");
    assert.match(res.headers.get("x-request-id") ?? "", /.+/);
  });

  it("Connect: broken JSON and JSON that is not UTF-8 are INVALID_ARGUMENT and change nothing", async () => {
    const broken = await post("grocery.identity.v1.AuthService/Login", '{"login":', { "content-type": "application/json" });
    assert.equal(broken.status, 400);
    assert.equal(((await broken.json()) as { code: string }).code, "invalid_argument");

    const badUtf8 = Buffer.concat([Buffer.from('{"name":"Week'), Buffer.from([0xff, 0xfe]), Buffer.from('ly"}')]);
    const res = await post("grocery.cart.v1.CartService/CreateCart", badUtf8, { "content-type": "application/json", authorization: `Bearer ${token}` });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, "invalid_argument");
    const carts = await clientFor(CartService, tp.url).listCarts({}, bearer(token));
    assert.equal(carts.carts.length, 0, "a rejected request created a cart");
  });

  it("gRPC-web: protobuf that does not parse is INVALID_ARGUMENT", async () => {
    const res = await post("grocery.identity.v1.AuthService/Login", grpcFrame(notProtobuf), { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" });
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer()).toString("latin1");
    const status = res.headers.get("grpc-status") ?? /grpc-status: ?(\d+)/.exec(body)?.[1];
    assert.equal(status, String(Code.InvalidArgument), body);
  });

  it("gRPC: uncompressed, gzip-compressed and corrupt-gzip bodies that do not parse are INVALID_ARGUMENT", async () => {
    const session = await h2Session(tp.url);
    try {
      const plain = await h2Call(session, "/grocery.identity.v1.AuthService/Login", grpcFrame(notProtobuf));
      assert.equal(plain.grpcStatus, String(Code.InvalidArgument));
      const compressed = grpcFrame(gzipSync(notProtobuf));
      compressed[0] = 1;
      const gz = await h2Call(session, "/grocery.identity.v1.AuthService/Login", compressed, { headers: { "grpc-encoding": "gzip" } });
      assert.equal(gz.grpcStatus, String(Code.InvalidArgument));
      const corrupt = grpcFrame(Buffer.from("not gzip at all"));
      corrupt[0] = 1;
      const bad = await h2Call(session, "/grocery.identity.v1.AuthService/Login", corrupt, { headers: { "grpc-encoding": "gzip" } });
      assert.equal(bad.grpcStatus, String(Code.InvalidArgument));
    } finally {
      session.destroy();
    }
  });

  it("every INVALID_ARGUMENT for a body that is no message carries a google.rpc.BadRequest, on every protocol", async () => {
    const connectProto = await post("grocery.identity.v1.AuthService/Login", notProtobuf, { "content-type": "application/proto" });
    assert.deepEqual(violationsOfConnectJson(await connectProto.json()), [""], "Connect protobuf");
    const connectJson = await post("grocery.identity.v1.AuthService/Login", '{"login":', { "content-type": "application/json" });
    assert.deepEqual(violationsOfConnectJson(await connectJson.json()), [""], "Connect JSON");

    const grpcWeb = await post("grocery.identity.v1.AuthService/Login", grpcFrame(notProtobuf), { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" });
    const block = Buffer.from(await grpcWeb.arrayBuffer()).toString("latin1");
    const webDetails = grpcWeb.headers.get("grpc-status-details-bin") ?? /grpc-status-details-bin: ?([A-Za-z0-9+/=_-]+)/.exec(block)?.[1] ?? "";
    assert.deepEqual(violationsOfStatusBin(webDetails), [""], `gRPC-web: ${block}`);

    const session = await h2Session(tp.url);
    try {
      const plain = await h2Call(session, "/grocery.identity.v1.AuthService/Login", grpcFrame(notProtobuf));
      assert.deepEqual(violationsOfStatusBin(plain.statusDetails), [""], "gRPC (the unary fast path)");
      const compressed = grpcFrame(gzipSync(notProtobuf));
      compressed[0] = 1;
      const gz = await h2Call(session, "/grocery.identity.v1.AuthService/Login", compressed, { headers: { "grpc-encoding": "gzip" } });
      assert.deepEqual(violationsOfStatusBin(gz.statusDetails), [""], "gRPC compressed (connect-node's path)");
      const short = grpcFrame(Buffer.from("abc")).subarray(0, 6);
      const incomplete = await h2Call(session, "/grocery.identity.v1.AuthService/Login", short);
      assert.equal(incomplete.grpcStatus, String(Code.InvalidArgument));
      assert.deepEqual(violationsOfStatusBin(incomplete.statusDetails), [""], "gRPC, an envelope longer than its body");
    } finally {
      session.destroy();
    }
  });

  it("an HTTP/1.0 request without a Host header is INVALID_ARGUMENT, and the server keeps serving", async () => {
    const peer = await rawPeer(tp.port, 'POST /grocery.identity.v1.AuthService/GetJwks HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    await peer.closedWithin(3000);
    assert.match(peer.received().toString(), /^HTTP\/1\.[01] 400[\s\S]*invalid_argument/);
    assert.equal((await post("grocery.identity.v1.AuthService/GetJwks", "{}", { "content-type": "application/json" })).status, 200);
  });

  it("an unknown method is UNIMPLEMENTED in the caller's protocol", async () => {
    const session = await h2Session(tp.url);
    try {
      const grpc = await h2Call(session, "/grocery.nothing.v1.NoService/Nothing", grpcFrame(Buffer.alloc(0)));
      assert.equal(grpc.grpcStatus, String(Code.Unimplemented));
    } finally {
      session.destroy();
    }
    const web = await post("grocery.nothing.v1.NoService/Nothing", grpcFrame(Buffer.alloc(0)), { "content-type": "application/grpc-web+proto" });
    assert.equal(web.headers.get("grpc-status"), String(Code.Unimplemented));
    const connect = await post("grocery.nothing.v1.NoService/Nothing", "{}", { "content-type": "application/json" });
    assert.equal(connect.status, 404);
    assert.equal(((await connect.json()) as { code: string }).code, "unimplemented");
    assert.match(connect.headers.get("x-request-id") ?? "", /.+/);
  });

  describe("the deadline counts from the first byte while the body is still arriving", () => {
    // The body-idle timeout is 10 s by default: an answer well before it can only come from the deadline.
    it("gRPC (the unary fast path and connect-node's path for compressed calls)", async () => {
      const session = await h2Session(tp.url);
      try {
        for (const headers of [{ "grpc-timeout": "300m" }, { "grpc-timeout": "300m", "grpc-encoding": "gzip" }]) {
          const o = await h2Call(session, "/grocery.identity.v1.AuthService/Login", Buffer.from([0, 0, 0, 0, 40, 1, 2]), { headers, keepOpen: true });
          assert.equal(o.grpcStatus, String(Code.DeadlineExceeded), JSON.stringify(headers));
          assert.ok(o.statusMs < 2000, `answered after ${o.statusMs} ms`);
        }
      } finally {
        session.destroy();
      }
    });

    for (const [name, headers, expect] of [
      ["gRPC-web over HTTP/1.1", "Content-Type: application/grpc-web+proto\r\nGrpc-Timeout: 300m\r\n", /grpc-status: ?4/],
      ["Connect over HTTP/1.1", "Content-Type: application/json\r\nConnect-Timeout-Ms: 300\r\n", /^HTTP\/1\.1 504[\s\S]*deadline_exceeded/],
    ] as const) {
      it(name, async () => {
        const started = Date.now();
        const peer = await rawPeer(tp.port, `POST /grocery.identity.v1.AuthService/Login HTTP/1.1\r\nHost: localhost\r\n${headers}Content-Length: 100\r\n\r\n{"lo`);
        const closedMs = await peer.closedWithin(3000);
        assert.match(peer.received().toString("latin1"), expect);
        assert.ok(Date.now() - started < 2500 && closedMs < 2500, `answered after ${closedMs} ms`);
      });
    }
  });
});

describe("the server's own answers are logged with their request id", () => {
  it("a parse failure logs one rpc line with invalid_argument", async () => {
    const lines: Record<string, unknown>[] = [];
    const health = createHealthRegistry([]);
    const server = createRpcServer({
      routes: (router) => health.routes(router),
      interceptors: [],
      logger: createLogger({ level: "info", write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
    });
    const port = await server.listen(0, "127.0.0.1");
    try {
      const res = await fetch(`http://127.0.0.1:${port}/grpc.health.v1.Health/Check`, {
        method: "POST",
        body: notProtobuf,
        headers: { "content-type": "application/proto", "x-request-id": "parse-check-1" },
      });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("x-request-id"), "parse-check-1");
      const line = lines.find((l) => l["msg"] === "rpc" && l["request_id"] === "parse-check-1");
      assert.equal(line?.["code"], "invalid_argument", JSON.stringify(lines));
    } finally {
      await server.close(100);
    }
  });
});
