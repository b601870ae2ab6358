/**
 * What the browser client does with a token the edge refuses. Envoy's jwt_authn answers a gRPC-web call it
 * rejects itself, before any service sees it, with HTTP 401, `grpc-status: 16` and `grpc-message` in the headers
 * and no body (the grpc_web filter adds the status to Envoy's local reply). There is no Envoy here, so a small
 * proxy in front of the real platform answers exactly that for tokens it is told are stale and passes everything
 * else through. The page's clients (web/src/client.ts, over connect-web's gRPC-web transport on fetch) must read
 * it as UNAUTHENTICATED and, given a way to renew, refresh once and succeed.
 */
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { registerAndLogin, type TestUser } from "../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../test/shared-platform.js";
import { createGroceryClients } from "../src/client.js";

describe("the browser client behind the edge", () => {
  let tp: SharedTestPlatform;
  let edge: Server;
  let edgeUrl: string;
  const refused = new Set<string>();
  let edgeReplies = 0;

  before(async () => {
    tp = await sharedTestPlatform("pglite");
    const upstream = new URL(tp.url);
    edge = createServer((req, res) => {
      const token = (req.headers["authorization"] ?? "").replace(/^Bearer /, "");
      if (refused.has(token)) {
        edgeReplies++;
        req.resume();
        // Envoy's local reply for a rejected JWT, as the grpc_web filter shapes it.
        res.writeHead(401, { "content-type": "application/grpc-web+proto", "grpc-status": "16", "grpc-message": "Jwt is expired", "content-length": "0" });
        res.end();
        return;
      }
      const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(forward);
    });
    await new Promise<void>((r) => edge.listen(0, "127.0.0.1", r));
    edgeUrl = `http://127.0.0.1:${(edge.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise((r) => edge.close(r));
  });

  /** The page's wiring (web/src/app.ts): tokens in memory, renewal through clients without a token. */
  const session = (user: TestUser) => {
    const tokens = { access: user.accessToken as string | undefined, refresh: user.refreshToken as string | undefined, renewals: 0 };
    const anonymous = createGroceryClients({ baseUrl: edgeUrl });
    const clients = createGroceryClients({
      baseUrl: edgeUrl,
      accessToken: () => tokens.access,
      renewAccessToken: async () => {
        tokens.renewals++;
        if (!tokens.refresh) return undefined;
        try {
          const renewed = await anonymous.auth.refreshToken({ refreshToken: tokens.refresh });
          tokens.access = renewed.accessToken;
          tokens.refresh = renewed.refreshToken;
          return tokens.access;
        } catch {
          tokens.access = tokens.refresh = undefined;
          return undefined;
        }
      },
    });
    return { tokens, clients };
  };

  it("reads the edge's 401 as UNAUTHENTICATED with its message", async () => {
    const user = await registerAndLogin(tp.url);
    refused.add(user.accessToken);
    const plain = createGroceryClients({ baseUrl: edgeUrl, accessToken: () => user.accessToken });
    const err = await plain.users.getMe({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err?.code, Code.Unauthenticated);
    assert.equal(err?.rawMessage, "Jwt is expired");
  });

  it("refreshes once and repeats the call; concurrent refusals share one renewal", async () => {
    const user = await registerAndLogin(tp.url);
    refused.add(user.accessToken);
    const { tokens, clients } = session(user);
    const before = edgeReplies;
    const answers = await Promise.all([clients.users.getMe({}), clients.carts.listCarts({}), clients.users.getMe({})]);
    assert.equal(answers[0].user?.id, user.userId);
    assert.equal(answers[1].carts.length, 0);
    assert.equal(edgeReplies - before, 3, "each call met the edge's refusal once");
    assert.equal(tokens.renewals, 1);
    assert.notEqual(tokens.access, user.accessToken);
  });

  it("gives up when the refresh fails too: the caller sees UNAUTHENTICATED and holds no tokens", async () => {
    const user = await registerAndLogin(tp.url);
    refused.add(user.accessToken);
    const { tokens, clients } = session(user);
    // The session ends elsewhere (a logout on another device): the refresh token is spent.
    await createGroceryClients({ baseUrl: tp.url, accessToken: () => user.accessToken }).auth.logout({});
    assert.equal(await clients.users.getMe({}).then(() => "ok", (e: unknown) => ConnectError.from(e).code), Code.Unauthenticated);
    assert.deepEqual([tokens.access, tokens.refresh, tokens.renewals], [undefined, undefined, 1]);
  });
});
