import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  AddItemRequestSchema,
  CreateCartRequestSchema,
  GetCartRequestSchema,
  UpdateItemQuantityRequestSchema,
} from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { createRequestCheck } from "@local-e-grocery/platform/validate-interceptor.js";
import { defaultCartConfig } from "../src/config.js";
import { maxAmountMinor, sumLines } from "../src/money.js";
import { fromSnapshot, toSnapshot, type CartLine, type NewItem } from "../src/model.js";
import {
  nameKey,
  parseCartId,
  parseCartName,
  parseNewItem,
  parseQuantity,
  parseRequestId,
  planAddItem,
  planSetQuantity,
  totals,
} from "../src/rules.js";

/** Asserts that `fn` throws a DomainError with `code` (and, when given, for `field`). */
function throwsCode(fn: () => unknown, code: Code, field?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DomainError, `expected a DomainError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${Code[code]}, got ${Code[e.code]}: ${e.message}`);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}

const config = defaultCartConfig;
const check = createRequestCheck();
/** Runs the schema's buf.validate rules on a request, as the platform's validate interceptor does before a handler. */
function validate<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): void {
  check(schema, create(schema, init));
}
const cartId = "0f8fad5b-d9cb-469f-a165-70867728950e";
const line = (over: Partial<CartLine> = {}): CartLine => ({
  productId: "p1",
  shopId: "s1",
  name: "Milk",
  currencyCode: "EUR",
  unitPriceMinor: 129n,
  quantity: 1,
  position: 2n,
  ...over,
});
const item = (over: Partial<NewItem> = {}): NewItem => ({
  productId: "p1",
  shopId: "s1",
  name: "Milk",
  currencyCode: "EUR",
  unitPriceMinor: 129n,
  quantity: 1,
  ...over,
});

const validItem = { productId: "p1", shopId: "s1", name: " Milk ", unitPrice: { currencyCode: "EUR", amountMinor: 129n }, quantity: 2 };

describe("cart ids", () => {
  it("accepts UUIDs in any case and lower-cases them", () => {
    assert.equal(parseCartId("0F8FAD5B-D9CB-469F-A165-70867728950E"), "0f8fad5b-d9cb-469f-a165-70867728950e");
  });
  it("answers NOT_FOUND for anything that is not a UUID, INVALID_ARGUMENT when empty", () => {
    throwsCode(() => parseCartId("1"), Code.NotFound);
    throwsCode(() => parseCartId("'; drop table cart.carts; --"), Code.NotFound);
    throwsCode(() => validate(GetCartRequestSchema, { cartId: "" }), Code.InvalidArgument, "cart_id");
  });
  it("treats an empty request_id as none and refuses non-UUIDs", () => {
    assert.equal(parseRequestId(""), undefined);
    validate(AddItemRequestSchema, { cartId, item: validItem, requestId: "" });
    validate(AddItemRequestSchema, { cartId, item: validItem, requestId: "0F8FAD5B-D9CB-469F-A165-70867728950E" });
    throwsCode(() => validate(AddItemRequestSchema, { cartId, item: validItem, requestId: "retry-1" }), Code.InvalidArgument, "request_id");
  });
});

describe("cart names", () => {
  it("trims, keeps the spelling and keys case-insensitively", () => {
    assert.deepEqual(parseCartName("  Weekly Shop ", config), { name: "Weekly Shop", key: "weekly shop" });
    assert.equal(nameKey("PARTY"), nameKey("party"));
    assert.equal(nameKey("Ｐａｒｔｙ"), nameKey("party"), "full-width letters are the same name");
  });
  it("counts characters, not UTF-16 units", () => {
    assert.equal(parseCartName("🛒".repeat(64), config).name.length, 128);
    throwsCode(() => parseCartName("a".repeat(65), config), Code.InvalidArgument, "name");
  });
  it("refuses empty, blank and control characters", () => {
    validate(CreateCartRequestSchema, { name: "  Weekly Shop " });
    throwsCode(() => validate(CreateCartRequestSchema, { name: "" }), Code.InvalidArgument, "name");
    throwsCode(() => validate(CreateCartRequestSchema, { name: "   " }), Code.InvalidArgument, "name");
    throwsCode(() => validate(CreateCartRequestSchema, { name: "\u3000\ufeff" }), Code.InvalidArgument, "name");
    throwsCode(() => validate(CreateCartRequestSchema, { name: "a\u0000b" }), Code.InvalidArgument, "name");
  });
  it("follows a configured maximum", () => {
    throwsCode(() => parseCartName("abcd", { maxNameLength: 3 }), Code.InvalidArgument, "name");
  });
});

