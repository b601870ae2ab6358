import { failedPrecondition, invalidArgument, notFound, resourceExhausted } from "../../platform/src/errors.js";
import type { CartConfig } from "./config.js";
import { maxAmountMinor, sumLines, validatePrice, type Money } from "./money.js";
import type { CartLine, NewItem } from "./model.js";

/** The cart rules as pure functions: they validate input and plan changes, and throw DomainErrors. */

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Visible characters only: no whitespace, no control or format characters. */
const opaqueIdPattern = /^[^\s\p{C}]{1,128}$/u;
const controlPattern = /\p{Cc}/u;

/**
 * A cart id from a request, lower-cased. Empty is INVALID_ARGUMENT; anything that is not a UUID cannot name a cart
 * and is NOT_FOUND, exactly like another user's cart, so ids reveal nothing.
 */
export function parseCartId(raw: string): string {
  if (raw === "") throw invalidArgument("cart_id", "is required");
  if (!uuidPattern.test(raw)) throw notFound("cart");
  return raw.toLowerCase();
}

/** An AddItem request_id: empty means none; otherwise it must be a UUID (INVALID_ARGUMENT). */
export function parseRequestId(raw: string): string | undefined {
  if (raw === "") return undefined;
  if (!uuidPattern.test(raw)) throw invalidArgument("request_id", "must be a UUID");
  return raw.toLowerCase();
}

/** A product or shop id: 1–128 visible characters (INVALID_ARGUMENT on `field` otherwise). */
export function parseOpaqueId(field: string, raw: string): string {
  if (raw === "") throw invalidArgument(field, "is required");
  if (!opaqueIdPattern.test(raw)) throw invalidArgument(field, "must be 1-128 visible characters");
  return raw;
}

/** A cart name with surrounding spaces trimmed, and the key that makes names unique ignoring case. */
export function parseCartName(raw: string, config: Pick<CartConfig, "maxNameLength">): { name: string; key: string } {
  const name = raw.trim().normalize("NFC");
  if (name === "") throw invalidArgument("name", "must not be empty");
  if ([...name].length > config.maxNameLength) throw invalidArgument("name", `must be at most ${config.maxNameLength} characters`);
  if (controlPattern.test(name)) throw invalidArgument("name", "must not contain control characters");
  return { name, key: nameKey(name) };
}

/** Case-insensitive identity of a name, computed here rather than by SQL lower() so every backend agrees. */
export function nameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/** A quantity from a request: an integer in [min, maxQuantity] (INVALID_ARGUMENT on `field` otherwise). */
export function parseQuantity(field: string, raw: number, min: 0 | 1, config: Pick<CartConfig, "maxQuantity">): number {
  if (!Number.isInteger(raw) || raw < min || raw > config.maxQuantity) {
    throw invalidArgument(field, `must be between ${min} and ${config.maxQuantity}`);
  }
  return raw;
}

export interface NewItemInput {
  productId: string;
  shopId: string;
  name: string;
  unitPrice?: Money | undefined;
  quantity: number;
}

/** Validates the item of an AddItem call; field names in errors are those of the request (`item.…`). */
export function parseNewItem(raw: NewItemInput | undefined, config: Pick<CartConfig, "maxQuantity">): NewItem {
  if (!raw) throw invalidArgument("item", "is required");
  const productId = parseOpaqueId("item.product_id", raw.productId);
  const shopId = parseOpaqueId("item.shop_id", raw.shopId);
  const name = raw.name.trim();
  if (name === "") throw invalidArgument("item.name", "must not be empty");
  if ([...name].length > 200) throw invalidArgument("item.name", "must be at most 200 characters");
  if (controlPattern.test(name)) throw invalidArgument("item.name", "must not contain control characters");
  const price = validatePrice("item.unit_price", raw.unitPrice);
  const quantity = parseQuantity("item.quantity", raw.quantity, 1, config);
  // One line must be representable on its own; otherwise the request itself is at fault.
  if (price.amountMinor * BigInt(quantity) > maxAmountMinor) {
    throw invalidArgument("item.unit_price.amount_minor", "times the quantity exceeds the largest amount");
  }
  return { productId, shopId, name, currencyCode: price.currencyCode, unitPriceMinor: price.amountMinor, quantity };
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
