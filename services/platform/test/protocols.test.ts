import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { bearer, clientFor, codeOf, grpcJsClient, type Protocol } from "../../../test/clients.js";
import { backends, callJson, uniqueName } from "../../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../../test/shared-platform.js";

for (const backend of backends) {
  describe(`one port, every protocol (${backend})`, () => {
    let tp: SharedTestPlatform;
    before(async () => {
      tp = await sharedTestPlatform(backend);
    });

    for (const protocol of ["grpc", "grpc-web", "connect"] as Protocol[]) {
      it(`register → login → refresh → GetMe → logout over connect-node ${protocol}`, async () => {
        const auth = clientFor(AuthService, tp.url, protocol);
        const users = clientFor(UserService, tp.url, protocol);
        const username = uniqueName(protocol.replace("-", ""));
        await auth.register({ username, email: `${username}@example.com`, password: "sweet potatoes" });
        const login = await auth.login({ login: username, password: "sweet potatoes" });
        const refreshed = await auth.refreshToken({ refreshToken: login.refreshToken });
        assert.equal((await users.getMe({}, bearer(refreshed.accessToken))).user?.username, username);
        await auth.logout({}, bearer(refreshed.accessToken));
        assert.equal(await codeOf(auth.refreshToken({ refreshToken: refreshed.refreshToken })), Code.Unauthenticated);
        assert.equal(await codeOf(auth.login({ login: username, password: "wrong potatoes" })), Code.Unauthenticated);
      });
    }

    it("the same flow over @grpc/grpc-js", async () => {
      const client = grpcJsClient(tp.url);
      try {
        const username = uniqueName("grpcjs");
        await client.unary(AuthService.method.register, { username, email: `${username}@example.com`, password: "sweet potatoes" });
        const login = await client.unary(AuthService.method.login, { login: username, password: "sweet potatoes" });
        const refreshed = await client.unary(AuthService.method.refreshToken, { refreshToken: login.refreshToken });
        const me = await client.unary(UserService.method.getMe, {}, { authorization: `Bearer ${refreshed.accessToken}` });
        assert.equal(me.user?.username, username);
        assert.equal(await codeOf(client.unary(UserService.method.getMe, {})), Code.Unauthenticated);
        assert.equal(
          await codeOf(client.unary(AuthService.method.register, { username, email: `${username}@example.com`, password: "sweet potatoes" })),
          Code.AlreadyExists,
        );
      } finally {
        client.close();
      }
    });

    it("the same flow with plain fetch and Connect JSON over HTTP/1.1", async () => {
      const username = uniqueName("fetch");
      await callJson(tp.url, "grocery.identity.v1.AuthService/Register", { username, email: `${username}@example.com`, password: "sweet potatoes" });
      const login = await callJson<{ accessToken: string }>(tp.url, "grocery.identity.v1.AuthService/Login", { login: username, password: "sweet potatoes" });
      const me = await callJson<{ user: { username: string } }>(tp.url, "grocery.identity.v1.UserService/GetMe", {}, login.accessToken);
      assert.equal(me.user.username, username);
      const res = await fetch(`${tp.url}/grocery.identity.v1.UserService/GetMe`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { code: string }).code, "unauthenticated");
    });

    it("echoes a request id, or makes one", async () => {
      const res = await fetch(`${tp.url}/grocery.identity.v1.AuthService/GetJwks`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "trace-123" },
        body: "{}",
      });
      assert.equal(res.headers.get("x-request-id"), "trace-123");
      const other = await fetch(`${tp.url}/grocery.identity.v1.AuthService/GetJwks`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      assert.match(other.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    });
  });
}
