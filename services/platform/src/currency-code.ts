import { invalidArgument } from "./errors.js";

let currencies: Set<string> | undefined;

/**
 * The stored form of a currency code the schema's `grocery.validate.v1.currency_code` rule accepted: trimmed and
 * upper-cased ("eur " → "EUR"); empty stays empty. The rule admits three letters; whether they name a currency is
 * data (Intl's list), so an unknown one (such as "XYZ") is INVALID_ARGUMENT on `field`. Every service stores
 * currency codes in this one form.
 */
export function normaliseCurrencyCode(raw: string, field: string): string {
  const code = raw.trim().toUpperCase();
  if (code === "") return "";
  currencies ??= new Set(Intl.supportedValuesOf("currency"));
  if (!currencies.has(code)) throw invalidArgument(field, "must be an ISO 4217 currency code such as EUR");
  return code;
}
