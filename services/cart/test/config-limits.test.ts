/** Configurable limits may only tighten what the schema's buf.validate rules declare. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CartItemSchema } from "@local-e-grocery/gen/grocery/cart/v1/cart_pb.js";
import { CreateCartRequestSchema, UpdateItemQuantityRequestSchema } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { ConfigError } from "@local-e-grocery/platform/config.js";
import { schemaMaximum } from "@local-e-grocery/platform/field-rules.js";
import { readCartConfig } from "../src/config.js";

describe("cart limits against the schema", () => {
  it("reads each maximum from the field's rules", () => {
    assert.equal(schemaMaximum(CartItemSchema.field.quantity), 100_000);
    assert.equal(schemaMaximum(UpdateItemQuantityRequestSchema.field.quantity), 100_000);
    assert.equal(schemaMaximum(CreateCartRequestSchema.field.name), 1024);
    assert.throws(() => schemaMaximum(CartItemSchema.field.lineTotal));
  });
  it("accepts a configured limit up to the schema's maximum and refuses one above it", () => {
    assert.equal(readCartConfig({ CART_MAX_QUANTITY: "100000", CART_MAX_NAME_LENGTH: "1024" }).maxQuantity, 100_000);
    assert.throws(() => readCartConfig({ CART_MAX_QUANTITY: "100001" }), (e: unknown) => e instanceof ConfigError && /CART_MAX_QUANTITY/.test(e.message));
    assert.throws(() => readCartConfig({ CART_MAX_NAME_LENGTH: "1025" }), (e: unknown) => e instanceof ConfigError && /CART_MAX_NAME_LENGTH/.test(e.message));
  });
});
