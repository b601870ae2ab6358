import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { ConfigError } from "@local-e-grocery/platform/config.js";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { encodeScopedPageToken, resolvePageSize } from "@local-e-grocery/platform/pagination.js";
import { cartPageSizes, decodeCartCursor, encodeCartCursor } from "../src/cart-cursor.js";
import { defaultCartConfig, readCartConfig } from "../src/config.js";

const invalid = (field: string) => (e: unknown) => e instanceof DomainError && e.code === Code.InvalidArgument && e.field === field;

describe("page size and tokens (AIP-158)", () => {
  it("defaults to 20, caps at 100, refuses negative sizes", () => {
    assert.equal(resolvePageSize(0, cartPageSizes), 20);
    assert.equal(resolvePageSize(7, cartPageSizes), 7);
    assert.equal(resolvePageSize(100, cartPageSizes), 100);
    assert.equal(resolvePageSize(5000, cartPageSizes), 100);
    assert.throws(() => resolvePageSize(-1, cartPageSizes), invalid("page_size"));
  });
  const owner = "3b241101-e2bb-4255-8caf-4136c566a962";
  it("round-trips a cursor through an opaque URL-safe token bound to the owner", () => {
    const cursor = { createTime: 1_764_000_000_123, id: "0f8fad5b-d9cb-469f-a165-70867728950e" };
    const token = encodeCartCursor(owner, cursor);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeCartCursor(owner, token), cursor);
    const last = { ...cursor, createTime: Date.UTC(9999, 11, 31, 23, 59, 59, 999) };
    assert.deepEqual(decodeCartCursor(owner, encodeCartCursor(owner, last)), last);
    assert.equal(decodeCartCursor(owner, ""), undefined);
    // Another caller's token names another list.
    assert.throws(() => decodeCartCursor("9c5b94b1-35ad-49bb-b118-8e8fc24abf80", token), invalid("page_token"));
  });
  it("refuses tokens it did not issue", () => {
    for (const token of ["x", "!!!", Buffer.from("[]").toString("base64url"), Buffer.from('{"v":2,"t":1,"i":"a"}').toString("base64url"), "a".repeat(300)]) {
      assert.throws(() => decodeCartCursor(owner, token), invalid("page_token"), token);
    }
    const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const scope = `grocery.cart.v1.CartService/ListCarts:${owner}`;
    for (const key of [[1], [-1, id], [1.5, id], [8.64e15 + 1, id], [Date.UTC(10000, 0, 1), id], ["1", id], [1, id.toUpperCase()], [1, "1; drop table carts"], [1, id, "x"]]) {
      assert.throws(() => decodeCartCursor(owner, encodeScopedPageToken(scope, key)), invalid("page_token"), JSON.stringify(key));
    }
  });
});

describe("cart config", () => {
  it("has the documented defaults", () => {
    assert.deepEqual(readCartConfig({}), defaultCartConfig);
    assert.deepEqual(defaultCartConfig, { maxCarts: 20, maxLines: 100, maxQuantity: 999, maxNameLength: 64, requestIdTtlSeconds: 86400, purgeTombstoneTtlMs: 990_000 });
  });
  it("reads overrides", () => {
    const c = readCartConfig({ CART_MAX_CARTS: "3", CART_MAX_LINES: "5", CART_MAX_QUANTITY: "10", CART_MAX_NAME_LENGTH: "8", CART_REQUEST_ID_TTL: "48h", PURGE_TOMBSTONE_TTL: "20m" });
    assert.deepEqual(c, { maxCarts: 3, maxLines: 5, maxQuantity: 10, maxNameLength: 8, requestIdTtlSeconds: 48 * 3600, purgeTombstoneTtlMs: 20 * 60_000 });
  });
  it("names the variable at fault", () => {
    for (const [name, value] of [
      ["CART_MAX_CARTS", "many"],
      ["CART_MAX_CARTS", "0"],
      ["CART_MAX_LINES", "-1"],
      ["CART_MAX_QUANTITY", "1e3"],
      ["CART_MAX_NAME_LENGTH", "0"],
      ["CART_REQUEST_ID_TTL", "a day"],
      ["PURGE_TOMBSTONE_TTL", "0"],
    ] as const) {
      assert.throws(() => readCartConfig({ [name]: value }), (e: unknown) => e instanceof ConfigError && e.message.includes(name));
    }
  });
});
