import { failedPrecondition, invalidArgument } from "../../platform/src/errors.js";

/** An amount in minor units of one currency; amounts are bigint so they never lose precision. */
export interface Money {
  readonly currencyCode: string;
  readonly amountMinor: bigint;
}

/** Largest amount a cart stores or reports: the int64 maximum, the range of amount_minor on the wire. */
export const maxAmountMinor = 2n ** 63n - 1n;

const currencyPattern = /^[A-Z]{3}$/;

/**
 * Checks a price supplied by a client. Raises INVALID_ARGUMENT on `field` (or its sub-field) when the currency is
 * not three upper-case letters (ISO 4217 alphabetic form) or the amount is negative.
 */
export function validatePrice(field: string, price: Money | undefined): Money {
  if (!price) throw invalidArgument(field, "is required");
  if (!currencyPattern.test(price.currencyCode)) {
    throw invalidArgument(`${field}.currency_code`, "must be an ISO 4217 code such as EUR");
  }
  if (price.amountMinor < 0n) throw invalidArgument(`${field}.amount_minor`, "must not be negative");
  if (price.amountMinor > maxAmountMinor) throw invalidArgument(`${field}.amount_minor`, "is too large");
  return { currencyCode: price.currencyCode, amountMinor: price.amountMinor };
}

/** unit × quantity, or undefined when the product leaves the int64 range. */
export function multiply(unit: bigint, quantity: number): bigint | undefined {
  const product = unit * BigInt(quantity);
  return product > maxAmountMinor ? undefined : product;
}

/** a + b for non-negative amounts, or undefined when the sum leaves the int64 range. */
export function add(a: bigint, b: bigint): bigint | undefined {
  const sum = a + b;
  return sum > maxAmountMinor ? undefined : sum;
}

/** The total of lines of one currency; FAILED_PRECONDITION when it would not fit in an int64. */
export function sumLines(lines: readonly { unitPriceMinor: bigint; quantity: number }[]): bigint {
  let total = 0n;
  for (const line of lines) {
    const lineTotal = multiply(line.unitPriceMinor, line.quantity);
    const next = lineTotal === undefined ? undefined : add(total, lineTotal);
    if (next === undefined) throw failedPrecondition("the cart total would exceed the largest representable amount");
    total = next;
  }
  return total;
}
