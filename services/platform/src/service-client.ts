import { isIP } from "node:net";
import { create, fromBinary, toBinary, type DescMethodUnary, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { ConfigError, envOptional, type Env } from "./config.js";
import { kRequestId } from "./context.js";

/** Where a service's replicas are: a name that resolves to all of them, or a fixed list. */
export type ServiceTarget = { kind: "dns"; uri: string } | { kind: "list"; uri: string };

/**
 * Reads `<NAME>_SERVICE_ADDR`: `dns:///host:port` (compose and Kubernetes headless Services: every replica behind
 * one name, re-resolved by grpc-js) or a comma-separated `host:port` list of IP addresses or `localhost`. Throws a
 * ConfigError naming the variable for anything else, so a typo stops the process at start-up.
 */
export function readServiceTarget(env: Env, name: string): ServiceTarget | undefined {
  const raw = envOptional(env, name);
  if (raw === undefined) return undefined;
  const bad = (why: string) => new ConfigError(`${name} must be dns:///host:port or a host:port,host:port list (${why}), got ${JSON.stringify(raw)}`);
  if (raw.startsWith("dns:")) {
    const m = /^dns:\/\/\/([A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad("a host name and a port");
    return { kind: "dns", uri: raw };
  }
  const v4: string[] = [];
  const v6: string[] = [];
  for (const entry of raw.split(",").map((s) => s.trim())) {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(entry);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) throw bad(`${JSON.stringify(entry)} is not host:port`);
    const host = m[1]!.replace(/^\[|\]$/g, "");
    // grpc-js balances a fixed list only over literal addresses; a name with several replicas belongs in dns:///.
    if (host === "localhost" || isIP(host) === 4) v4.push(`${host === "localhost" ? "127.0.0.1" : host}:${port}`);
    else if (isIP(host) === 6) v6.push(`[${host}]:${port}`);
    else throw bad(`${JSON.stringify(host)} is a name: use dns:///${host}:${port}`);
  }
  if (v4.length > 0 && v6.length > 0) throw bad("IPv4 and IPv6 addresses cannot be mixed");
  return { kind: "list", uri: v4.length > 0 ? `ipv4:${v4.join(",")}` : `ipv6:${v6.join(",")}` };
}

export interface ServiceClientOptions {
  target: ServiceTarget;
  /** Deadline of a call when its caller has none, or a longer one. */
  deadlineMs: number;
  /** Token for the `authorization` header of every call (a SERVICE access token). */
  token?: () => Promise<string>;
  /** Which methods may be retried on UNAVAILABLE; by default those the proto marks idempotent or side-effect free. */
  idempotent?: (method: DescMethodUnary) => boolean;
  keepaliveMs?: number;
}

export interface CallOptions {
  /** The handler context of the call being served: its deadline, cancellation and request id carry over. */
  ctx?: HandlerContext;
  /** Shorter deadline for this call. */
  timeoutMs?: number;
  /** The request id to send when no `ctx` carries one: that of the call whose work this is (an event it wrote). */
  requestId?: string;
  signal?: AbortSignal;
}

/** A typed client of the unary methods of `S`, as a Connect client would be. */
export type ServiceClient<S extends DescService> = {
  [K in keyof S["method"] as S["method"][K] extends DescMethodUnary ? K : never]: S["method"][K] extends DescMethodUnary<infer I, infer O>
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : never;
};

/**
 * A client of `service` over plain gRPC with @grpc/grpc-js and protobuf-es serialisation: round_robin over the
 * target's replicas, keepalive, a deadline on every call (never longer than the caller's remaining one), retries
 * on UNAVAILABLE for idempotent methods only (grpc-js service-config retry policy), the caller's request id and
 * cancellation passed on. Errors come back as ConnectErrors with the server's code.
 */
export function createServiceClient<S extends DescService>(service: S, options: ServiceClientOptions): { client: ServiceClient<S>; close(): void } {
  const unary = service.methods.filter((m): m is DescMethodUnary => m.methodKind === "unary");
  const idempotent = options.idempotent ?? ((m: DescMethodUnary) => m.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN);
  const retried = unary.filter(idempotent);
  const serviceConfig = {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig:
      retried.length === 0
        ? []
        : [
            {
              name: retried.map((m) => ({ service: service.typeName, method: m.name })),
              retryPolicy: { maxAttempts: 3, initialBackoff: "0.05s", maxBackoff: "0.5s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] },
            },
          ],
  };
  const channel = new grpc.Client(options.target.uri, grpc.credentials.createInsecure(), {
    "grpc.service_config": JSON.stringify(serviceConfig),
    "grpc.keepalive_time_ms": options.keepaliveMs ?? 30_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.enable_retries": 1,
  });

  const client: Record<string, unknown> = {};
  for (const method of unary) {
    const path = `/${service.typeName}/${method.name}`;
    const serialize = (message: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, message));
    const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);
    client[method.localName] = async (request: MessageInitShape<typeof method.input>, call: CallOptions = {}) => {
      const callerLeft = call.ctx ? call.ctx.timeoutMs() : undefined;
      const timeoutMs = Math.min(options.deadlineMs, call.timeoutMs ?? Infinity, callerLeft ?? Infinity);
      const metadata = new grpc.Metadata();
      const requestId = call.ctx?.values.get(kRequestId) || call.requestId;
      if (requestId) metadata.set("x-request-id", requestId);
      if (options.token) metadata.set("authorization", `Bearer ${await options.token()}`);
      const signals = [call.signal, call.ctx?.signal].filter((s): s is AbortSignal => s !== undefined);
      return new Promise((resolve, reject) => {
        if (timeoutMs <= 0) return reject(new ConnectError("the caller's deadline has passed", Code.DeadlineExceeded));
        const pending = channel.makeUnaryRequest(path, serialize, deserialize, create(method.input, request), metadata, { deadline: Date.now() + timeoutMs }, (err, value) => {
          for (const s of signals) s.removeEventListener("abort", onAbort);
          if (err) reject(toConnectError(err));
          else resolve(value);
        });
        // The caller's own reason wins (its deadline passing is DEADLINE_EXCEEDED, not CANCELED); the call to the
        // other service is cancelled so it stops working too.
        function onAbort(this: AbortSignal) {
          reject(abortReason(this.reason));
          pending.cancel();
        }
        for (const s of signals) {
          if (s.aborted) onAbort.call(s);
          else s.addEventListener("abort", onAbort, { once: true });
        }
      });
    };
  }
  return { client: client as ServiceClient<S>, close: () => channel.close() };
}

function abortReason(reason: unknown): ConnectError {
  if (reason instanceof ConnectError) return reason;
  return new ConnectError("the caller cancelled the call", Code.Canceled, undefined, undefined, reason);
}

/** grpc-js and Connect share the gRPC status numbers; the details stay in the metadata. */
function toConnectError(err: grpc.ServiceError): ConnectError {
  const metadata = new Headers();
  for (const [key, value] of Object.entries(err.metadata?.getMap() ?? {})) if (typeof value === "string") metadata.set(key, value);
  const code = err.code >= 1 && err.code <= 16 ? (err.code as number as Code) : Code.Unknown;
  return new ConnectError(err.details || err.message, code, metadata, undefined, err);
}
