import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createServiceTokenSource, type IssuedToken } from "./service-token.js";

/** An identity stand-in the test drives: counts requests, answers or fails as told. */
function fakeIdentity() {
  let n = 0;
  let down = false;
  return {
    get asked() {
      return n;
    },
    set down(v: boolean) {
      down = v;
    },
    issue: async (): Promise<IssuedToken> => {
      n++;
      if (down) throw new Error("connect ECONNREFUSED");
      return { accessToken: `token-${n}`, expiresIn: 900 };
    },
  };
}

const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code]);

describe("service token source", () => {
  it("asks once for concurrent callers and reuses the token until it nears expiry", async () => {
    let now = 0;
    const identity = fakeIdentity();
    const source = createServiceTokenSource({ issue: identity.issue, clock: () => now, renewBeforeMs: 60_000 });
    assert.deepEqual(await Promise.all([source.token(), source.token(), source.token()]), ["token-1", "token-1", "token-1"]);
    now = 800_000;
    assert.equal(await source.token(), "token-1");
    assert.equal(identity.asked, 1);
  });

  it("renews in the background before expiry, answering with the still-valid token meanwhile", async () => {
    let now = 0;
    const identity = fakeIdentity();
    const source = createServiceTokenSource({ issue: identity.issue, clock: () => now, renewBeforeMs: 60_000 });
    await source.token();
    now = 850_000; // 50 s before expiry
    assert.equal(await source.token(), "token-1");
    await new Promise((r) => setImmediate(r));
    assert.equal(identity.asked, 2);
    assert.equal(await source.token(), "token-2");
  });

  it("while identity is down: fails fast with UNAVAILABLE, retries with growing backoff, recovers", async () => {
    let now = 0;
    const identity = fakeIdentity();
    identity.down = true;
    const source = createServiceTokenSource({ issue: identity.issue, clock: () => now, initialBackoffMs: 1000, maxBackoffMs: 4000, random: () => 1 });
    assert.equal(await codeOf(source.token()), "Unavailable");
    assert.equal(await codeOf(source.token()), "Unavailable");
    assert.equal(identity.asked, 1, "a call within the backoff asked identity again");
    now = 1000;
    assert.equal(await codeOf(source.token()), "Unavailable");
    assert.equal(identity.asked, 2);
    now = 2500; // the second backoff is 2 s
    assert.equal(await codeOf(source.token()), "Unavailable");
    assert.equal(identity.asked, 2);
    now = 3000;
    identity.down = false;
    assert.equal(await source.token(), "token-3");
  });

  it("keeps using a valid token while renewals fail", async () => {
    let now = 0;
    const identity = fakeIdentity();
    const source = createServiceTokenSource({ issue: identity.issue, clock: () => now, renewBeforeMs: 60_000 });
    await source.token();
    identity.down = true;
    now = 870_000;
    assert.equal(await source.token(), "token-1");
    now = 905_000; // expired, and the last renewal failed moments ago
    assert.equal(await codeOf(source.token()), "Unavailable");
  });
});
