import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { grpcJsClient } from "../../../test/clients.js";
import { kClientInfo } from "../src/context.js";
import { createRpcServer, type RpcServer } from "../src/server.js";

/**
 * The lean unary path must behave exactly like connect-node: the same scenarios run against a server with the fast
 * path and one without, over gRPC, over binary gRPC-web and over Connect (protobuf and JSON) on HTTP/1.1 and
 * HTTP/2, and every observable outcome must match.
 */
const aborted: string[] = [];
/** An answer of `count` keys: from about a dozen on it is past compressMinBytes, so it goes out compressed. */
const keys = (count: number) => ({ keys: Array.from({ length: count }, (_, i) => ({ kty: "EC", crv: "P-256", kid: `key-${i}`, x: "x".repeat(43), y: "y".repeat(43) })) });
const routes = (router: ConnectRouter) =>
  router.rpc(AuthService.method.getJwks, () => keys(40)).service(Health, {
    async check(req, ctx: HandlerContext) {
      const [command, arg] = req.service.split(":");
      switch (command) {
        case "echo":
          ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-probe") ?? "");
          ctx.responseTrailer.set("x-trail", "t1");
          return { status: Status.SERVING };
        case "fail":
          throw new ConnectError("no such shop: é/ü", Code.FailedPrecondition, { "x-why": "closed" });
        case "fail-long":
          throw new ConnectError(`no such shop: ${"ab".repeat(800)}`, Code.NotFound);
        case "boom":
          throw new Error("secret internals");
        case "slow":
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 5000);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              aborted.push(arg ?? "");
              resolve();
            });
          });
          return { status: Status.SERVING };
        case "path":
          // The fast path's context carries its own controller; connect-node's does not.
          ctx.responseHeader.set("x-path", "controller" in ctx ? "fast" : "connect-node");
          return { status: Status.SERVING };
        case "ip":
          ctx.responseHeader.set("x-ip", ctx.values.get(kClientInfo).ip);
          return { status: Status.SERVING };
        default:
          return { status: Status.NOT_SERVING };
      }
    },
  });

const order: string[] = [];
const tag: Interceptor = (next) => async (req) => {
  order.push(`in:${req.method.name}`);
  const res = await next(req);
  res.header.set("x-intercepted", "yes");
  return res;
};

const servers: Record<"fast" | "connect-node", { server: RpcServer; url: string }> = {} as never;

before(async () => {
  for (const [name, unaryFastPath] of [["fast", true], ["connect-node", false]] as const) {
    const server = createRpcServer({ routes, interceptors: [tag], maxMessageBytes: 1024, unaryFastPath });
    const port = await server.listen(0, "127.0.0.1");
    servers[name] = { server, url: `http://127.0.0.1:${port}` };
  }
});
after(async () => {
  for (const s of Object.values(servers)) await s.server.close(100);
});

const wires = [
  "gRPC",
  "gRPC-web over HTTP/1.1",
  "gRPC-web over HTTP/2",
  "Connect JSON over HTTP/1.1",
  "Connect JSON over HTTP/2",
  "Connect protobuf over HTTP/1.1",
  "Connect protobuf over HTTP/2",
] as const;
type Wire = (typeof wires)[number];
const transport = (url: string, compress: boolean, wire: Wire) => {
  const options = { baseUrl: url, ...(compress ? { sendCompression: compressionGzip, compressMinBytes: 0 } : {}) };
  const h2 = { httpVersion: "2" as const, idleConnectionTimeoutMs: 500 };
  const h1 = { httpVersion: "1.1" as const };
  switch (wire) {
    case "gRPC":
      return createGrpcTransport({ ...options, idleConnectionTimeoutMs: 500 });
    case "gRPC-web over HTTP/2":
      return createGrpcWebTransport({ ...options, ...h2 });
    case "gRPC-web over HTTP/1.1":
      return createGrpcWebTransport({ ...options, ...h1 });
    case "Connect JSON over HTTP/1.1":
      return createConnectTransport({ ...options, ...h1 });
    case "Connect JSON over HTTP/2":
      return createConnectTransport({ ...options, ...h2 });
    case "Connect protobuf over HTTP/1.1":
      return createConnectTransport({ ...options, ...h1, useBinaryFormat: true });
    case "Connect protobuf over HTTP/2":
      return createConnectTransport({ ...options, ...h2, useBinaryFormat: true });
  }
};
const client = (url: string, compress = false, wire: Wire = "gRPC") => createClient(Health, transport(url, compress, wire));