describe("items", () => {
  const raw = validItem;
  it("validates and normalises an item", () => {
    assert.deepEqual(parseNewItem(raw, config), item({ quantity: 2 }));
  });
  it("names the field at fault", () => {
    const bad = (item: Partial<typeof raw> | undefined, field: string) =>
      throwsCode(() => validate(AddItemRequestSchema, { cartId, item: item && { ...raw, ...item } }), Code.InvalidArgument, field);
    validate(AddItemRequestSchema, { cartId, item: raw });
    bad(undefined, "item");
    bad({ productId: "" }, "item.product_id");
    bad({ shopId: "a b" }, "item.shop_id");
    bad({ name: "" }, "item.name");
    bad({ name: "x".repeat(201) }, "item.name");
    bad({ unitPrice: undefined }, "item.unit_price");
    bad({ unitPrice: { currencyCode: "euro", amountMinor: 1n } }, "item.unit_price.currency_code");
    bad({ unitPrice: { currencyCode: "E1R", amountMinor: 1n } }, "item.unit_price.currency_code");
    bad({ unitPrice: { currencyCode: " ", amountMinor: 1n } }, "item.unit_price.currency_code");
    bad({ unitPrice: { currencyCode: "", amountMinor: 1n } }, "item.unit_price.currency_code");
    bad({ unitPrice: { currencyCode: "EUR", amountMinor: -1n } }, "item.unit_price.amount_minor");
    bad({ quantity: 0 }, "item.quantity");
    bad({ quantity: -5 }, "item.quantity");
    // Above the configured limit (999) but within the schema's (100000): the domain check names the same field.
    throwsCode(() => parseNewItem({ ...raw, quantity: 1000 }, config), Code.InvalidArgument, "item.quantity");
  });
  it("stores the currency code in upper case, and refuses one that names no currency", () => {
    const price = (currencyCode: string) => ({ ...raw, unitPrice: { currencyCode, amountMinor: 129n } });
    validate(AddItemRequestSchema, { cartId, item: price(" eur ") });
    assert.equal(parseNewItem(price(" eur "), config).currencyCode, "EUR");
    validate(AddItemRequestSchema, { cartId, item: price("XYZ") });
    throwsCode(() => parseNewItem(price("XYZ"), config), Code.InvalidArgument, "item.unit_price.currency_code");
  });
  it("refuses a single line whose total cannot be represented", () => {
    throwsCode(
      () => parseNewItem({ ...raw, unitPrice: { currencyCode: "EUR", amountMinor: maxAmountMinor / 2n + 1n } }, config),
      Code.InvalidArgument,
      "item.unit_price.amount_minor",
    );
    assert.equal(parseNewItem({ ...raw, quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: maxAmountMinor } }, config).unitPriceMinor, maxAmountMinor);
  });
  it("validates opaque ids and quantities", () => {
    const update = { cartId, productId: "sku:123/β", shopId: "s1", quantity: 0 };
    validate(UpdateItemQuantityRequestSchema, update);
    throwsCode(() => validate(UpdateItemQuantityRequestSchema, { ...update, productId: "x".repeat(129) }), Code.InvalidArgument, "product_id");
    throwsCode(() => validate(UpdateItemQuantityRequestSchema, { ...update, quantity: -1 }), Code.InvalidArgument, "quantity");
    assert.equal(parseQuantity("quantity", 999, config), 999);
    throwsCode(() => parseQuantity("quantity", 1000, config), Code.InvalidArgument, "quantity");
  });
});

