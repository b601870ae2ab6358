/**
 * The internal gRPC client, against real servers on real sockets: balanced over replicas, bounded by deadlines
 * (its own and its caller's), retrying UNAVAILABLE only where a retry is safe, passing the request id and the
 * caller's cancellation on; and `<NAME>_SERVICE_ADDR` values checked at start-up.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel as IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createContextValues, createHandlerContext, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { ConfigError } from "../src/config.js";
import { createMesh } from "../src/mesh.js";
import { kRequestId } from "../src/context.js";
import { createRpcServer, type RpcServer } from "../src/server.js";
import { createServiceClient, readServiceTarget } from "../src/service-client.js";
import { createServiceTokenSource } from "../src/service-token.js";
import { bearerInterceptor, transportFor } from "../../../test/clients.js";
import { startTestPlatform } from "../../../test/harness.js";

/** A server whose Health.Check answers `answer(n)` on its n-th call, recording what each call carried. */
async function healthServer(answer: (n: number, signal: AbortSignal) => Promise<Status>) {
  const seen: { requestId: string | null; authorization: string | null }[] = [];
  const record: Interceptor = (next) => (req) => {
    seen.push({ requestId: req.header.get("x-request-id"), authorization: req.header.get("authorization") });
    return next(req);
  };
  const routes = (router: ConnectRouter) =>
    router.service(Health, {
      check: async (_req, ctx) => create(HealthCheckResponseSchema, { status: await answer(seen.length, ctx.signal) }),
      // eslint-disable-next-line require-yield
      watch: async function* () {
        throw new ConnectError("not here", Code.Unimplemented);
      },
    });
  const server: RpcServer = createRpcServer({ routes, interceptors: [record] });
  const port = await server.listen(0, "127.0.0.1");
  return { server, port, seen };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code]);
const target = (...ports: number[]) => readServiceTarget({ X_SERVICE_ADDR: ports.map((p) => `127.0.0.1:${p}`).join(",") }, "X_SERVICE_ADDR")!;

