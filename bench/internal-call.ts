/**
 * What one internal call costs: `npx tsx bench/internal-call.ts [calls]`. Starts the all-in-one platform on a
 * throwaway PGlite directory and calls UserDataService/PurgeUser (an unknown user: the call reaches cart's and
 * address's stores and deletes nothing) through the mesh client services use (services/platform/src/mesh.ts:
 * grpc-js, protobuf-es, a SERVICE token, round robin, deadline), one call at a time, and the same through a bare
 * grpc-js client of grpc.health.v1 Check on the same port, for the transport alone, and PurgeUser from a
 * connect-node client with a token of its own, for the work of the call itself. Prints p50/p95/p99 of each.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { allServices } from "../services/all-services.js";
import { createLogger } from "@local-e-grocery/platform/logger.js";
import { createMesh } from "@local-e-grocery/platform/mesh.js";
import { buildPlatform, readPlatformConfig } from "@local-e-grocery/platform/platform.js";
import { createServiceClient, readServiceTarget } from "@local-e-grocery/platform/service-client.js";

const calls = Number(process.argv[2] ?? 2000);
const dataDir = await mkdtemp(join(tmpdir(), "grocery-internal-call-"));
const admin = { username: "bench_admin", email: "bench-admin@grocery.example", password: "kale for the kitchen" };
const env = { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", DATA_DIR: dataDir, ADMIN_USERNAME: admin.username, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password };
const platform = await buildPlatform(readPlatformConfig(env), allServices, { env, logger: createLogger({ level: "warn" }) });

try {
  const transport = createGrpcTransport({ baseUrl: platform.url });
  const adminToken = (await createClient(AuthService, transport).login({ login: admin.username, password: admin.password })).accessToken;
  const users = createClient(UserService, createGrpcTransport({ baseUrl: platform.url, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${adminToken}`), next(req))] }));
  const account = await users.createServiceAccount({ name: "bench" });
  const addr = `127.0.0.1:${platform.port}`;
  const mesh = createMesh({
    env: { IDENTITY_SERVICE_ADDR: addr, CART_SERVICE_ADDR: addr, SERVICE_CLIENT_ID: account.serviceAccount?.clientId ?? "", SERVICE_CLIENT_SECRET: account.clientSecret },
    clock: Date.now,
    localServices: [],
  });
  const userData = mesh.client(UserDataService, "cart");
  mesh.useTokens(undefined);
  const health = createServiceClient(Health, { target: readServiceTarget({ ADDR: addr }, "ADDR")!, deadlineMs: 5000 });

  const token = (await createClient(AuthService, transport).issueServiceToken({ clientId: account.serviceAccount?.clientId ?? "", clientSecret: account.clientSecret })).accessToken;
  const direct = createClient(UserDataService, createGrpcTransport({ baseUrl: platform.url, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] }));
  const scenarios: [string, () => Promise<unknown>][] = [
    ["Health/Check, bare grpc-js client", () => health.client.check({})],
    ["PurgeUser through the mesh client", () => userData.purgeUser({ userId: randomUUID() })],
    // The same call from an outside client holding the same kind of token: the difference is the mesh client's.
    ["PurgeUser, connect-node gRPC client", () => direct.purgeUser({ userId: randomUUID() })],
  ];
  // Interleaved, one call of each in turn: every purge leaves a tombstone, so a later block would pay more.
  const ms = scenarios.map(() => [] as number[]);
  for (let i = 0; i < 200 + calls; i++) {
    for (const [k, [, call]] of scenarios.entries()) {
      const t = performance.now();
      await call();
      if (i >= 200) ms[k]!.push(performance.now() - t);
    }
  }
  for (const [k, [name]] of scenarios.entries()) {
    const sorted = ms[k]!.sort((x, y) => x - y);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(3);
    console.log(`${name.padEnd(36)} p50 ${q(0.5)} ms  p95 ${q(0.95)} ms  p99 ${q(0.99)} ms  (${calls} calls, one at a time)`);
  }
  health.close();
  mesh.close();
} finally {
  await platform.close();
  await rm(dataDir, { recursive: true, force: true });
}
