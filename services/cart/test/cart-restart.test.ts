/**
 * Persistence: carts survive a restart of the all-in-one process, and of the cart service running alone
 * (`npm run start:cart`) against identity's published keys.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { backends, identityAndEmptyDatabase, registerAndLogin, type TestPlatform } from "../../../test/harness.js";
import { startServiceProcess } from "../../../test/service-process.js";
import { Clients, item, newRequestId, rejectsWith, startCartPlatform } from "./helpers.js";

for (const backend of backends) {
  describe(`CartService persistence on ${backend}`, () => {
    const clients = new Clients();
    after(() => clients.close());

    it("carts survive a restart of the all-in-one process", async () => {
      let tp: TestPlatform = await startCartPlatform(backend);
      try {
        const user = await registerAndLogin(tp.url);
        let cart = clients.cart(tp.url, user.accessToken);
        const { cart: weekly } = await cart.createCart({ name: "weekly" });
        assert.ok(weekly);
        await cart.createCart({ name: "party" });
        const requestId = newRequestId();
        await cart.addItem({ cartId: weekly.id, item: item({ quantity: 2 }), requestId });
        await cart.addItem({ cartId: weekly.id, item: item({ productId: "bread", name: "Bread", amountMinor: 350n }) });
        const before = await cart.listCarts({});

        tp = await tp.restart();
        cart = clients.cart(tp.url, user.accessToken);
        assert.deepEqual(await cart.listCarts({}), before);
        // Versions, names and request ids carry on where they were.
        const again = (await cart.addItem({ cartId: weekly.id, item: item({ quantity: 2 }), requestId })).cart;
        assert.equal(again?.version, 2n);
        assert.equal((await cart.addItem({ cartId: weekly.id, item: item() })).cart?.version, 4n);
        await rejectsWith(cart.createCart({ name: "Party" }), Code.AlreadyExists);
      } finally {
        await tp.close();
      }
    });

    describe("the cart service alone", () => {
      let alone: Awaited<ReturnType<typeof identityAndEmptyDatabase>>;
      before(async () => {
        alone = await identityAndEmptyDatabase(backend);
      });
      after(() => alone?.close());

      it("verifies identity's tokens through its JWKS and keeps carts across a process restart", async () => {
        const { identity, env } = alone;
        const user = await registerAndLogin(identity.url);
        let proc = await startServiceProcess("services/cart/src/main.ts", env);
        let id: string;
        let before;
        try {
          const cart = clients.cart(proc.url, user.accessToken);
          const { cart: created } = await cart.createCart({ name: "weekly" });
          assert.ok(created);
          id = created.id;
          before = (await cart.addItem({ cartId: id, item: item({ quantity: 3 }) })).cart;
          await rejectsWith(clients.cart(proc.url, "forged.token.value").getCart({ cartId: id }), Code.Unauthenticated);
        } finally {
          assert.equal(await proc.stop(), 0, "graceful stop exits 0");
        }
        proc = await startServiceProcess("services/cart/src/main.ts", env);
        try {
          const cart = clients.cart(proc.url, user.accessToken, "connect");
          assert.deepEqual((await cart.getCart({ cartId: id })).cart, before);
        } finally {
          assert.equal(await proc.stop(), 0);
        }
      });

      it("refuses to start on a bad limit, naming the variable (exit 78)", async () => {
        await assert.rejects(startServiceProcess("services/cart/src/main.ts", { ...alone.env, IDENTITY_JWKS_URL: "http://127.0.0.1:1/jwks", CART_MAX_CARTS: "lots" }), /exited with 78.*CART_MAX_CARTS/s);
      });
    });
  });
}
