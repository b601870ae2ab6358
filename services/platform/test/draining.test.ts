import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { describe, it } from "node:test";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { clientFor } from "../../../test/clients.js";
import { startTestPlatform, uniqueName, untilInFlight } from "../../../test/harness.js";

/** Calls that arrive on connections opened before shutdown began must be refused, not served or dropped. */
describe("draining refuses new calls on open connections", () => {
  it("HTTP/2: a stream opened after shutdown began is refused; the running call completes", async () => {
    // The running call must finish within the grace, however loaded the machine: a long grace costs nothing here,
    // since the shutdown ends as soon as that call has.
    const tp = await startTestPlatform({ backend: "pglite", env: { SHUTDOWN_GRACE: "15s" } });
    const session = http2.connect(tp.url);
    try {
      await new Promise<void>((resolve, reject) => session.once("connect", () => resolve()).once("error", reject));
      const username = uniqueName("drain");
      const running = clientFor(AuthService, tp.url, "grpc").register({ username, email: `${username}@example.com`, password: "late summer plums" });
      await untilInFlight(tp, 1);
      const stopping = tp.stop();
      const outcome = await new Promise<string>((resolve) => {
        try {
          const stream = session.request({ ":method": "POST", ":path": "/grocery.identity.v1.AuthService/GetJwks", "content-type": "application/grpc", te: "trailers" });
          let status = "";
          stream.on("response", (h) => (status = String(h["grpc-status"] ?? "")));
          stream.on("trailers", (t) => (status = String(t["grpc-status"] ?? status)));
          stream.on("data", () => {});
          stream.on("close", () => resolve(status === "0" ? "served" : `refused:${status || stream.rstCode}`));
          stream.on("error", () => resolve("refused"));
          stream.end(Buffer.from([0, 0, 0, 0, 0]));
        } catch {
          resolve("refused");
        }
      });
      assert.match(outcome, /^refused/);
      assert.equal((await running).user?.username, username);
      await stopping;
    } finally {
      session.destroy();
      await tp.close();
    }
  });

  it("HTTP/1.1: a request on a kept-alive connection after shutdown began is UNAVAILABLE or closed, never served", async () => {
    const tp = await startTestPlatform({ backend: "pglite" });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (path: string, body: string) =>
      new Promise<{ status: number; body: string; connection: string }>((resolve, reject) => {
        const req = http.request(`${tp.url}${path}`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          let data = "";
          res.on("data", (c: Buffer) => (data += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data, connection: String(res.headers.connection ?? "") }));
        });
        req.on("error", reject);
        req.end(body);
      });
    try {
      const username = uniqueName("drain1");
      // Keep the one socket busy with a slow call, then queue a second request behind it on the same socket.
      const running = post("/grocery.identity.v1.AuthService/Register", JSON.stringify({ username, email: `${username}@example.com`, password: "late summer plums" }));
      await untilInFlight(tp, 1);
      const queued = post("/grocery.identity.v1.AuthService/GetJwks", "{}").then(
        (r) => r,
        () => ({ status: -1, body: "connection closed", connection: "" }),
      );
      const stopping = tp.stop();
      const first = await running;
      assert.equal(first.status, 200, first.body);
      // The running call's answer tells the client not to send anything else on this connection.
      assert.equal(first.connection, "close");
      const second = await queued;
      assert.ok(second.status === 503 || second.status === -1, `second call was ${second.status} ${second.body}`);
      if (second.status === 503) assert.equal((JSON.parse(second.body) as { code: string }).code, "unavailable");
      await stopping;
    } finally {
      agent.destroy();
      await tp.close();
    }
  });
});
