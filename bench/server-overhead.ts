/**
 * What the server wrapper costs: the same trivial unary RPC (Health/Check) served four ways, each in its own
 * child process, driven by one client process over one HTTP/2 connection with BENCH_STREAMS concurrent calls.
 *
 *   raw-http2      node:http2 handler that writes a canned gRPC response (the floor)
 *   connect-node   connectNodeAdapter on http2.createServer, no interceptors
 *   rpc-server     our createRpcServer (one port for h1+h2, CORS, draining) with its gRPC fast path turned off
 *   rpc-server-fast  the same with the unary gRPC fast path (the default)
 *   platform       createRpcServer as the platform runs it: fast path plus the interceptors (logging, access, errors)
 *
 *   npx tsx bench/server-overhead.ts
 */
import { fork } from "node:child_process";
import http2 from "node:http2";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { createAccessInterceptor } from "@local-e-grocery/platform/auth/access-interceptor.js";
import { createErrorInterceptor, createLoggingInterceptor } from "@local-e-grocery/platform/interceptors.js";
import { createLogger } from "@local-e-grocery/platform/logger.js";
import { createRpcServer } from "@local-e-grocery/platform/server.js";

const variants = ["raw-http2", "connect-node", "rpc-server", "rpc-server-fast", "platform"] as const;
type Variant = (typeof variants)[number];
const seconds = Number(process.env["BENCH_SECONDS"] ?? 4);
const streams = Number(process.env["BENCH_STREAMS"] ?? 64);

const routes = (router: ConnectRouter) =>
  router.service(Health, { check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) });

async function serve(variant: Variant): Promise<number> {
  if (variant === "raw-http2") {
    const body = toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING }));
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const server = http2.createServer();
    server.on("stream", (stream) => {
      stream.on("data", () => {});
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(frame);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as AddressInfo).port;
  }
  if (variant === "connect-node") {
    const server = http2.createServer(connectNodeAdapter({ routes }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as AddressInfo).port;
  }
  const logger = createLogger({ level: "silent" });
  const interceptors =
    variant === "platform"
      ? [
          createLoggingInterceptor(logger),
          createAccessInterceptor({ verify: () => Promise.reject(new ConnectError("no", Code.Unauthenticated)), publicServices: [Health.typeName] }),
          createErrorInterceptor(logger),
        ]
      : [];
  return createRpcServer({ routes, interceptors, unaryFastPath: variant !== "rpc-server" }).listen(0, "127.0.0.1");
}

/**
 * The client is a bare node:http2 session writing a prebuilt request frame, so that it costs far less than the
 * servers it measures (a connect-node client would be the bottleneck).
 */
async function drive(port: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const request = Buffer.from([0, 0, 0, 0, 0]);
  const call = () =>
    new Promise<boolean>((resolve) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Check",
        "content-type": "application/grpc",
        te: "trailers",
      });
      let status: string | undefined;
      stream.on("trailers", (t) => (status = String(t["grpc-status"])));
      stream.on("response", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      });
      stream.on("data", () => {});
      stream.on("close", () => resolve(status === "0"));
      stream.on("error", () => resolve(false));
      stream.end(request);
    });
  await call();
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        if (await call()) latencies.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  session.close();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length / 2)] ?? NaN,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    errors,
  };
}

const role = process.argv[2];
if (role === "serve") {
  const port = await serve(process.argv[3] as Variant);
  process.send?.({ port });
} else {
  console.log(`node ${process.version}; Health/Check, ${streams} concurrent calls on one HTTP/2 connection, ${seconds} s per variant`);
  for (const variant of variants) {
    const child = fork(fileURLToPath(import.meta.url), ["serve", variant], { execArgv: ["--import", "tsx"] });
    const port = await new Promise<number>((r) => child.once("message", (m: { port: number }) => r(m.port)));
    const { rps, p50, p99, errors } = await drive(port);
    console.log(`${variant.padEnd(14)} ${rps.toFixed(0).padStart(7)} req/s   p50 ${p50.toFixed(2)} ms   p99 ${p99.toFixed(2)} ms   errors ${errors}`);
    child.kill();
  }
  process.exit(0);
}
