/**
 * Shutdown while PostgreSQL hangs (traffic silently dropped): calls still running at the grace deadline are
 * answered UNAVAILABLE, not reset, and the process, database pool included, is gone within SHUTDOWN_GRACE.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { bearerInterceptor, transportFor } from "../../../test/clients.js";
import { startBehindFaultProxy, type ProxiedService } from "../../../test/fault-proxy.js";
import { registerAndLogin } from "../../../test/harness.js";

const postgres = process.env["TEST_DATABASE_URL"] !== undefined;

describe("shutdown with a hung database", { skip: !postgres && "needs PostgreSQL (TEST_DATABASE_URL)" }, () => {
  let proxied: ProxiedService;
  before(async () => {
    // A probe too slow to notice the outage first: the calls must be cut by the shutdown itself.
    proxied = await startBehindFaultProxy("services/main.ts", { SHUTDOWN_GRACE: "2s", HEALTH_PROBE_MS: "60000" });
  });
  after(() => proxied.close());

  it("answers cut calls UNAVAILABLE and exits within the grace", async () => {
    const { proxy, service } = proxied;
    const { accessToken } = await registerAndLogin(service.url);
    const users = createClient(UserService, transportFor(service.url, "grpc", [bearerInterceptor(accessToken)]));
    await users.getMe({});
    proxy.set("drop");
    const calls = Array.from({ length: 3 }, () =>
      users.getMe({}, { timeoutMs: 20_000 }).then(
        () => "ok",
        (e: unknown) => Code[ConnectError.from(e).code],
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const stopping = Date.now();
    const exitCode = await service.stop();
    const took = Date.now() - stopping;
    assert.deepEqual(await Promise.all(calls), ["Unavailable", "Unavailable", "Unavailable"]);
    assert.equal(exitCode, 0);
    assert.ok(took < 2000 + 1000, `shutdown took ${took} ms with a 2 s grace`);
  });
});