describe("planAddItem", () => {
  it("adds a new line at the new version's position", () => {
    const plan = planAddItem([], item({ quantity: 3 }), 2n, config);
    assert.equal(plan.kind, "insert");
    assert.equal(plan.line.position, 2n);
    assert.equal(plan.lines.length, 1);
  });
  it("merges the same product and shop, taking the new price and name", () => {
    const plan = planAddItem([line({ quantity: 4 })], item({ quantity: 3, unitPriceMinor: 99n, name: "Oat milk" }), 7n, config);
    assert.equal(plan.kind, "update");
    assert.deepEqual(plan.line, line({ quantity: 7, unitPriceMinor: 99n, name: "Oat milk", position: 2n }));
  });
  it("keeps the same product of another shop on its own line", () => {
    assert.equal(planAddItem([line()], item({ shopId: "s2" }), 3n, config).kind, "insert");
  });
  it("refuses a second currency with FAILED_PRECONDITION", () => {
    throwsCode(() => planAddItem([line()], item({ productId: "p2", currencyCode: "USD" }), 3n, config), Code.FailedPrecondition);
  });
  it("refuses a merged quantity over the limit with FAILED_PRECONDITION", () => {
    throwsCode(() => planAddItem([line({ quantity: 998 })], item({ quantity: 2 }), 3n, config), Code.FailedPrecondition);
    assert.equal(planAddItem([line({ quantity: 998 })], item({ quantity: 1 }), 3n, config).line.quantity, 999);
  });
  it("refuses a line beyond the per-cart limit with RESOURCE_EXHAUSTED, but still merges", () => {
    const full = Array.from({ length: 100 }, (_, i) => line({ productId: `p${i}`, position: BigInt(i + 2) }));
    throwsCode(() => planAddItem(full, item({ productId: "new" }), 200n, config), Code.ResourceExhausted);
    assert.equal(planAddItem(full, item({ productId: "p5" }), 200n, config).kind, "update");
  });
  it("refuses a cart total beyond int64 with FAILED_PRECONDITION", () => {
    throwsCode(() => planAddItem([line({ unitPriceMinor: maxAmountMinor })], item({ productId: "p2", unitPriceMinor: 1n }), 3n, config), Code.FailedPrecondition);
  });
});

describe("planSetQuantity and totals", () => {
  const lines = [line({ quantity: 2 }), line({ productId: "p2", unitPriceMinor: 1000n, quantity: 3, position: 3n })];
  it("sets or removes a line", () => {
    assert.equal(planSetQuantity(lines, "p1", "s1", 5).lines[0]?.quantity, 5);
    assert.deepEqual(planSetQuantity(lines, "p1", "s1", 0).lines.map((l) => l.productId), ["p2"]);
  });
  it("answers NOT_FOUND for a line the cart does not have", () => {
    throwsCode(() => planSetQuantity(lines, "p1", "s2", 1), Code.NotFound);
  });
  it("refuses a quantity whose total overflows", () => {
    throwsCode(() => planSetQuantity([line({ unitPriceMinor: maxAmountMinor / 2n })], "p1", "s1", 3), Code.FailedPrecondition);
  });
  it("sums units and money; an empty cart has no subtotal", () => {
    assert.deepEqual(totals(lines), { itemCount: 5, subtotal: { currencyCode: "EUR", amountMinor: 2n * 129n + 3000n } });
    assert.deepEqual(totals([]), { itemCount: 0, subtotal: undefined });
  });
});

describe("money and versions", () => {
  it("sums exactly up to the int64 maximum", () => {
    assert.equal(sumLines([{ unitPriceMinor: maxAmountMinor - 1n, quantity: 1 }, { unitPriceMinor: 1n, quantity: 1 }]), maxAmountMinor);
    throwsCode(() => sumLines([{ unitPriceMinor: maxAmountMinor, quantity: 1 }, { unitPriceMinor: 1n, quantity: 1 }]), Code.FailedPrecondition);
  });
  it("accepts zero prices", () => {
    validate(AddItemRequestSchema, { cartId, item: { ...validItem, unitPrice: { currencyCode: "JPY", amountMinor: 0n } } });
  });
  it("round-trips a cart through its snapshot", () => {
    const view = { id: "c", ownerId: "o", name: "n", version: 12345678901234n, createTime: 1, updateTime: 2, items: [line({ unitPriceMinor: maxAmountMinor })] };
    assert.deepEqual(fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(view)))), view);
  });
});
