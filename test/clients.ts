/** Real clients for tests: connect-node in its three protocols and @grpc/grpc-js. */
import { fromBinary, toBinary, type DescMethodUnary, type DescService, type MessageInitShape, type DescMessage, type MessageShape, create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";

export type Protocol = "grpc" | "grpc-web" | "connect";

/** A connect-node transport; gRPC over HTTP/2, gRPC-web and Connect over HTTP/1.1 (as browsers and curl do). */
export function transportFor(url: string, protocol: Protocol, interceptors: Interceptor[] = []): Transport {
  switch (protocol) {
    case "grpc":
      // A short idle timeout so an idle HTTP/2 connection does not keep the test process alive.
      return createGrpcTransport({ baseUrl: url, interceptors, idleConnectionTimeoutMs: 500 });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors });
    case "connect":
      return createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors });
  }
}

export function clientFor<S extends DescService>(service: S, url: string, protocol: Protocol = "grpc", interceptors: Interceptor[] = []): Client<S> {
  return createClient(service, transportFor(url, protocol, interceptors));
}

/** Call options that send `token` as the bearer token of one call. */
export function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

/** An interceptor that sends `token` as the bearer token of every call, for a client that acts as one user. */
export function bearerInterceptor(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** The error a call fails with; fails the test if the call succeeded. */
export async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** The fields named by the one google.rpc.BadRequest of an INVALID_ARGUMENT error, each once, in the order given. */
export function badRequestFields(err: ConnectError): string[] {
  assert.equal(err.code, Code.InvalidArgument, err.message);
  const found = err.findDetails(BadRequestSchema);
  assert.equal(found.length, 1, "one google.rpc.BadRequest in the details");
  for (const v of found[0]!.fieldViolations) assert.notEqual(v.description, "", `${v.field} says what is wrong`);
  return [...new Set(found[0]!.fieldViolations.map((v) => v.field))];
}

/** The Connect code of a rejected call; fails the test if the call succeeded. */
export async function codeOf(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e).code;
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** A plain @grpc/grpc-js client calling unary methods by descriptor, as another team's service would. */
export function grpcJsClient(url: string) {
  const address = new URL(url).host;
  const client = new grpc.Client(`dns:///${address}`, grpc.credentials.createInsecure(), { "grpc.lb_policy_name": "round_robin" });
  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      input: MessageInitShape<I>,
      metadata: Record<string, string> = {},
    ): Promise<MessageShape<O>> {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${method.parent.typeName}/${method.name}`,
          (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
          (b: Buffer) => fromBinary(method.output, b),
          create(method.input, input),
          md,
          // The grpc-js error stays the cause: its metadata holds the trailers (grpc-status-details-bin) as received.
          (err, res) => (err ? reject(new ConnectError(err.details, err.code as number as Code, undefined, undefined, err)) : resolve(res as MessageShape<O>)),
        );
      });
    },
    close: () => client.close(),
  };
}
