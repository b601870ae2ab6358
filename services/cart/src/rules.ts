import { normaliseCurrencyCode } from "@local-e-grocery/platform/currency-code.js";
import { failedPrecondition, invalidArgument, notFound, resourceExhausted } from "@local-e-grocery/platform/errors.js";
import { canonicalUuid } from "@local-e-grocery/platform/ids.js";
import type { CartConfig } from "./config.js";
import { maxAmountMinor, sumLines, type Money } from "./money.js";
import type { CartLine, NewItem } from "./model.js";

/**
 * The cart rules as pure functions: they normalise input, apply the configured limits and plan changes, and
 * throw DomainErrors. Message shape (required fields, id syntax, lengths up to the schema's maximum, quantity
 * ranges, currency codes, request_id as a UUID, page_size ≥ 0) is declared as buf.validate rules in
 * cart.proto / cart_service.proto and enforced by the platform's validate interceptor before a handler runs.
 */

/**
 * A cart id from a request, lower-cased. Anything that is not a UUID cannot name a cart and is NOT_FOUND, exactly
 * like another user's cart, so ids reveal nothing; that is why this is not a field rule.
 */
export function parseCartId(raw: string): string {
  const id = canonicalUuid(raw);
  if (id === undefined) throw notFound("cart");
  return id;
}

/** An AddItem request_id (a UUID by the schema), lower-cased so case variants are one id; empty means none. */
export function parseRequestId(raw: string): string | undefined {
  return raw === "" ? undefined : raw.toLowerCase();
}

/**
 * A cart name with surrounding spaces trimmed, and the key that makes names unique ignoring case. The schema
 * allows up to 1024 characters; CART_MAX_NAME_LENGTH may only tighten that, so its limit is checked here.
 */
export function parseCartName(raw: string, config: Pick<CartConfig, "maxNameLength">): { name: string; key: string } {
  const name = raw.trim().normalize("NFC");
  if ([...name].length > config.maxNameLength) throw invalidArgument("name", `must be at most ${config.maxNameLength} characters`);
  return { name, key: nameKey(name) };
}

/** Case-insensitive identity of a name, computed here rather than by SQL lower() so every backend agrees. */
export function nameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/**
 * A quantity within the configured CART_MAX_QUANTITY (INVALID_ARGUMENT on `field` above it). Its lower bound and
 * the schema's own maximum are field rules.
 */
export function parseQuantity(field: string, raw: number, config: Pick<CartConfig, "maxQuantity">): number {
  if (raw > config.maxQuantity) throw invalidArgument(field, `must be at most ${config.maxQuantity}`);
  return raw;
}

export interface NewItemInput {
  productId: string;
  shopId: string;
  name: string;
  unitPrice?: Money | undefined;
  quantity: number;
}

/**
 * The item of an AddItem call, whose shape the schema has checked; field names in errors are those of the
 * request (`item.…`). INVALID_ARGUMENT for a quantity above the configured limit, a currency code that names no
 * currency, or a line total beyond int64.
 */
export function parseNewItem(raw: NewItemInput | undefined, config: Pick<CartConfig, "maxQuantity">): NewItem {
  // The schema makes item and unit_price required; a caller skipping it is a bug, not bad input.
  if (!raw?.unitPrice) throw new Error("parseNewItem: item and item.unit_price are required by the schema");
  const price = raw.unitPrice;
  const quantity = parseQuantity("item.quantity", raw.quantity, config);
  // One line must be representable on its own; otherwise the request itself is at fault.
  if (price.amountMinor * BigInt(quantity) > maxAmountMinor) {
    throw invalidArgument("item.unit_price.amount_minor", "times the quantity exceeds the largest amount");
  }
  return {
    productId: raw.productId,
    shopId: raw.shopId,
    name: raw.name.trim(),
    currencyCode: normaliseCurrencyCode(price.currencyCode, "item.unit_price.currency_code"),
    unitPriceMinor: price.amountMinor,
    quantity,
  };
}

export function findLine(lines: readonly CartLine[], productId: string, shopId: string): CartLine | undefined {
  return lines.find((l) => l.productId === productId && l.shopId === shopId);
}

/** The change AddItem makes: a new line, or a bigger existing one with the new price and name. */
export interface AddPlan {
  readonly kind: "insert" | "update";
  readonly line: CartLine;
  readonly lines: readonly CartLine[];
}

/**
 * Plans adding `item` to a cart that has `lines`, at the cart's new version `version`.
 * FAILED_PRECONDITION: another currency than the cart's, a merged quantity above the limit, a total beyond int64.
 * RESOURCE_EXHAUSTED: a new line when the cart already has the most lines allowed.
 */
export function planAddItem(lines: readonly CartLine[], item: NewItem, version: bigint, config: Pick<CartConfig, "maxLines" | "maxQuantity">): AddPlan {
  const currency = lines[0]?.currencyCode;
  if (currency !== undefined && currency !== item.currencyCode) {
    throw failedPrecondition(`the cart is priced in ${currency}; a cart holds one currency only`);
  }
  const existing = findLine(lines, item.productId, item.shopId);
  let plan: AddPlan;
  if (existing) {
    const quantity = existing.quantity + item.quantity;
    if (quantity > config.maxQuantity) {
      throw failedPrecondition(`a line may hold at most ${config.maxQuantity} units; it has ${existing.quantity}`);
    }
    const line: CartLine = { ...existing, name: item.name, unitPriceMinor: item.unitPriceMinor, quantity };
    plan = { kind: "update", line, lines: lines.map((l) => (l === existing ? line : l)) };
  } else {
    if (lines.length >= config.maxLines) throw resourceExhausted(`a cart may hold at most ${config.maxLines} lines`);
    const line: CartLine = { ...item, position: version };
    plan = { kind: "insert", line, lines: [...lines, line] };
  }
  sumLines(plan.lines);
  return plan;
}

/**
 * Plans setting a line's quantity (0 removes it). NOT_FOUND when the cart has no such line; FAILED_PRECONDITION
 * when the new total would not fit in an int64.
 */
export function planSetQuantity(lines: readonly CartLine[], productId: string, shopId: string, quantity: number): { line: CartLine; lines: readonly CartLine[] } {
  const existing = findLine(lines, productId, shopId);
  if (!existing) throw notFound("cart item");
  const line: CartLine = { ...existing, quantity };
  const next = quantity === 0 ? lines.filter((l) => l !== existing) : lines.map((l) => (l === existing ? line : l));
  sumLines(next);
  return { line, lines: next };
}

/** What a cart reports about its lines: units and subtotal (undefined while empty). */
export function totals(lines: readonly CartLine[]): { itemCount: number; subtotal: Money | undefined } {
  const itemCount = lines.reduce((n, l) => n + l.quantity, 0);
  const first = lines[0];
  return { itemCount, subtotal: first ? { currencyCode: first.currencyCode, amountMinor: sumLines(lines) } : undefined };
}