describe("internal gRPC client", () => {
  const servers: RpcServer[] = [];
  after(async () => {
    for (const s of servers) await s.close(100);
  });
  const start = async (answer: (n: number, signal: AbortSignal) => Promise<Status>) => {
    const s = await healthServer(answer);
    servers.push(s.server);
    return s;
  };

  let a: Awaited<ReturnType<typeof healthServer>>;
  let b: Awaited<ReturnType<typeof healthServer>>;
  before(async () => {
    a = await start(async () => Status.SERVING);
    b = await start(async () => Status.NOT_SERVING);
  });

  it("balances calls round-robin over every replica of the list", async () => {
    const { client, close } = createServiceClient(Health, { target: target(a.port, b.port), deadlineMs: 2000 });
    try {
      const statuses = [];
      for (let i = 0; i < 10; i++) statuses.push((await client.check({})).status);
      assert.ok(statuses.includes(Status.SERVING) && statuses.includes(Status.NOT_SERVING), `one replica only: ${statuses.join(",")}`);
    } finally {
      close();
    }
  });

  it("passes the caller's request id and a bearer token on", async () => {
    const values = createContextValues();
    values.set(kRequestId, "caller-request-7");
    const ctx = createHandlerContext({ service: Health, method: Health.method.check, protocolName: "grpc", requestMethod: "POST", url: "", contextValues: values });
    const { client, close } = createServiceClient(Health, { target: target(a.port), deadlineMs: 2000, token: async () => "service-token" });
    try {
      await client.check({}, { ctx });
      assert.deepEqual(a.seen.at(-1), { requestId: "caller-request-7", authorization: "Bearer service-token" });
    } finally {
      close();
    }
  });

  it("bounds every call by its deadline, and by the caller's remaining one when shorter", async () => {
    const slow = await start(async (_n, signal) => (await sleep(3000, signal), Status.SERVING));
    const { client, close } = createServiceClient(Health, { target: target(slow.port), deadlineMs: 300 });
    try {
      let started = Date.now();
      assert.equal(await codeOf(client.check({})), "DeadlineExceeded");
      assert.ok(Date.now() - started < 1500, `own deadline took ${Date.now() - started} ms`);
      const ctx = createHandlerContext({ service: Health, method: Health.method.check, protocolName: "grpc", requestMethod: "POST", url: "", timeoutMs: 100 });
      started = Date.now();
      const long = createServiceClient(Health, { target: target(slow.port), deadlineMs: 10_000 });
      assert.equal(await codeOf(long.client.check({}, { ctx })), "DeadlineExceeded");
      assert.ok(Date.now() - started < 1000, `caller's deadline took ${Date.now() - started} ms`);
      long.close();
    } finally {
      close();
    }
  });

  it("retries UNAVAILABLE for the methods an `idempotent` option names, and only those", async () => {
    const flaky = () => start(async (n) => {
      if (n % 2 === 1) throw new ConnectError("replica restarting", Code.Unavailable);
      return Status.SERVING;
    });
    const safe = await flaky();
    const retrying = createServiceClient(Health, { target: target(safe.port), deadlineMs: 2000, idempotent: () => true });
    assert.equal((await retrying.client.check({})).status, Status.SERVING);
    assert.equal(safe.seen.length, 2, "the failed attempt was retried once");
    retrying.close();

    const unsafe = await flaky();
    const once = createServiceClient(Health, { target: target(unsafe.port), deadlineMs: 2000, idempotent: () => false });
    assert.equal(await codeOf(once.client.check({})), "Unavailable");
    assert.equal(unsafe.seen.length, 1, "a call that is not idempotent was sent again");
    once.close();
  });

  it("by default retries UNAVAILABLE for the methods whose proto sets an idempotency level, and only those", async () => {
    // The rule read from the descriptors, not an override: PurgeUser is IDEMPOTENT, GetJwks NO_SIDE_EFFECTS,
    // Login has no level (a retried login could count a failure twice).
    assert.equal(UserDataService.method.purgeUser.idempotency, IdempotencyLevel.IDEMPOTENT);
    assert.equal(AuthService.method.getJwks.idempotency, IdempotencyLevel.NO_SIDE_EFFECTS);
    assert.equal(AuthService.method.login.idempotency, IdempotencyLevel.IDEMPOTENCY_UNKNOWN);
    // Every method's odd-numbered attempts fail as a replica that is restarting would.
    const attempts = new Map<string, number>();
    const flaky: Interceptor = (next) => (req) => {
      const n = (attempts.get(req.method.name) ?? 0) + 1;
      attempts.set(req.method.name, n);
      if (n % 2 === 1) throw new ConnectError("replica restarting", Code.Unavailable);
      return next(req);
    };
    const server = createRpcServer({
      interceptors: [flaky],
      routes: (router) => {
        router.service(UserDataService, { purgeUser: () => ({ rowsDeleted: 3n }) });
        router.service(AuthService, { getJwks: () => ({ keys: [{ kid: "k1" }] }), login: () => ({ accessToken: "a" }) });
      },
    });
    servers.push(server);
    const port = await server.listen(0, "127.0.0.1");
    const userData = createServiceClient(UserDataService, { target: target(port), deadlineMs: 2000 });
    const auth = createServiceClient(AuthService, { target: target(port), deadlineMs: 2000 });
    try {
      assert.equal((await userData.client.purgeUser({ userId: randomUUID() })).rowsDeleted, 3n);
      assert.equal((await auth.client.getJwks({})).keys[0]?.kid, "k1");
      assert.equal(await codeOf(auth.client.login({ login: "someone", password: "a password" })), "Unavailable");
      assert.deepEqual(Object.fromEntries(attempts), { PurgeUser: 2, GetJwks: 2, Login: 1 });
    } finally {
      userData.close();
      auth.close();
    }
  });

  it("cancels the call when its caller goes away", async () => {
    let serverSawCancel = false;
    const slow = await start(async (_n, signal) => {
      await sleep(3000, signal);
      serverSawCancel = signal.aborted;
      return Status.SERVING;
    });
    const { client, close } = createServiceClient(Health, { target: target(slow.port), deadlineMs: 5000 });
    try {
      const abort = new AbortController();
      const call = codeOf(client.check({}, { signal: abort.signal }));
      await sleep(200);
      abort.abort();
      assert.equal(await call, "Canceled");
      await sleep(200);
      assert.ok(serverSawCancel, "the server kept working for a caller that left");
    } finally {
      close();
    }
  });

  it("reads <NAME>_SERVICE_ADDR, refusing anything it cannot balance and naming the variable", () => {
    assert.deepEqual(readServiceTarget({ CART_SERVICE_ADDR: "dns:///cart:8080" }, "CART_SERVICE_ADDR"), { kind: "dns", uri: "dns:///cart:8080" });
    assert.deepEqual(readServiceTarget({ CART_SERVICE_ADDR: "127.0.0.1:8081, localhost:8082" }, "CART_SERVICE_ADDR"), { kind: "list", uri: "ipv4:127.0.0.1:8081,127.0.0.1:8082" });
    assert.deepEqual(readServiceTarget({ CART_SERVICE_ADDR: "[::1]:8081" }, "CART_SERVICE_ADDR"), { kind: "list", uri: "ipv6:[::1]:8081" });
    assert.equal(readServiceTarget({}, "CART_SERVICE_ADDR"), undefined);
    for (const bad of ["cart", "cart:8080", "dns:///cart", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:8081,[::1]:8082", "http://cart:8080"]) {
      assert.throws(() => readServiceTarget({ CART_SERVICE_ADDR: bad }, "CART_SERVICE_ADDR"), (e: unknown) => e instanceof ConfigError && /CART_SERVICE_ADDR/.test(e.message), bad);
    }
  });
});

describe("internal calls carry a SERVICE token from identity", () => {
  it("a service calls another with a token it got from IssueServiceToken, renewed by the token source", async () => {
    const admin = { username: "mesh_admin", email: "mesh-admin@grocery.example", password: "turnips in the larder" };
    const tp = await startTestPlatform({ backend: "pglite", env: { ADMIN_USERNAME: admin.username, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password } });
    const identity = readServiceTarget({ IDENTITY_SERVICE_ADDR: `127.0.0.1:${tp.port}` }, "IDENTITY_SERVICE_ADDR")!;
    const auth = createServiceClient(AuthService, { target: identity, deadlineMs: 5000 });
    try {
      const adminToken = (await auth.client.login({ login: admin.username, password: admin.password })).accessToken;
      const users = createClient(UserService, transportFor(tp.url, "grpc", [bearerInterceptor(adminToken)]));
      const created = await users.createServiceAccount({ name: "delivery-planner" });
      const clientId = created.serviceAccount!.clientId;
      const source = createServiceTokenSource({
        clock: Date.now,
        issue: async () => auth.client.issueServiceToken({ clientId, clientSecret: created.clientSecret }),
      });
      const asService = createServiceClient(UserService, { target: identity, deadlineMs: 5000, token: () => source.token() });
      const me = await users.getMe({});
      // GetUser is open to ADMIN and SERVICE: the call succeeds only with a valid SERVICE token.
      assert.equal((await asService.client.getUser({ userId: me.user!.id })).user?.username, admin.username);
      const withoutToken = createServiceClient(UserService, { target: identity, deadlineMs: 5000 });
      assert.equal(await codeOf(withoutToken.client.getUser({ userId: me.user!.id })), "Unauthenticated");
      asService.close();
      withoutToken.close();
    } finally {
      auth.close();
      await tp.close();
    }
  });
});

describe("the platform mesh (mesh.ts)", () => {
  it("a process without identity gets its SERVICE tokens with SERVICE_CLIENT_ID/SECRET from IDENTITY_SERVICE_ADDR and calls the target it names", async () => {
    const admin = { username: "mesh_owner", email: "mesh-owner@grocery.example", password: "marrows in the meadow" };
    const tp = await startTestPlatform({ backend: "pglite", env: { ADMIN_USERNAME: admin.username, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password } });
    try {
      const adminToken = (await createClient(AuthService, transportFor(tp.url, "grpc")).login({ login: admin.username, password: admin.password })).accessToken;
      const users = createClient(UserService, transportFor(tp.url, "grpc", [bearerInterceptor(adminToken)]));
      const created = await users.createServiceAccount({ name: "loyalty" });
      const addr = `127.0.0.1:${tp.port}`;
      const env = { IDENTITY_SERVICE_ADDR: addr, CART_SERVICE_ADDR: addr, SERVICE_CLIENT_ID: created.serviceAccount!.clientId, SERVICE_CLIENT_SECRET: created.clientSecret };
      const mesh = createMesh({ env, clock: Date.now, localServices: ["loyalty"] });
      const userData = mesh.client(UserDataService, "cart");
      mesh.useTokens(undefined);
      // PurgeUser answers only SERVICE tokens: OK (0 rows for an unknown user) proves the token was issued and sent.
      assert.equal((await userData.purgeUser({ userId: randomUUID() })).rowsDeleted, 0n);
      mesh.close();
    } finally {
      await tp.close();
    }
  });

  it("stops start-up naming the variable: a missing address, a bad one, missing credentials", () => {
    const build = (env: Record<string, string>, name: string) => {
      const mesh = createMesh({ env, clock: Date.now, localServices: ["identity"] });
      mesh.client(UserDataService, name);
      mesh.useTokens(undefined);
    };
    assert.throws(() => build({}, "cart"), (e: unknown) => e instanceof ConfigError && /CART_SERVICE_ADDR is required/.test(e.message));
    assert.throws(() => build({ CART_SERVICE_ADDR: "cart:8080" }, "cart"), (e: unknown) => e instanceof ConfigError && /CART_SERVICE_ADDR must be dns:\/\/\//.test(e.message));
    assert.throws(
      () => build({ CART_SERVICE_ADDR: "dns:///cart:8080" }, "cart"),
      (e: unknown) => e instanceof ConfigError && /SERVICE_CLIENT_ID and SERVICE_CLIENT_SECRET are required/.test(e.message),
    );
    // In the process that runs it, an unset address means this process, and identity's own signer needs no secret.
    const local = createMesh({ env: {}, clock: Date.now, localServices: ["identity", "cart"] });
    local.client(UserDataService, "cart");
    local.useTokens(async () => "signed-here");
    local.close();
  });
});
