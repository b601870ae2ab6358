/**
 * The baselines the platform is compared with, one per process, each answering grpc.health.v1.Health/Check with
 * a fixed SERVING message:
 *
 *   grpc-js        @grpc/grpc-js server, pass-through (de)serialisation of a prebuilt message
 *   raw-http2      node:http2 handler writing a canned gRPC response (the floor)
 *   connect-node   createConnectRouter's routes through connectNodeAdapter on http2.createServer, no platform
 *
 *   node --import tsx bench/baseline-server.ts <kind>     prints {"port": n} once listening
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { grpcFrame } from "./lib/wire.js";

const kinds = ["grpc-js", "raw-http2", "connect-node"] as const;
type Kind = (typeof kinds)[number];

const answer = Buffer.from(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING })));

async function listenHttp2(server: http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

async function serve(kind: Kind): Promise<number> {
  switch (kind) {
    case "grpc-js": {
      const server = new grpc.Server();
      const passThrough = (b: Buffer) => b;
      server.addService(
        {
          check: {
            path: "/grpc.health.v1.Health/Check",
            requestStream: false,
            responseStream: false,
            requestSerialize: passThrough,
            requestDeserialize: passThrough,
            responseSerialize: passThrough,
            responseDeserialize: passThrough,
          },
        },
        { check: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, answer) },
      );
      return new Promise((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
    }
    case "raw-http2": {
      const frame = grpcFrame(answer);
      const server = http2.createServer();
      server.on("stream", (stream) => {
        stream.on("data", () => {});
        stream.on("end", () => {
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
          stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(frame);
        });
      });
      return listenHttp2(server);
    }
    case "connect-node": {
      const routes = (router: ConnectRouter) => router.service(Health, { check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) });
      return listenHttp2(http2.createServer(connectNodeAdapter({ routes })));
    }
  }
}

const kind = process.argv[2] as Kind;
if (!kinds.includes(kind)) {
  process.stderr.write(`usage: baseline-server.ts ${kinds.join("|")}\n`);
  process.exit(64);
}
process.stdout.write(JSON.stringify({ port: await serve(kind) }) + "\n");
process.once("SIGTERM", () => process.exit(0));
