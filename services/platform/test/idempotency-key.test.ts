/**
 * The Idempotency-Key header, which lets the edge retry a write it cannot read: on a method with a request_id
 * (AddItem) a call that sends it must carry the same id in its body, else INVALID_ARGUMENT on request_id and
 * nothing changes; with the same id it is an ordinary keyed call (a repeat returns the first result); methods
 * without a request_id, and calls without the header, are unaffected. On gRPC (the unary fast path), gRPC-web and
 * Connect.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { badRequestFields, clientFor, errorOf, type Protocol } from "../../../test/clients.js";
import { registerAndLogin, type TestUser } from "../../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../../test/shared-platform.js";
import { idempotencyKeyHeader } from "../src/idempotency-key.js";

const milk = { productId: "milk", shopId: "shop-1", name: "Milk", unitPrice: { currencyCode: "EUR", amountMinor: 129n }, quantity: 1 };

describe("the Idempotency-Key header (pglite)", () => {
  let tp: SharedTestPlatform;
  let user: TestUser;
  before(async () => {
    tp = await sharedTestPlatform("pglite");
    user = await registerAndLogin(tp.url);
  });
  const headers = (key?: string) => ({ headers: { authorization: `Bearer ${user.accessToken}`, ...(key === undefined ? {} : { [idempotencyKeyHeader]: key }) } });

  for (const protocol of ["grpc", "grpc-web", "connect"] as Protocol[]) {
    it(`${protocol}: holds the header to the body's request_id, and changes nothing when they differ`, async () => {
      const carts = clientFor(CartService, tp.url, protocol);
      const { cart } = await carts.createCart({ name: `keyed ${protocol}` }, headers(randomUUID()));
      const cartId = cart?.id ?? "";
      const requestId = randomUUID();

      const mismatch = await errorOf(carts.addItem({ cartId, item: milk, requestId }, headers(randomUUID())));
      assert.deepEqual(badRequestFields(mismatch), ["request_id"], mismatch.message);
      assert.deepEqual(badRequestFields(await errorOf(carts.addItem({ cartId, item: milk }, headers(requestId)))), ["request_id"], "a header without a request_id in the body");
      assert.deepEqual(badRequestFields(await errorOf(carts.addItem({ cartId, item: milk }, headers("")))), ["request_id"], "an empty header without a request_id");
      assert.equal((await carts.getCart({ cartId }, headers())).cart?.version, cart?.version, "the refused calls changed nothing");

      const first = await carts.addItem({ cartId, item: milk, requestId }, headers(requestId.toUpperCase()));
      const repeat = await carts.addItem({ cartId, item: milk, requestId }, headers(requestId));
      assert.equal(repeat.cart?.version, first.cart?.version, "a repeat with the same key is answered from the first call");
      assert.equal(first.cart?.items[0]?.quantity, 1);
      // Without the header, as before.
      await carts.addItem({ cartId, item: milk }, headers());
      assert.equal((await carts.getCart({ cartId }, headers())).cart?.items[0]?.quantity, 2);
    });
  }
});
