/**
 * The validate interceptor: a request that breaks a buf.validate rule declared in the protos answers
 * INVALID_ARGUMENT with every wrong field, by proto path, in one google.rpc.BadRequest — on gRPC (connect-node
 * and @grpc/grpc-js, through the unary fast path), gRPC-web and Connect — and its handler never runs, so nothing
 * is stored. Cart's rules are the real ones from cart.proto / cart_service.proto.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "@local-e-grocery/gen/google/rpc/status_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { badRequestFields, bearer, clientFor, errorOf, grpcJsClient, type Protocol } from "../../../test/clients.js";
import { registerAndLogin, type TestUser } from "../../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../../test/shared-platform.js";

/** An AddItem request breaking three rules at once: product_id, the currency code and the quantity. */
const badItem = (cartId: string) => ({
  cartId,
  item: { productId: "milk 1l", shopId: "shop-1", name: "Milk", unitPrice: { currencyCode: "euro", amountMinor: 129n }, quantity: 0 },
});
const badItemFields = ["item.product_id", "item.unit_price.currency_code", "item.quantity"];

describe("validate interceptor over the wire (pglite)", () => {
  let tp: SharedTestPlatform;
  let user: TestUser;
  let cartId: string;
  before(async () => {
    tp = await sharedTestPlatform("pglite");
    user = await registerAndLogin(tp.url);
    const created = await clientFor(CartService, tp.url).createCart({ name: "rules" }, bearer(user.accessToken));
    cartId = created.cart?.id ?? "";
  });

  /** The cart as stored: the rejected calls must leave it at version 1 with no lines, and add no cart. */
  async function assertNothingStored(): Promise<void> {
    const carts = clientFor(CartService, tp.url);
    const { cart } = await carts.getCart({ cartId }, bearer(user.accessToken));
    assert.equal(cart?.version, 1n);
    assert.equal(cart?.items.length, 0);
    const list = await carts.listCarts({}, bearer(user.accessToken));
    assert.deepEqual(
      list.carts.map((c) => c.name),
      ["rules"],
    );
  }

  for (const protocol of ["grpc", "grpc-web", "connect"] as Protocol[]) {
    it(`${protocol}: every broken rule of one request is named, by proto path, and nothing is stored`, async () => {
      const carts = clientFor(CartService, tp.url, protocol);
      assert.deepEqual(badRequestFields(await errorOf(carts.addItem(badItem(cartId), bearer(user.accessToken)))), badItemFields);
      assert.deepEqual(badRequestFields(await errorOf(carts.addItem({ cartId }, bearer(user.accessToken)))), ["item"]);
      assert.deepEqual(badRequestFields(await errorOf(carts.createCart({ name: "a\u0000b" }, bearer(user.accessToken)))), ["name"]);
      assert.deepEqual(badRequestFields(await errorOf(carts.listCarts({ pageSize: -1 }, bearer(user.accessToken)))), ["page_size"]);
      const goodItem = { productId: "milk", shopId: "shop-1", name: "Milk", unitPrice: { currencyCode: "EUR", amountMinor: 1n }, quantity: 1 };
      const requestId = await errorOf(carts.addItem({ cartId, item: goodItem, requestId: "retry-1" }, bearer(user.accessToken)));
      assert.deepEqual(badRequestFields(requestId), ["request_id"]);
      // A negative expected_version is bad input on every method that takes one, not a stale version (ABORTED).
      const auth = bearer(user.accessToken);
      const line = { productId: "milk", shopId: "shop-1" };
      const negative = [
        () => carts.renameCart({ cartId, name: "renamed", expectedVersion: -1n }, auth),
        () => carts.deleteCart({ cartId, expectedVersion: -1n }, auth),
        () => carts.addItem({ cartId, item: goodItem, expectedVersion: -1n }, auth),
        () => carts.updateItemQuantity({ cartId, ...line, quantity: 2, expectedVersion: -1n }, auth),
        () => carts.removeItem({ cartId, ...line, expectedVersion: -(2n ** 63n) }, auth),
        () => carts.clearCart({ cartId, expectedVersion: -1n }, auth),
      ];
      for (const call of negative) assert.deepEqual(badRequestFields(await errorOf(call())), ["expected_version"]);
      await assertNothingStored();
    });
  }

  it("@grpc/grpc-js (the unary fast path) gets the same google.rpc.Status in grpc-status-details-bin", async () => {
    const client = grpcJsClient(tp.url);
    try {
      const err = await errorOf(client.unary(CartService.method.addItem, badItem(cartId), { authorization: `Bearer ${user.accessToken}` }));
      assert.equal(err.code, Code.InvalidArgument);
      const [bin] = (err.cause as ServiceError).metadata.get("grpc-status-details-bin");
      assert.ok(Buffer.isBuffer(bin), "grpc-status-details-bin is present");
      const status = fromBinary(StatusSchema, bin);
      assert.equal(status.details.length, 1);
      const badRequest = anyUnpack(status.details[0]!, BadRequestSchema);
      assert.deepEqual(
        badRequest?.fieldViolations.map((v) => v.field),
        badItemFields,
      );
    } finally {
      client.close();
    }
    await assertNothingStored();
  });

  it("runs after auth: an anonymous malformed call is UNAUTHENTICATED and learns nothing about the rules", async () => {
    const err = await errorOf(clientFor(CartService, tp.url).addItem(badItem(cartId)));
    assert.equal(err.code, Code.Unauthenticated);
    assert.equal(err.findDetails(BadRequestSchema).length, 0);
  });

  it("lets a valid request through to the handler", async () => {
    const { cart } = await clientFor(CartService, tp.url, "connect").addItem(
      { cartId, item: { productId: "milk-1l", shopId: "shop-1", name: " Milk ", unitPrice: { currencyCode: "EUR", amountMinor: 129n }, quantity: 2 } },
      bearer(user.accessToken),
    );
    assert.equal(cart?.version, 2n);
    assert.equal(cart?.items[0]?.name, "Milk");
  });
});
