/**
 * Concurrency and idempotency of CartService over real sockets: no lost updates, exactly one winner per
 * expected_version, and AddItem request ids that add once however often and however concurrently they arrive.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { backends, callJson, concurrencySkip, createTestClock, registerAndLogin, type TestClock, type TestPlatform, type TestUser } from "../../../test/harness.js";
import { Clients, item, newRequestId, rejectsWith, startCartPlatform, type CartClient } from "./helpers.js";

/** Splits settled calls into successes and the codes of the failures. */
function outcomes(results: PromiseSettledResult<unknown>[]): { ok: number; codes: string[] } {
  const codes = results.flatMap((r) => (r.status === "rejected" ? [Code[ConnectError.from(r.reason).code]] : []));
  return { ok: results.length - codes.length, codes };
}

for (const backend of backends) {
  describe(`CartService concurrency and idempotency on ${backend}`, { skip: concurrencySkip(backend) }, () => {
    let tp: TestPlatform;
    let clock: TestClock;
    const clients = new Clients();
    let user: TestUser;
    /** Several independent clients of one user: two gRPC connections, Connect and gRPC-web. */
    let many: CartClient[];
    let cart: CartClient;

    before(async () => {
      clock = createTestClock();
      tp = await startCartPlatform(backend, { clock });
      user = await registerAndLogin(tp.url);
      const token = user.accessToken;
      many = [
        clients.cart(tp.url, token, "grpc"),
        clients.cart(tp.url, token, "grpc"),
        clients.cart(tp.url, token, "connect"),
        clients.cart(tp.url, token, "grpc-web"),
      ];
      cart = many[0] as CartClient;
    });
    after(async () => {
      clients.close();
      await tp?.close();
    });

    /** A new access token for the suite's user, valid at the platform's current (possibly moved) time. */
    async function relogin(): Promise<string> {
      const res = await callJson<{ accessToken: string }>(tp.url, "grocery.identity.v1.AuthService/Login", { login: user.username, password: user.password });
      return res.accessToken;
    }

    async function newCart(name: string) {
      const { cart: c } = await cart.createCart({ name });
      assert.ok(c);
      return c;
    }

    it("200 concurrent AddItem of one unit from several clients: quantity 200, version +200", async () => {
      const c = await newCart("crowd");
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => (many[i % many.length] as CartClient).addItem({ cartId: c.id, item: item({ quantity: 1 }) })),
      );
      assert.deepEqual(outcomes(results), { ok: 200, codes: [] });
      const got = (await cart.getCart({ cartId: c.id })).cart;
      assert.equal(got?.items.length, 1);
      assert.equal(got?.items[0]?.quantity, 200);
      assert.equal(got?.itemCount, 200);
      assert.equal(got?.version, 201n);
      assert.equal(got?.subtotal?.amountMinor, 200n * 129n);
      // Every response saw a distinct version: the calls were applied one after the other.
      const versions = results.map((r) => (r.status === "fulfilled" ? r.value.cart?.version : undefined));
      assert.equal(new Set(versions).size, 200);
    });

    it("concurrent mutations of different kinds lose nothing", async () => {
      const c = await newCart("mixed");
      await cart.addItem({ cartId: c.id, item: item({ productId: "fixed", quantity: 1 }) });
      const calls = Array.from({ length: 60 }, (_, i) => {
        const client = many[i % many.length] as CartClient;
        if (i % 3 === 0) return client.addItem({ cartId: c.id, item: item({ productId: `p${i}` }) });
        if (i % 3 === 1) return client.addItem({ cartId: c.id, item: item({ productId: "shared" }) });
        return client.renameCart({ cartId: c.id, name: `mixed ${i}` });
      });
      assert.deepEqual(outcomes(await Promise.allSettled(calls)), { ok: 60, codes: [] });
      const got = (await cart.getCart({ cartId: c.id })).cart;
      assert.equal(got?.version, 62n);
      assert.equal(got?.items.length, 1 + 20 + 1);
      assert.equal(got?.items.find((i) => i.productId === "shared")?.quantity, 20);
    });

    it("concurrent updates with the same expected_version: exactly one wins, the others are ABORTED", async () => {
      const c = await newCart("race");
      const adds = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          (many[i % many.length] as CartClient).addItem({ cartId: c.id, item: item({ productId: `p${i}` }), expectedVersion: 1n }),
        ),
      );
      const o = outcomes(adds);
      assert.equal(o.ok, 1);
      assert.deepEqual(new Set(o.codes), new Set(["Aborted"]));
      let got = (await cart.getCart({ cartId: c.id })).cart;
      assert.deepEqual([got?.version, got?.items.length], [2n, 1]);

      const mixed = await Promise.allSettled([
        many[0]?.renameCart({ cartId: c.id, name: "race won", expectedVersion: 2n }),
        many[1]?.updateItemQuantity({ cartId: c.id, productId: got?.items[0]?.productId ?? "", shopId: "shop-1", quantity: 9, expectedVersion: 2n }),
        many[2]?.clearCart({ cartId: c.id, expectedVersion: 2n }),
        many[3]?.addItem({ cartId: c.id, item: item(), expectedVersion: 2n }),
        many[0]?.deleteCart({ cartId: c.id, expectedVersion: 2n }),
      ]);
      assert.equal(outcomes(mixed).ok, 1);
      // When the delete wins, the cart is gone for the others: NOT_FOUND rather than a version to retry on.
      const deleted = mixed[4]?.status === "fulfilled";
      assert.deepEqual(new Set(outcomes(mixed).codes), new Set([deleted ? "NotFound" : "Aborted"]));
      if (!deleted) {
        got = (await cart.getCart({ cartId: c.id })).cart;
        assert.equal(got?.version, 3n);
      } else {
        await rejectsWith(cart.getCart({ cartId: c.id }), Code.NotFound);
      }
    });

    it("the same request_id sent 10 times in a row adds once and answers the same cart", async () => {
      const c = await newCart("retries");
      const requestId = newRequestId();
      const responses = [];
      for (let i = 0; i < 10; i++) {
        responses.push((await (many[i % many.length] as CartClient).addItem({ cartId: c.id, item: item({ quantity: 2 }), requestId })).cart);
      }
      for (const r of responses) assert.deepEqual(r, responses[0]);
      const got = (await cart.getCart({ cartId: c.id })).cart;
      assert.deepEqual([got?.version, got?.items[0]?.quantity], [2n, 2]);
      // A new request id adds again.
      const again = (await cart.addItem({ cartId: c.id, item: item({ quantity: 2 }), requestId: newRequestId() })).cart;
      assert.deepEqual([again?.version, again?.items[0]?.quantity], [3n, 4]);
      // The first id still answers its first result, not the current cart.
      assert.deepEqual((await cart.addItem({ cartId: c.id, item: item({ quantity: 2 }), requestId })).cart, responses[0]);
    });

    it("the same request_id sent 10 times concurrently adds once", async () => {
      const c = await newCart("storm");
      const requestId = newRequestId();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (many[i % many.length] as CartClient).addItem({ cartId: c.id, item: item(), requestId })),
      );
      assert.deepEqual(outcomes(results), { ok: 10, codes: [] });
      const carts = results.map((r) => (r.status === "fulfilled" ? r.value.cart : undefined));
      for (const r of carts) assert.deepEqual(r, carts[0]);
      const got = (await cart.getCart({ cartId: c.id })).cart;
      assert.deepEqual([got?.version, got?.items[0]?.quantity], [2n, 1]);
    });

    it("many request ids concurrently, each sent three times: each adds exactly once", async () => {
      const c = await newCart("storm 2");
      const ids = Array.from({ length: 30 }, () => newRequestId());
      const calls = ids.flatMap((requestId, i) =>
        [0, 1, 2].map((k) => (many[(i + k) % many.length] as CartClient).addItem({ cartId: c.id, item: item(), requestId })),
      );
      assert.deepEqual(outcomes(await Promise.allSettled(calls)), { ok: 90, codes: [] });
      const got = (await cart.getCart({ cartId: c.id })).cart;
      assert.deepEqual([got?.version, got?.items[0]?.quantity], [31n, 30]);
    });

    it("a retry of a call that carried expected_version answers its first result, not ABORTED", async () => {
      const c = await newCart("careful");
      const requestId = newRequestId();
      const first = (await cart.addItem({ cartId: c.id, item: item(), expectedVersion: 1n, requestId })).cart;
      const retry = (await many[2]?.addItem({ cartId: c.id, item: item(), expectedVersion: 1n, requestId }))?.cart;
      assert.deepEqual(retry, first);
      assert.equal((await cart.getCart({ cartId: c.id })).cart?.version, 2n);
    });

    it("a failed call does not consume its request_id", async () => {
      const c = await newCart("fails first");
      const requestId = newRequestId();
      await rejectsWith(cart.addItem({ cartId: c.id, item: item(), expectedVersion: 5n, requestId }), Code.Aborted);
      assert.equal((await cart.addItem({ cartId: c.id, item: item(), expectedVersion: 1n, requestId })).cart?.version, 2n);
    });

    it("reusing a request_id for a different request is INVALID_ARGUMENT and changes nothing", async () => {
      const c = await newCart("reuse");
      const other = await newCart("reuse 2");
      const requestId = newRequestId();
      await cart.addItem({ cartId: c.id, item: item(), requestId });
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ quantity: 2 }), requestId }), Code.InvalidArgument);
      await rejectsWith(cart.addItem({ cartId: other.id, item: item(), requestId }), Code.InvalidArgument);
      assert.equal((await cart.getCart({ cartId: c.id })).cart?.version, 2n);
      assert.equal((await cart.getCart({ cartId: other.id })).cart?.version, 1n);
    });

    it("request ids belong to their user: another user's identical id is a new request", async () => {
      const c = await newCart("mine");
      const requestId = newRequestId();
      await cart.addItem({ cartId: c.id, item: item(), requestId });
      const other = clients.cart(tp.url, (await registerAndLogin(tp.url)).accessToken);
      const { cart: theirs } = await other.createCart({ name: "theirs" });
      assert.ok(theirs);
      assert.equal((await other.addItem({ cartId: theirs.id, item: item(), requestId })).cart?.version, 2n);
      // And it never reveals the first user's cart.
      await rejectsWith(other.addItem({ cartId: c.id, item: item(), requestId: newRequestId() }), Code.NotFound);
    });

    // Runs last: it moves the platform's clock a day forward.
    it("request ids are kept for 24 hours, then a retry adds again", async () => {
      const c = await newCart("a day later");
      const requestId = newRequestId();
      await cart.addItem({ cartId: c.id, item: item(), requestId });
      clock.advance(24 * 3600_000 - 60_000);
      // The first access token has expired by the moved clock; log in again.
      const client = clients.cart(tp.url, await relogin());
      assert.equal((await client.addItem({ cartId: c.id, item: item(), requestId })).cart?.version, 2n);
      clock.advance(2 * 60_000);
      const later = clients.cart(tp.url, await relogin());
      assert.equal((await later.addItem({ cartId: c.id, item: item(), requestId })).cart?.version, 3n);
      assert.equal((await later.addItem({ cartId: c.id, item: item(), requestId })).cart?.version, 3n);
    });
  });
}
