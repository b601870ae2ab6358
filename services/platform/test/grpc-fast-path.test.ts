import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { grpcJsClient } from "../../../test/clients.js";
import { kClientInfo } from "../src/context.js";
import { createRpcServer, type RpcServer } from "../src/server.js";

/**
 * The lean unary path must behave exactly like connect-node: the same scenarios run against a server with the fast
 * path and one without, over gRPC and over binary gRPC-web on HTTP/1.1 and HTTP/2, and every observable outcome
 * must match.
 */
const aborted: string[] = [];
const routes = (router: ConnectRouter) =>
  router.service(Health, {
    async check(req, ctx: HandlerContext) {
      const [command, arg] = req.service.split(":");
      switch (command) {
        case "echo":
          ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-probe") ?? "");
          ctx.responseTrailer.set("x-trail", "t1");
          return { status: Status.SERVING };
        case "fail":
          throw new ConnectError("no such shop: é/ü", Code.FailedPrecondition, { "x-why": "closed" });
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
  for (const [name, grpcFastPath] of [["fast", true], ["connect-node", false]] as const) {
    const server = createRpcServer({ routes, interceptors: [tag], maxMessageBytes: 1024, grpcFastPath });
    const port = await server.listen(0, "127.0.0.1");
    servers[name] = { server, url: `http://127.0.0.1:${port}` };
  }
});
after(async () => {
  for (const s of Object.values(servers)) await s.server.close(100);
});

type Wire = "gRPC" | "gRPC-web over HTTP/1.1" | "gRPC-web over HTTP/2";
const client = (url: string, compress = false, wire: Wire = "gRPC") => {
  const options = { baseUrl: url, ...(compress ? { sendCompression: compressionGzip, compressMinBytes: 0 } : {}) };
  return createClient(
    Health,
    wire === "gRPC"
      ? createGrpcTransport({ ...options, idleConnectionTimeoutMs: 500 })
      : wire === "gRPC-web over HTTP/2"
        ? createGrpcWebTransport({ ...options, httpVersion: "2", idleConnectionTimeoutMs: 500 })
        : createGrpcWebTransport({ ...options, httpVersion: "1.1" }),
  );
};

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

describe("unary gRPC fast path matches connect-node", () => {
  const scenarios: [string, (url: string, wire: Wire) => ReturnType<typeof outcome>][] = [
    ["success with headers and trailers", (url, w) => outcome((onHeader, onTrailer) => client(url, false, w).check({ service: "echo" }, { headers: { "x-probe": "p1" }, onHeader, onTrailer }))],
    ["plain success", (url, w) => outcome(() => client(url, false, w).check({ service: "other" }))],
    ["error with code, unicode message and metadata", (url, w) => outcome(() => client(url, false, w).check({ service: "fail" }))],
    ["unexpected error", (url, w) => outcome(() => client(url, false, w).check({ service: "boom" }))],
    ["deadline", (url, w) => outcome(() => client(url, false, w).check({ service: "slow:deadline" }, { timeoutMs: 50 }))],
    ["message over the limit", (url, w) => outcome(() => client(url, false, w).check({ service: "x".repeat(2000) }))],
    ["compressed request (served by connect-node either way)", (url, w) => outcome(() => client(url, true, w).check({ service: "echo" }, { headers: { "x-probe": "gz" } }))],
  ];
  for (const wire of ["gRPC", "gRPC-web over HTTP/1.1", "gRPC-web over HTTP/2"] as const) {
    for (const [name, run] of scenarios) {
      it(`${wire}: ${name}`, async () => {
        const fast = await run(servers.fast.url, wire);
        const reference = await run(servers["connect-node"].url, wire);
        assert.deepEqual(fast, reference);
      });
    }
  }

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

  it("aborts the handler's signal on deadline and on client cancel", async () => {
    aborted.length = 0;
    await outcome(() => client(servers.fast.url).check({ service: "slow:deadline" }, { timeoutMs: 50 }));
    const controller = new AbortController();
    const call = outcome(() => client(servers.fast.url).check({ service: "slow:cancel" }, { signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    assert.equal((await call).code, Code.Canceled);
    for (let i = 0; i < 50 && aborted.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(aborted.sort(), ["cancel", "deadline"]);
  });

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

describe("unary gRPC fast path and per-registration handler options", () => {
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
      grpcFastPath: false,
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