/** A large answer: the key ids it carries and the encoding it travelled in. */
async function largeAnswer(url: string, wire: Wire) {
  let header: Headers | undefined;
  const res = await createClient(AuthService, transport(url, false, wire)).getJwks({}, { onHeader: (h) => (header = h) });
  return { kids: res.keys.map((k) => k.kid), encoding: header?.get("grpc-encoding") ?? header?.get("content-encoding") ?? "identity" };
}

/** Runs a call and reduces its outcome to what a client can observe. */
async function outcome(call: (onHeader: (h: Headers) => void, onTrailer: (t: Headers) => void) => Promise<{ status: Status }>) {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  try {
    const res = await call((h) => (header = h), (t) => (trailer = t));
    return { ok: res.status, echo: header?.get("x-echo"), intercepted: header?.get("x-intercepted"), trail: trailer?.get("x-trail") };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: err.code, message: err.rawMessage, why: err.metadata.get("x-why") };
  }
}

describe("unary fast path matches connect-node", () => {
  const scenarios: [string, (url: string, wire: Wire) => ReturnType<typeof outcome>][] = [
    ["success with headers and trailers", (url, w) => outcome((onHeader, onTrailer) => client(url, false, w).check({ service: "echo" }, { headers: { "x-probe": "p1" }, onHeader, onTrailer }))],
    ["plain success", (url, w) => outcome(() => client(url, false, w).check({ service: "other" }))],
    ["error with code, unicode message and metadata", (url, w) => outcome(() => client(url, false, w).check({ service: "fail" }))],
    ["unexpected error", (url, w) => outcome(() => client(url, false, w).check({ service: "boom" }))],
    ["deadline", (url, w) => outcome(() => client(url, false, w).check({ service: "slow:deadline" }, { timeoutMs: 50 }))],
    ["message over the limit", (url, w) => outcome(() => client(url, false, w).check({ service: "x".repeat(2000) }))],
    ["compressed request (served by connect-node either way)", (url, w) => outcome(() => client(url, true, w).check({ service: "echo" }, { headers: { "x-probe": "gz" } }))],
  ];
  for (const wire of wires) {
    for (const [name, run] of scenarios) {
      it(`${wire}: ${name}`, async () => {
        const fast = await run(servers.fast.url, wire);
        const reference = await run(servers["connect-node"].url, wire);
        assert.deepEqual(fast, reference);
      });
    }
    it(`${wire}: a large answer, compressed for a client that accepts gzip`, async () => {
      const fast = await largeAnswer(servers.fast.url, wire);
      assert.deepEqual(fast, await largeAnswer(servers["connect-node"].url, wire));
      assert.equal(fast.kids.length, 40);
      assert.equal(fast.encoding, "gzip");
    });
  }

  it("serves every uncompressed wire on the fast path, and compressed requests on connect-node's", async () => {
    const servedBy = async (url: string, wire: Wire, compress: boolean) => {
      let path: string | null | undefined;
      await client(url, compress, wire).check({ service: "path" }, { onHeader: (h) => (path = h.get("x-path")) });
      return path;
    };
    for (const wire of wires) {
      assert.equal(await servedBy(servers.fast.url, wire, false), "fast", wire);
      assert.equal(await servedBy(servers.fast.url, wire, true), "connect-node", `${wire}, compressed`);
      assert.equal(await servedBy(servers["connect-node"].url, wire, false), "connect-node", `${wire}, fast path off`);
    }
  });

  it("gives the expected answers (not just equal ones)", async () => {
    const url = servers.fast.url;
    assert.deepEqual(await outcome((h, t) => client(url).check({ service: "echo" }, { headers: { "x-probe": "p1" }, onHeader: h, onTrailer: t })), {
      ok: Status.SERVING,
      echo: "p1",
      intercepted: "yes",
      trail: "t1",
    });
    assert.deepEqual(await outcome(() => client(url).check({ service: "fail" })), { code: Code.FailedPrecondition, message: "no such shop: é/ü", why: "closed" });
    assert.equal((await outcome(() => client(url).check({ service: "slow:d" }, { timeoutMs: 50 }))).code, Code.DeadlineExceeded);
    assert.equal((await outcome(() => client(url).check({ service: "x".repeat(2000) }))).code, Code.ResourceExhausted);
  });

  for (const wire of wires) {
    it(`${wire}: aborts the handler's signal on deadline and on client cancel`, async () => {
      aborted.length = 0;
      await outcome(() => client(servers.fast.url, false, wire).check({ service: "slow:deadline" }, { timeoutMs: 50 }));
      const controller = new AbortController();
      const call = outcome(() => client(servers.fast.url, false, wire).check({ service: "slow:cancel" }, { signal: controller.signal }));
      await new Promise((r) => setTimeout(r, 50));
      controller.abort();
      assert.equal((await call).code, Code.Canceled);
      for (let i = 0; i < 50 && aborted.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(aborted.sort(), ["cancel", "deadline"]);
    });
  }

  it("runs the interceptors and context values, and serves @grpc/grpc-js", async () => {
    order.length = 0;
    const grpc = grpcJsClient(servers.fast.url);
    try {
      const res = await grpc.unary(Health.method.check, { service: "other" });
      assert.equal(res.status, Status.NOT_SERVING);
      assert.equal(await grpc.unary(Health.method.check, { service: "fail" }).catch((e: unknown) => ConnectError.from(e).code), Code.FailedPrecondition);
    } finally {
      grpc.close();
    }
    assert.deepEqual(order, ["in:Check", "in:Check"]);
    let ip: string | null | undefined;
    await client(servers.fast.url).check({ service: "ip" }, { onHeader: (h) => (ip = h.get("x-ip")) });
    assert.equal(ip, "127.0.0.1");
  });
});

describe("Connect requests no client library sends are answered as connect-node answers them", () => {
  const json = { "content-type": "application/json" };
  const proto = { "content-type": "application/proto" };
  const cases: [string, string | Buffer, Record<string, string>][] = [
    ["broken JSON", '{"service":', json],
    ["JSON that is not UTF-8", Buffer.concat([Buffer.from('{"service":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), json],
    ["protobuf that does not parse", Buffer.from([0x0a, 0x05, 0x61]), proto],
    ["an empty JSON body", "", json],
    ["an empty protobuf body", "", proto],
    ["JSON with a charset", '{"service":"echo"}', { "content-type": "application/json; charset=utf-8", "x-probe": "cs" }],
    ["JSON with a field the message does not have", '{"service":"other","nope":1}', json],
    ["a body over the size limit", JSON.stringify({ service: "x".repeat(2000) }), json],
    ["a timeout that is not a number", '{"service":"other"}', { ...json, "connect-timeout-ms": "soon" }],
    ["an error with metadata", '{"service":"fail"}', json],
    ["an error body past compressMinBytes, for a client that accepts gzip", JSON.stringify({ service: "fail-long" }), { ...json, "accept-encoding": "gzip" }],
  ];
  const answer = async (url: string, body: string | Buffer, headers: Record<string, string>) => {
    const res = await fetch(`${url}/grpc.health.v1.Health/Check`, { method: "POST", body: typeof body === "string" ? body : new Uint8Array(body), headers });
    const bytes = Buffer.from(await res.arrayBuffer());
    const pick = ["content-type", "content-encoding", "x-echo", "x-intercepted", "trailer-x-trail", "x-why"];
    return {
      status: res.status,
      headers: Object.fromEntries(pick.map((h) => [h, res.headers.get(h)])),
      body: res.headers.get("content-type") === "application/json" ? (JSON.parse(bytes.toString()) as unknown) : bytes.toString("base64"),
      requestId: /.+/.test(res.headers.get("x-request-id") ?? ""),
    };
  };
  for (const [name, body, headers] of cases) {
    it(name, async () => {
      const fast = await answer(servers.fast.url, body, headers);
      assert.deepEqual(fast, await answer(servers["connect-node"].url, body, headers));
      assert.ok(fast.requestId, "no request id");
    });
  }

  it("gives the expected answers (not just equal ones)", async () => {
    const url = servers.fast.url;
    const broken = await answer(url, '{"service":', json);
    assert.equal(broken.status, 400);
    assert.equal((broken.body as { code: string }).code, "invalid_argument");
    assert.equal((await answer(url, Buffer.from([0x0a, 0x05, 0x61]), proto)).status, 400);
    const big = await answer(url, JSON.stringify({ service: "x".repeat(2000) }), json);
    assert.deepEqual([big.status, (big.body as { code: string }).code], [429, "resource_exhausted"]);
    const echo = await answer(url, '{"service":"echo"}', { "content-type": "application/json; charset=utf-8", "x-probe": "cs" });
    assert.equal(echo.status, 200);
    assert.deepEqual(echo.headers, { "content-type": "application/json", "content-encoding": null, "x-echo": "cs", "x-intercepted": "yes", "trailer-x-trail": "t1", "x-why": null });
    assert.deepEqual(echo.body, { status: "SERVING" });
    const long = await answer(url, '{"service":"fail-long"}', { ...json, "accept-encoding": "gzip" });
    assert.deepEqual([long.status, long.headers["content-encoding"], (long.body as { code: string }).code], [404, "gzip", "not_found"]);
    const failed = await answer(url, '{"service":"fail"}', json);
    assert.deepEqual([failed.status, failed.headers["x-why"], failed.body], [400, "closed", { code: "failed_precondition", message: "no such shop: é/ü" }]);
  });
});

describe("unary fast path and per-registration handler options", () => {
  // A per-service interceptor: what a later service might add, and what the fast path would silently skip.
  const perService: Interceptor = (next) => async (req) => {
    const res = await next(req);
    res.header.set("x-per-service", "yes");
    return res;
  };
  const check = () => ({ status: Status.SERVING });

  it("refuses at start-up a service registered with options it does not honour, naming the service", () => {
    assert.throws(
      () => createRpcServer({ routes: (router) => router.service(Health, { check }, { interceptors: [perService] }), interceptors: [] }),
      (e: unknown) => e instanceof Error && e.message.includes("grpc.health.v1.Health") && e.message.includes("interceptors"),
    );
    assert.throws(
      () => createRpcServer({ routes: (router) => router.rpc(Health.method.check, check, { readMaxBytes: 10 }), interceptors: [] }),
      (e: unknown) => e instanceof Error && e.message.includes("grpc.health.v1.Health/Check") && e.message.includes("readMaxBytes"),
    );
  });

  it("accepts empty options, and without the fast path connect-node applies the options", async () => {
    const empty = createRpcServer({ routes: (router) => router.service(Health, { check }, {}), interceptors: [] });
    await empty.close(0);
    const server = createRpcServer({
      routes: (router) => router.service(Health, { check }, { interceptors: [perService] }),
      interceptors: [],
      unaryFastPath: false,
    });
    try {
      const port = await server.listen(0, "127.0.0.1");
      let header: string | null | undefined;
      await client(`http://127.0.0.1:${port}`).check({}, { onHeader: (h) => (header = h.get("x-per-service")) });
      assert.equal(header, "yes");
    } finally {
      await server.close(100);
    }
  });
});
