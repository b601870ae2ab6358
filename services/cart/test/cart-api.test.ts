/**
 * CartService over real sockets on a real database, with tokens from the real identity service: every RPC's
 * happy path and every rule with the code it promises.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { backends, registerAndLogin, type TestPlatform } from "../../../test/harness.js";
import { Clients, item, rejectsWith, startCartPlatform, type CartClient } from "./helpers.js";

const missingId = "00000000-0000-4000-8000-000000000000";

for (const backend of backends) {
  describe(`CartService on ${backend}`, () => {
    let tp: TestPlatform;
    const clients = new Clients();
    /** A client for a newly registered customer. */
    let fresh: (role?: Role) => Promise<CartClient>;

    before(async () => {
      tp = await startCartPlatform(backend);
      fresh = async (role = Role.CUSTOMER) => clients.cart(tp.url, (await registerAndLogin(tp.url, { role })).accessToken);
    });
    after(async () => {
      clients.close();
      await tp?.close();
    });

    it("keeps a weekly and a party cart side by side", async () => {
      const cart = await fresh();
      const { cart: weekly } = await cart.createCart({ name: "weekly" });
      // Carts list by (create_time, id): a millisecond apart, so the order is creation order, not id order.
      tp.clock.advance(1);
      const { cart: party } = await cart.createCart({ name: "  Party  " });
      assert.ok(weekly && party);
      assert.match(weekly.id, /^[0-9a-f-]{36}$/);
      assert.equal(weekly.version, 1n);
      assert.equal(weekly.items.length, 0);
      assert.equal(weekly.itemCount, 0);
      assert.equal(weekly.subtotal, undefined);
      assert.ok(weekly.createTime && weekly.updateTime);
      assert.equal(party.name, "Party");

      await cart.addItem({ cartId: weekly.id, item: item({ quantity: 2 }) });
      await cart.addItem({ cartId: party.id, item: item({ productId: "crisps", name: "Crisps", amountMinor: 199n, quantity: 5 }) });
      const got = (await cart.getCart({ cartId: weekly.id })).cart;
      assert.equal(got?.items[0]?.productId, "milk-1l");
      assert.equal(got?.itemCount, 2);
      assert.equal(got?.subtotal?.amountMinor, 258n);
      const list = await cart.listCarts({});
      assert.deepEqual(list.carts.map((c) => c.name), ["weekly", "Party"]);
      assert.equal(list.carts[1]?.subtotal?.amountMinor, 995n);
      assert.equal(list.nextPageToken, "");
    });

    it("CreateCart: names are 1-64 characters and unique per user ignoring case", async () => {
      const cart = await fresh();
      await cart.createCart({ name: "Weekly" });
      await rejectsWith(cart.createCart({ name: "WEEKLY" }), Code.AlreadyExists);
      await rejectsWith(cart.createCart({ name: " weekly " }), Code.AlreadyExists);
      await rejectsWith(cart.createCart({ name: "" }), Code.InvalidArgument);
      await rejectsWith(cart.createCart({ name: "   " }), Code.InvalidArgument);
      await rejectsWith(cart.createCart({ name: "x".repeat(65) }), Code.InvalidArgument);
      assert.equal((await cart.createCart({ name: "x".repeat(64) })).cart?.name.length, 64);
      // Another user may use the same name.
      await (await fresh()).createCart({ name: "weekly" });
    });

    it("CreateCart: at most 20 carts per user (RESOURCE_EXHAUSTED), and deleting one frees a place", async () => {
      const cart = await fresh(Role.SHOP_OWNER);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await cart.createCart({ name: `cart ${i}` })).cart?.id ?? "");
      await rejectsWith(cart.createCart({ name: "one too many" }), Code.ResourceExhausted);
      await cart.deleteCart({ cartId: ids[0] ?? "" });
      await cart.createCart({ name: "one too many" });
    });

    it("GetCart: unknown, malformed and missing ids", async () => {
      const cart = await fresh();
      await rejectsWith(cart.getCart({ cartId: missingId }), Code.NotFound);
      await rejectsWith(cart.getCart({ cartId: "not-a-uuid" }), Code.NotFound);
      await rejectsWith(cart.getCart({ cartId: "" }), Code.InvalidArgument);
    });

    it("ListCarts: pages with opaque tokens, oldest first (AIP-158)", async () => {
      const cart = await fresh();
      const names = Array.from({ length: 7 }, (_, i) => `list ${i}`);
      for (const name of names) {
        await cart.createCart({ name });
        tp.clock.advance(1);
      }
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await cart.listCarts({ pageSize: 3, pageToken });
        assert.ok(page.carts.length <= 3);
        seen.push(...page.carts.map((c) => c.name));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "");
      assert.deepEqual(seen, names);
      assert.equal(pages, 3);
      assert.equal((await cart.listCarts({ pageSize: 0 })).carts.length, 7);
      await rejectsWith(cart.listCarts({ pageSize: -1 }), Code.InvalidArgument);
      await rejectsWith(cart.listCarts({ pageToken: "garbage" }), Code.InvalidArgument);
      await rejectsWith(cart.listCarts({ pageToken: Buffer.from('{"v":1}').toString("base64url") }), Code.InvalidArgument);
      // Well-formed tokens whose time a timestamptz cannot parse (years past 9999) are refused, not INTERNAL.
      const id = missingId;
      for (const t of [253_402_300_800_000, 8.64e15]) {
        await rejectsWith(cart.listCarts({ pageToken: Buffer.from(JSON.stringify({ v: 1, t, i: id })).toString("base64url") }), Code.InvalidArgument);
      }
      assert.deepEqual((await (await fresh()).listCarts({})).carts, []);
    });

    it("RenameCart: new name, version bump, uniqueness and expected_version", async () => {
      const cart = await fresh();
      const { cart: a } = await cart.createCart({ name: "a" });
      await cart.createCart({ name: "b" });
      assert.ok(a);
      const renamed = (await cart.renameCart({ cartId: a.id, name: "Weekly" })).cart;
      assert.equal(renamed?.name, "Weekly");
      assert.equal(renamed?.version, 2n);
      // Changing only the case of its own name is allowed.
      assert.equal((await cart.renameCart({ cartId: a.id, name: "WEEKLY", expectedVersion: 2n })).cart?.version, 3n);
      await rejectsWith(cart.renameCart({ cartId: a.id, name: "B" }), Code.AlreadyExists);
      await rejectsWith(cart.renameCart({ cartId: a.id, name: "" }), Code.InvalidArgument);
      await rejectsWith(cart.renameCart({ cartId: a.id, name: "c", expectedVersion: 2n }), Code.Aborted);
      await rejectsWith(cart.renameCart({ cartId: missingId, name: "c" }), Code.NotFound);
      const after = (await cart.getCart({ cartId: a.id })).cart;
      assert.equal(after?.name, "WEEKLY");
      assert.equal(after?.version, 3n);
    });

    it("DeleteCart: removes the cart and its lines; stale expected_version is ABORTED", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "doomed" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item() });
      await rejectsWith(cart.deleteCart({ cartId: c.id, expectedVersion: 1n }), Code.Aborted);
      assert.equal((await cart.getCart({ cartId: c.id })).cart?.version, 2n);
      await cart.deleteCart({ cartId: c.id, expectedVersion: 2n });
      await rejectsWith(cart.getCart({ cartId: c.id }), Code.NotFound);
      await rejectsWith(cart.deleteCart({ cartId: c.id }), Code.NotFound);
      // The name is free again.
      await cart.createCart({ name: "doomed" });
    });

    it("AddItem: new lines, merging of the same product and shop, totals", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "weekly" });
      assert.ok(c);
      let got = (await cart.addItem({ cartId: c.id, item: item({ quantity: 2 }) })).cart;
      assert.equal(got?.version, 2n);
      assert.equal(got?.items[0]?.lineTotal?.amountMinor, 258n);
      assert.equal(got?.items[0]?.lineTotal?.currencyCode, "EUR");
      got = (await cart.addItem({ cartId: c.id, item: item({ productId: "bread", name: "Bread", amountMinor: 350n }) })).cart;
      // The same product from another shop is its own line.
      got = (await cart.addItem({ cartId: c.id, item: item({ shopId: "shop-2", amountMinor: 119n }) })).cart;
      // Same product and shop: the quantity grows, the new price and name replace the old ones, the line keeps its place.
      got = (await cart.addItem({ cartId: c.id, item: item({ quantity: 3, amountMinor: 139n, name: "Milk 1 l (new)" }) })).cart;
      assert.ok(got);
      assert.equal(got.version, 5n);
      assert.deepEqual(
        got.items.map((i) => [i.productId, i.shopId, i.name, i.quantity, i.unitPrice?.amountMinor, i.lineTotal?.amountMinor]),
        [
          ["milk-1l", "shop-1", "Milk 1 l (new)", 5, 139n, 695n],
          ["bread", "shop-1", "Bread", 1, 350n, 350n],
          ["milk-1l", "shop-2", "Milk 1 l", 1, 119n, 119n],
        ],
      );
      assert.equal(got.itemCount, 7);
      assert.deepEqual([got.subtotal?.currencyCode, got.subtotal?.amountMinor], ["EUR", 695n + 350n + 119n]);
      assert.deepEqual((await cart.getCart({ cartId: c.id })).cart, got);
    });

    it("AddItem: bad input is INVALID_ARGUMENT and changes nothing", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "weekly" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item() });
      const bad = [
        { cartId: c.id },
        { cartId: c.id, item: item({ productId: "" }) },
        { cartId: c.id, item: item({ shopId: "" }) },
        { cartId: c.id, item: item({ name: "" }) },
        { cartId: c.id, item: item({ quantity: 0 }) },
        { cartId: c.id, item: item({ quantity: -1 }) },
        { cartId: c.id, item: item({ quantity: 1000 }) },
        { cartId: c.id, item: item({ currencyCode: "euro" }) },
        { cartId: c.id, item: item({ currencyCode: "XYZ" }) },
        { cartId: c.id, item: item({ amountMinor: -1n }) },
        { cartId: c.id, item: item(), requestId: "not-a-uuid" },
        { cartId: "", item: item() },
      ];
      for (const req of bad) await rejectsWith(cart.addItem(req), Code.InvalidArgument);
      const after = (await cart.getCart({ cartId: c.id })).cart;
      assert.equal(after?.version, 2n);
      assert.equal(after?.itemCount, 1);
    });

    it("AddItem: quantity 1-999 per line, merging beyond it is FAILED_PRECONDITION", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "bulk" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item({ quantity: 999 }) });
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ quantity: 1 }) }), Code.FailedPrecondition);
      const after = (await cart.getCart({ cartId: c.id })).cart;
      assert.deepEqual([after?.version, after?.items[0]?.quantity], [2n, 999]);
    });

    it("AddItem: one currency per cart (FAILED_PRECONDITION); an emptied cart takes any currency", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "euros" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item() });
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ productId: "tea", currencyCode: "GBP" }) }), Code.FailedPrecondition);
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ currencyCode: "GBP" }) }), Code.FailedPrecondition);
      assert.equal((await cart.getCart({ cartId: c.id })).cart?.version, 2n);
      await cart.clearCart({ cartId: c.id });
      const got = (await cart.addItem({ cartId: c.id, item: item({ productId: "tea", currencyCode: "GBP" }) })).cart;
      assert.equal(got?.subtotal?.currencyCode, "GBP");
      // A code in another case is the same currency, answered in upper case.
      const more = (await cart.addItem({ cartId: c.id, item: item({ productId: "jam", currencyCode: " gbp " }) })).cart;
      assert.deepEqual(
        more?.items.map((i) => i.unitPrice?.currencyCode),
        ["GBP", "GBP"],
      );
    });

    it("AddItem: totals beyond int64 are refused, never wrapped", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "rich" });
      assert.ok(c);
      const max = 2n ** 63n - 1n;
      // A single line that cannot be represented is bad input.
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ amountMinor: max, quantity: 2 }) }), Code.InvalidArgument);
      await cart.addItem({ cartId: c.id, item: item({ amountMinor: max - 10n }) });
      // A valid line that would push the cart total past the maximum depends on the cart: FAILED_PRECONDITION.
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ productId: "more", amountMinor: 11n }) }), Code.FailedPrecondition);
      const got = (await cart.addItem({ cartId: c.id, item: item({ productId: "more", amountMinor: 10n }) })).cart;
      assert.equal(got?.subtotal?.amountMinor, max);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "more", shopId: "shop-1", quantity: 2 }), Code.FailedPrecondition);
    });

    it("AddItem: at most 100 lines per cart (RESOURCE_EXHAUSTED); existing lines still merge", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "big" });
      assert.ok(c);
      for (let i = 0; i < 100; i++) await cart.addItem({ cartId: c.id, item: item({ productId: `p${i}` }) });
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ productId: "p100" }) }), Code.ResourceExhausted);
      const got = (await cart.addItem({ cartId: c.id, item: item({ productId: "p7" }) })).cart;
      assert.equal(got?.items.length, 100);
      assert.equal(got?.itemCount, 101);
      assert.equal(got?.version, 102n);
    });

    it("AddItem: expected_version applies the change only on the current version", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "v" });
      assert.ok(c);
      assert.equal((await cart.addItem({ cartId: c.id, item: item(), expectedVersion: 1n })).cart?.version, 2n);
      await rejectsWith(cart.addItem({ cartId: c.id, item: item(), expectedVersion: 1n }), Code.Aborted);
      await rejectsWith(cart.addItem({ cartId: c.id, item: item(), expectedVersion: 3n }), Code.Aborted);
      const got = (await cart.getCart({ cartId: c.id })).cart;
      assert.deepEqual([got?.version, got?.itemCount], [2n, 1]);
    });

    it("UpdateItemQuantity: sets the quantity, 0 removes the line", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "q" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item() });
      await cart.addItem({ cartId: c.id, item: item({ productId: "eggs", amountMinor: 300n }) });
      let got = (await cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-1", quantity: 4, expectedVersion: 3n })).cart;
      assert.deepEqual([got?.version, got?.items[0]?.quantity, got?.subtotal?.amountMinor], [4n, 4, 4n * 129n + 300n]);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-1", quantity: 5, expectedVersion: 3n }), Code.Aborted);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-1", quantity: 1000 }), Code.InvalidArgument);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-1", quantity: -1 }), Code.InvalidArgument);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "", shopId: "shop-1", quantity: 1 }), Code.InvalidArgument);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-2", quantity: 1 }), Code.NotFound);
      got = (await cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-1", quantity: 0 })).cart;
      assert.deepEqual(got?.items.map((i) => i.productId), ["eggs"]);
      assert.equal(got?.version, 5n);
      await rejectsWith(cart.updateItemQuantity({ cartId: c.id, productId: "milk-1l", shopId: "shop-1", quantity: 0 }), Code.NotFound);
    });

    it("RemoveItem: removes a line; a missing line is NOT_FOUND", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "r" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item() });
      await cart.addItem({ cartId: c.id, item: item({ productId: "eggs" }) });
      await rejectsWith(cart.removeItem({ cartId: c.id, productId: "eggs", shopId: "shop-1", expectedVersion: 2n }), Code.Aborted);
      const got = (await cart.removeItem({ cartId: c.id, productId: "eggs", shopId: "shop-1", expectedVersion: 3n })).cart;
      assert.deepEqual([got?.version, got?.items.map((i) => i.productId)], [4n, ["milk-1l"]]);
      await rejectsWith(cart.removeItem({ cartId: c.id, productId: "eggs", shopId: "shop-1" }), Code.NotFound);
      await rejectsWith(cart.removeItem({ cartId: c.id, productId: "milk-1l", shopId: "" }), Code.InvalidArgument);
    });

    it("ClearCart: empties the cart and keeps it", async () => {
      const cart = await fresh();
      const { cart: c } = await cart.createCart({ name: "clear" });
      assert.ok(c);
      await cart.addItem({ cartId: c.id, item: item({ quantity: 3 }) });
      await rejectsWith(cart.clearCart({ cartId: c.id, expectedVersion: 1n }), Code.Aborted);
      const got = (await cart.clearCart({ cartId: c.id, expectedVersion: 2n })).cart;
      assert.deepEqual([got?.version, got?.items.length, got?.itemCount, got?.subtotal, got?.name], [3n, 0, 0, undefined, "clear"]);
      assert.equal((await cart.clearCart({ cartId: c.id })).cart?.version, 4n);
    });

    it("refuses callers without a valid token", async () => {
      const anonymous = clients.cart(tp.url, undefined);
      await rejectsWith(anonymous.listCarts({}), Code.Unauthenticated);
      await rejectsWith(anonymous.createCart({ name: "x" }), Code.Unauthenticated);
      await rejectsWith(clients.cart(tp.url, "not.a.jwt").getCart({ cartId: missingId }), Code.Unauthenticated);
    });

    it("serves Connect and gRPC-web as well as gRPC", async () => {
      const { accessToken } = await registerAndLogin(tp.url);
      const connect = clients.cart(tp.url, accessToken, "connect");
      const grpcWeb = clients.cart(tp.url, accessToken, "grpc-web");
      const grpc = clients.cart(tp.url, accessToken, "grpc");
      const { cart: c } = await connect.createCart({ name: "web" });
      assert.ok(c);
      await grpcWeb.addItem({ cartId: c.id, item: item({ amountMinor: 2n ** 62n }) });
      const viaGrpc = (await grpc.getCart({ cartId: c.id })).cart;
      assert.equal(viaGrpc?.subtotal?.amountMinor, 2n ** 62n);
      assert.deepEqual((await connect.getCart({ cartId: c.id })).cart, viaGrpc);
      assert.deepEqual((await grpcWeb.listCarts({})).carts, [viaGrpc]);
      await rejectsWith(grpcWeb.getCart({ cartId: missingId }), Code.NotFound);
      await rejectsWith(connect.createCart({ name: "WEB" }), Code.AlreadyExists);
    });
  });

  describe(`CartService limits from the environment on ${backend}`, () => {
    let tp: TestPlatform;
    const clients = new Clients();
    let cart: CartClient;

    before(async () => {
      tp = await startCartPlatform(backend, {
        env: { CART_MAX_CARTS: "105", CART_MAX_LINES: "2", CART_MAX_QUANTITY: "5", CART_MAX_NAME_LENGTH: "10" },
      });
      cart = clients.cart(tp.url, (await registerAndLogin(tp.url)).accessToken);
    });
    after(async () => {
      clients.close();
      await tp?.close();
    });

    it("applies configured line, quantity and name limits", async () => {
      await rejectsWith(cart.createCart({ name: "eleven char" }), Code.InvalidArgument);
      const { cart: c } = await cart.createCart({ name: "ten chars!" });
      assert.ok(c);
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ quantity: 6 }) }), Code.InvalidArgument);
      await cart.addItem({ cartId: c.id, item: item({ quantity: 5 }) });
      await rejectsWith(cart.addItem({ cartId: c.id, item: item() }), Code.FailedPrecondition);
      await cart.addItem({ cartId: c.id, item: item({ productId: "two" }) });
      await rejectsWith(cart.addItem({ cartId: c.id, item: item({ productId: "three" }) }), Code.ResourceExhausted);
    });

    it("caps page_size at 100", async () => {
      for (let i = (await cart.listCarts({})).carts.length; i < 105; i++) await cart.createCart({ name: `c${i}` });
      await rejectsWith(cart.createCart({ name: "c105" }), Code.ResourceExhausted);
      const first = await cart.listCarts({ pageSize: 1000 });
      assert.equal(first.carts.length, 100);
      assert.notEqual(first.nextPageToken, "");
      const second = await cart.listCarts({ pageSize: 1000, pageToken: first.nextPageToken });
      assert.equal(second.carts.length, 5);
      assert.equal(second.nextPageToken, "");
      assert.equal((await cart.listCarts({})).carts.length, 20);
    });
  });
}
