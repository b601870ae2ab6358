import { failedPrecondition } from "@local-e-grocery/platform/errors.js";

/** An amount in minor units of one currency; amounts are bigint so they never lose precision. */
export interface Money {
  readonly currencyCode: string;
  readonly amountMinor: bigint;
}

/** Largest amount a cart stores or reports: the int64 maximum, the range of amount_minor on the wire. */
export const maxAmountMinor = 2n ** 63n - 1n;

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
