/**
 * Database faults: a TCP proxy under the test's control sits between a service process and PostgreSQL (the shared
 * server keeps running). For 5 s under load it resets every connection, then, in a second round, silently drops
 * all traffic. Properties: calls answer (OK or UNAVAILABLE) within a bound instead of hanging, health reports
 * NOT_SERVING within ~2 s, the service recovers within 2 s of the database coming back without a restart, and
 * no acknowledged write is lost.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, afterEach, before, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { bearerInterceptor, transportFor } from "../clients.js";
import { startBehindFaultProxy, type FaultMode, type FaultProxy, type ProxiedService } from "../fault-proxy.js";
import { registerAndLogin } from "../harness.js";
import type { ServiceProcess } from "../service-process.js";
import { proofReport } from "./report.js";

const report = proofReport("database faults");
const outageMs = 5000;
/** A call during the outage may wait for one probe (1 s) and its ping timeout (1 s) before it is answered. */
const answerBoundMs = 2600;

describe("database faults under load", () => {
  let proxied: ProxiedService;
  let proxy: FaultProxy;
  let service: ServiceProcess;
  let token: string;
  let cartId: string;

  before(async () => {
    // Production defaults for the probe and the database client: the suite proves those, not test settings.
    proxied = await startBehindFaultProxy("services/main.ts", { HEALTH_PROBE_MS: "1000", CART_MAX_LINES: "10000" });
    ({ proxy, service } = proxied);
    token = (await registerAndLogin(service.url)).accessToken;
    const carts = createClient(CartService, transportFor(service.url, "grpc", [bearerInterceptor(token)]));
    cartId = (await carts.createCart({ name: "Faults" })).cart!.id;
  });
  after(() => proxied?.close());
  // A service that died under the faults says why only on its stderr.
  afterEach(() => {
    if (service && service.stderr() !== "") console.log(`# service stderr: ${service.stderr().slice(-4000).replace(/\n/g, "\n# ")}`);
  });

  for (const mode of ["reset", "drop"] as const satisfies readonly FaultMode[]) {
    it(`${mode}: fast UNAVAILABLE, NOT_SERVING within ~2 s, recovery within 2 s, no acknowledged write lost`, async () => {
      const carts = createClient(CartService, transportFor(service.url, "grpc", [bearerInterceptor(token)]));
      const users = createClient(UserService, transportFor(service.url, "grpc", [bearerInterceptor(token)]));
      const health = createClient(Health, transportFor(service.url, "grpc"));
      const acknowledged = new Set<string>();
      const unanswered: string[] = [];
      const slow: string[] = [];
      const codes = new Map<string, number>();
      let stop = false;

      const worker = async (n: number) => {
        for (let i = 0; !stop; i++) {
          const requestId = randomUUID();
          const started = Date.now();
          const write = n % 2 === 0;
          try {
            if (write) {
              await carts.addItem(
                { cartId, requestId, item: { productId: `p-${requestId}`, shopId: "faults", name: "Tea", unitPrice: { currencyCode: "INR", amountMinor: 100n }, quantity: 1 } },
                { timeoutMs: 10_000 },
              );
              acknowledged.add(requestId);
            } else {
              await users.getMe({}, { timeoutMs: 10_000 });
            }
            codes.set("ok", (codes.get("ok") ?? 0) + 1);
          } catch (e) {
            const code = ConnectError.from(e).code;
            codes.set(Code[code], (codes.get(Code[code]) ?? 0) + 1);
            if (write) unanswered.push(requestId);
            if (code !== Code.Unavailable) slow.push(`${Code[code]}: ${ConnectError.from(e).message}`);
            // Clients back off a little on UNAVAILABLE, as a real one would.
            await new Promise((r) => setTimeout(r, 50));
          }
          const took = Date.now() - started;
          if (took > answerBoundMs) slow.push(`${write ? "AddItem" : "GetMe"} took ${took} ms`);
        }
      };
      const workers = Array.from({ length: 6 }, (_, n) => worker(n));
      await new Promise((r) => setTimeout(r, 500));

      const faultAt = Date.now();
      proxy.set(mode);
      report.add({ faults: 1 });
      let notServingAfter = -1;
      const liveness = new Set<string>();
      while (Date.now() - faultAt < outageMs) {
        if (notServingAfter < 0) {
          const status = await health.check({}, { timeoutMs: 500 }).then((r) => r.status, () => Status.UNKNOWN);
          if (status === Status.NOT_SERVING) notServingAfter = Date.now() - faultAt;
        }
        liveness.add(Status[await health.check({ service: "liveness" }, { timeoutMs: 500 }).then((r) => r.status, () => Status.UNKNOWN)]);
        await new Promise((r) => setTimeout(r, 100));
      }
      // Liveness probes must not restart a process that only waits for its database.
      assert.deepEqual([...liveness], ["SERVING"], "liveness stays SERVING through the outage");
      const healedAt = Date.now();
      proxy.set("pass");
      let recoveredAfter = -1;
      while (Date.now() - healedAt < 10_000) {
        const status = await health.check({}, { timeoutMs: 500 }).then((r) => r.status, () => Status.UNKNOWN);
        const served = status === Status.SERVING && (await users.getMe({}, { timeoutMs: 1000 }).then(() => true, () => false));
        if (served) {
          recoveredAfter = Date.now() - healedAt;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(workers);

      // Writes never answered are retried with their request id: applied at most once whatever happened.
      for (const requestId of unanswered) {
        await carts.addItem(
          { cartId, requestId, item: { productId: `p-${requestId}`, shopId: "faults", name: "Tea", unitPrice: { currencyCode: "INR", amountMinor: 100n }, quantity: 1 } },
          { timeoutMs: 10_000 },
        );
        acknowledged.add(requestId);
      }
      const cart = (await carts.getCart({ cartId })).cart!;
      const lines = new Map<string, number>();
      for (const line of cart.items) lines.set(line.productId, (lines.get(line.productId) ?? 0) + line.quantity);
      const lost = [...acknowledged].filter((id) => lines.get(`p-${id}`) !== 1);
      const total = [...codes.values()].reduce((a, b) => a + b, 0);
      report.add({ cases: total, acknowledged: acknowledged.size, found: acknowledged.size - lost.length, violations: slow.length + lost.length });
      report.sampleRss();

      const summary = `codes ${JSON.stringify(Object.fromEntries(codes))}, NOT_SERVING after ${notServingAfter} ms, recovered after ${recoveredAfter} ms`;
      assert.deepEqual(slow, [], `calls answered late or with the wrong code (${summary})`);
      assert.ok(notServingAfter >= 0 && notServingAfter <= 2500, `health did not report the outage within ~2 s (${summary})`);
      assert.ok(recoveredAfter >= 0 && recoveredAfter <= 2000, `no recovery within 2 s (${summary})`);
      assert.ok((codes.get("Unavailable") ?? 0) > 0, `no call saw the outage (${summary})`);
      assert.deepEqual(lost, [], `acknowledged writes missing or doubled (${summary})`);
      console.log(`# ${mode}: ${summary}`);
    });
  }
});
