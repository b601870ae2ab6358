import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { clientFor, codeOf } from "../../../test/clients.js";
import { backends, startTestPlatform, uniqueName, untilInFlight, type TestPlatform } from "../../../test/harness.js";

const run = promisify(execFile);
const buf = (args: string[]) => run("npx", ["buf", "curl", "--http2-prior-knowledge", "--protocol", "grpc", ...args], { timeout: 60_000 });

for (const backend of backends) {
  describe(`server behaviour (${backend})`, () => {
    let tp: TestPlatform;
    before(async () => {
      tp = await startTestPlatform({ backend, env: { CORS_ORIGINS: "https://shop.example", MAX_MESSAGE_BYTES: "4096" } });
    });
    after(() => tp.close());

    it("buf curl lists identity, health and reflection through server reflection", async () => {
      const { stdout } = await buf(["--reflect", "--list-methods", tp.url]);
      const methods = stdout.trim().split("\n");
      for (const m of [
        "grocery.identity.v1.AuthService/Login",
        "grocery.identity.v1.UserService/GetMe",
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]) {
        assert.ok(methods.includes(m), `${m} missing from ${stdout}`);
      }
    });

    it("buf curl calls an RPC using only reflection", async () => {
      const username = uniqueName("bufcurl");
      const { stdout } = await buf(["--data", JSON.stringify({ username, email: `${username}@example.com`, password: "ripe mangoes" }), `${tp.url}/grocery.identity.v1.AuthService/Register`]);
      assert.equal((JSON.parse(stdout) as { user: { username: string } }).user.username, username);
    });

    it("health Check answers SERVING for the server and each service, NOT_FOUND for unknown names", async () => {
      const health = clientFor(Health, tp.url);
      for (const service of ["", "grocery.identity.v1.AuthService", "grocery.identity.v1.UserService"]) {
        assert.equal((await health.check({ service })).status, Status.SERVING, service);
      }
      assert.equal(await codeOf(health.check({ service: "no.such.Service" })), Code.NotFound);
      const res = await fetch(`${tp.url}/healthz`);
      assert.equal(res.status, 200);
    });

    it("CORS: preflight for an allowed origin, exposed gRPC headers, nothing for others", async () => {
      const pre = await fetch(`${tp.url}/grocery.identity.v1.AuthService/Login`, {
        method: "OPTIONS",
        headers: { origin: "https://shop.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web,authorization" },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), "https://shop.example");
      assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/i);
      const res = await fetch(`${tp.url}/grocery.identity.v1.AuthService/GetJwks`, {
        method: "POST",
        headers: { origin: "https://shop.example", "content-type": "application/json" },
        body: "{}",
      });
      const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase();
      for (const h of ["grpc-status", "grpc-message", "grpc-status-details-bin"]) assert.ok(exposed.includes(h), `${h} not exposed`);
      const evil = await fetch(`${tp.url}/grocery.identity.v1.AuthService/GetJwks`, {
        method: "POST",
        headers: { origin: "https://evil.example", "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(evil.headers.get("access-control-allow-origin"), null);
    });

    it("a request larger than the message limit is RESOURCE_EXHAUSTED and changes nothing", async () => {
      const auth = clientFor(AuthService, tp.url);
      const username = uniqueName("big");
      const code = await codeOf(auth.register({ username, email: `${username}@example.com`, password: "ripe mangoes", displayName: "x".repeat(8000) }));
      assert.equal(code, Code.ResourceExhausted);
      assert.equal(await codeOf(auth.login({ login: username, password: "ripe mangoes" })), Code.Unauthenticated);
    });

    it("a start on a taken port fails with EADDRINUSE, and the running platform is unaffected", async () => {
      await assert.rejects(startTestPlatform({ backend, env: { PORT: String(tp.port) } }), (e: NodeJS.ErrnoException) => e.code === "EADDRINUSE");
      assert.equal((await clientFor(Health, tp.url).check({ service: "" })).status, Status.SERVING);
    });

    it("honours the client's deadline", async () => {
      const auth = clientFor(AuthService, tp.url);
      // Login does ~tens of ms of argon2 work; a 1 ms deadline cannot be met.
      assert.equal(await codeOf(auth.login({ login: "nobody", password: "whatever it is" }, { timeoutMs: 1 })), Code.DeadlineExceeded);
    });
  });

  describe(`shutdown and outages (${backend})`, () => {
    it("a Watch stream sees NOT_SERVING at shutdown; in-flight calls finish; new connections are refused", async () => {
      const tp = await startTestPlatform({ backend });
      try {
        const health = clientFor(Health, tp.url);
        const seen: Status[] = [];
        const watching = (async () => {
          for await (const res of health.watch({ service: "" })) seen.push(res.status);
        })();
        while (!seen.includes(Status.SERVING)) await new Promise((r) => setTimeout(r, 10));
        const auth = clientFor(AuthService, tp.url, "connect");
        const username = uniqueName("inflight");
        // Argon2 hashing keeps this call running while the server starts to close.
        const inflight = auth.register({ username, email: `${username}@example.com`, password: "late summer plums" });
        await untilInFlight(tp, 2); // the Watch stream and the registration
        await tp.stop();
        await watching.catch(() => {});
        assert.deepEqual(seen, [Status.SERVING, Status.NOT_SERVING]);
        assert.equal((await inflight).user?.username, username);
        const refused = await new Promise<string>((resolve) => {
          const socket = connect(tp.port, "127.0.0.1");
          socket.once("connect", () => {
            socket.destroy();
            resolve("connected");
          });
          socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
        });
        assert.equal(refused, "ECONNREFUSED");
      } finally {
        await tp.close();
      }
    });

    it("goes NOT_SERVING and answers UNAVAILABLE when the database is gone", async () => {
      const tp = await startTestPlatform({ backend });
      try {
        const health = clientFor(Health, tp.url);
        assert.equal((await health.check({ service: "" })).status, Status.SERVING);
        await tp.platform.database.close();
        let status = Status.SERVING;
        for (let i = 0; i < 50 && status === Status.SERVING; i++) {
          await new Promise((r) => setTimeout(r, 100));
          status = (await health.check({ service: "grocery.identity.v1.AuthService" })).status;
        }
        assert.equal(status, Status.NOT_SERVING);
        assert.equal(await codeOf(clientFor(AuthService, tp.url).login({ login: "someone", password: "something long" })), Code.Unavailable);
      } finally {
        await tp.close();
      }
    });
  });
}
