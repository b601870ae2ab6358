/** Ownership: a user reaches only their own carts; every RPC on someone else's cart answers NOT_FOUND. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { backends, registerAndLogin } from "../../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../../test/shared-platform.js";
import { Clients, item, newRequestId, rejectsWith, type CartClient } from "./helpers.js";

for (const backend of backends) {
  describe(`CartService isolation on ${backend}`, () => {
    let tp: SharedTestPlatform;
    const clients = new Clients();
    let alice: CartClient;
    let bob: CartClient;

    before(async () => {
      tp = await sharedTestPlatform(backend);
      alice = clients.cart(tp.url, (await registerAndLogin(tp.url)).accessToken);
      bob = clients.cart(tp.url, (await registerAndLogin(tp.url, { role: Role.SHOP_OWNER })).accessToken, "connect");
    });
    after(() => clients.close());

    it("user B gets NOT_FOUND for every RPC on user A's cart, and A's cart is unchanged", async () => {
      const { cart: created } = await alice.createCart({ name: "alice's" });
      assert.ok(created);
      const id = created.id;
      await alice.addItem({ cartId: id, item: item({ quantity: 3 }) });
      const before = (await alice.getCart({ cartId: id })).cart;
      assert.ok(before);
      const v = before.version;

      // With and without a correct expected_version: knowing the version must not help.
      for (const expectedVersion of [undefined, v]) {
        await rejectsWith(bob.getCart({ cartId: id }), Code.NotFound);
        await rejectsWith(bob.renameCart({ cartId: id, name: "mine now", expectedVersion }), Code.NotFound);
        await rejectsWith(bob.addItem({ cartId: id, item: item(), expectedVersion }), Code.NotFound);
        await rejectsWith(bob.addItem({ cartId: id, item: item(), expectedVersion, requestId: newRequestId() }), Code.NotFound);
        await rejectsWith(bob.updateItemQuantity({ cartId: id, productId: "milk-1l", shopId: "shop-1", quantity: 9, expectedVersion }), Code.NotFound);
        await rejectsWith(bob.updateItemQuantity({ cartId: id, productId: "milk-1l", shopId: "shop-1", quantity: 0, expectedVersion }), Code.NotFound);
        await rejectsWith(bob.removeItem({ cartId: id, productId: "milk-1l", shopId: "shop-1", expectedVersion }), Code.NotFound);
        await rejectsWith(bob.clearCart({ cartId: id, expectedVersion }), Code.NotFound);
        await rejectsWith(bob.deleteCart({ cartId: id, expectedVersion }), Code.NotFound);
      }
      // The same answer as for an id that does not exist at all.
      await rejectsWith(bob.getCart({ cartId: "00000000-0000-4000-8000-000000000000" }), Code.NotFound);
      // B's list does not show it, and B may use the same name.
      assert.deepEqual((await bob.listCarts({})).carts, []);
      await bob.createCart({ name: "alice's" });
      assert.deepEqual((await bob.listCarts({})).carts.map((c) => c.name), ["alice's"]);

      assert.deepEqual((await alice.getCart({ cartId: id })).cart, before);
      assert.deepEqual((await alice.listCarts({})).carts, [before]);
    });

    it("page tokens do not leak another user's carts", async () => {
      const carol = clients.cart(tp.url, (await registerAndLogin(tp.url)).accessToken);
      await carol.createCart({ name: "c1" });
      await carol.createCart({ name: "c2" });
      const page = await carol.listCarts({ pageSize: 1 });
      assert.notEqual(page.nextPageToken, "");
      // A token is bound to the caller's list: Bob replaying Carol's is refused and shows him nothing of hers.
      const replay = await bob.listCarts({ pageSize: 10, pageToken: page.nextPageToken }).then(
        (r) => r.carts.map((c) => c.name),
        (e: unknown) => ConnectError.from(e).code,
      );
      assert.equal(replay, Code.InvalidArgument);
    });
  });
}
