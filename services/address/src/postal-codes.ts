/**
 * Postal-code formats per country, after Google's libaddressinput metadata (the `zip` and `zipex` keys). A
 * pattern must match the whole normalised code (trimmed, upper-cased, inner whitespace collapsed to one
 * space); `examples` are real codes of that country and `counterExamples` near misses; both double as test data.
 *
 * Countries missing from `postalFormats` still need a postal code unless they are in `countriesWithoutPostalCodes`,
 * and it must look like one (`genericPostalCode`).
 */
export interface PostalFormat {
  readonly pattern: RegExp;
  /** Valid codes, as a customer would type them. */
  readonly examples: readonly string[];
  /** Near misses the pattern must refuse (wrong length, letters, separators or excluded letters). */
  readonly counterExamples: readonly string[];
}

function format(source: string, examples: string[], counterExamples: string[]): PostalFormat {
  return { pattern: new RegExp(`^(?:${source})$`), examples, counterExamples };
}

export const postalFormats: ReadonlyMap<string, PostalFormat> = new Map([
  // India: six-digit PIN, first digit 1–9, sometimes written "110 001".
  ["IN", format(String.raw`[1-9]\d{2} ?\d{3}`, ["110001", "560 034", "400050"], ["011001", "11001", "1100011", "ABCDEF", "110-001"])],
  // United States: ZIP or ZIP+4.
  ["US", format(String.raw`\d{5}(?:[ -]\d{4})?`, ["95014", "22162-1010", "10001 0001"], ["9501", "950141", "95014-12", "ABCDE", "95014_1234"])],
  // United Kingdom: outward code (area, district) and inward code; plus the Girobank code.
  ["GB", format(String.raw`GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}`, ["EC1Y 8SY", "SW1A 1AA", "M1 1AE", "gir 0aa", "B338TH"], ["EC1Y 8S", "12345", "SW1A 1AC", "1AA 1AA", "SW1A-1AA"])],
  // Canada: A1A 1A1 without D, F, I, O, Q, U (and W, Z in first place).
  ["CA", format(String.raw`[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d`, ["H3Z 2Y7", "V8X 3X4", "k1a0b1"], ["D3Z 2Y7", "H3Z2Y", "12345", "H3Z 2Y77", "W3Z 2Y7"])],
  ["DE", format(String.raw`\d{5}`, ["26133", "53225", "01067"], ["1234", "123456", "D-12345", "ABCDE"])],
  // France: five digits, often written with a space after the département.
  ["FR", format(String.raw`\d{2} ?\d{3}`, ["75008", "33380", "06 000"], ["7500", "750088", "2A004", "75-008"])],
  ["AU", format(String.raw`\d{4}`, ["2060", "3171", "0800"], ["200", "20600", "A060"])],
  // Netherlands: four digits (no leading 0) and two letters, except SA, SD and SS.
  ["NL", format(String.raw`[1-9]\d{3} ?(?!SA|SD|SS)[A-Z]{2}`, ["1234 AB", "2490AA", "1012 js"], ["0123 AB", "1234 SA", "1234 A", "12345 AB", "AB 1234"])],
  // Japan: 〒123-4567.
  ["JP", format(String.raw`\d{3}-?\d{4}`, ["154-0023", "3501106"], ["154-002", "1540-023", "154 0023", "ABC-DEFG"])],
  ["SG", format(String.raw`\d{6}`, ["546080", "018956"], ["54608", "5460801", "S546080"])],
  ["AT", format(String.raw`\d{4}`, ["1010", "3741"], ["101", "10100"])],
  ["BE", format(String.raw`\d{4}`, ["1000", "4000"], ["100", "B-1000"])],
  ["BR", format(String.raw`\d{5}-?\d{3}`, ["40301-110", "70002900"], ["4030-110", "40301-11", "403011100"])],
  ["CH", format(String.raw`\d{4}`, ["2544", "1211"], ["25440", "CH-2544"])],
  ["CN", format(String.raw`\d{6}`, ["266033", "100000"], ["26603", "2660333"])],
  ["DK", format(String.raw`\d{4}`, ["8660", "1566"], ["866", "DK-8660"])],
  ["ES", format(String.raw`\d{5}`, ["28039", "08001"], ["2803", "280399"])],
  ["IT", format(String.raw`\d{5}`, ["00144", "47037"], ["0014", "I-00144"])],
  ["MX", format(String.raw`\d{5}`, ["02860", "77520"], ["0286", "028600"])],
  ["NZ", format(String.raw`\d{4}`, ["6001", "0110"], ["600", "60011"])],
  ["PL", format(String.raw`\d{2}-\d{3}`, ["00-950", "05-075"], ["00950", "00-95", "000-950"])],
  ["PT", format(String.raw`\d{4}-\d{3}`, ["2725-079", "1000-001"], ["2725079", "2725-07"])],
  ["SE", format(String.raw`\d{3} ?\d{2}`, ["11455", "112 51"], ["1145", "114555", "S-11455"])],
  ["ZA", format(String.raw`\d{4}`, ["0083", "8001"], ["008", "00833"])],
]);

/**
 * Countries with no postal-code system (libaddressinput has no `zip` for them): a postal code is optional
 * there, and checked only against `genericPostalCode` when given.
 */
export const countriesWithoutPostalCodes: ReadonlySet<string> = new Set([
  "AE", "AG", "AO", "AW", "BF", "BI", "BJ", "BS", "BW", "BZ", "CD", "CF", "CG", "CI", "CK", "CM", "DJ", "DM",
  "ER", "FJ", "GD", "GM", "GQ", "GY", "HK", "KI", "KM", "KN", "KP", "LY", "ML", "MO", "MR", "NR", "NU", "QA",
  "RW", "SB", "SC", "SL", "SR", "ST", "SY", "TD", "TG", "TK", "TO", "TV", "UG", "VU", "YE", "ZW",
]);

/** What a postal code looks like anywhere: letters and digits, with single spaces or hyphens between. */
export const genericPostalCode = /^[A-Z0-9](?:[A-Z0-9]|[ -](?=[A-Z0-9])){1,11}$/;

/**
 * Trimmed, ASCII letters upper-cased, inner whitespace collapsed: the form patterns are written for and codes are
 * stored in. Only ASCII letters change case: toUpperCase would turn "ſ" (long s) into "S" and accept it.
 */
export function normalisePostalCode(raw: string): string {
  return raw
    .trim()
    .replace(/\s+/g, " ")
    .replace(/[a-z]+/g, (m) => m.toUpperCase());
}

export type PostalCheck = "ok" | "required" | "malformed";

/**
 * Checks a normalised postal code against the rules of `countryCode` (an assigned ISO code, upper case). An empty
 * code is "required" everywhere except in `countriesWithoutPostalCodes`: there an address has no code to give, so
 * insisting on one would only make customers invent it (documented on Address.postal_code in address.proto).
 */
export function checkPostalCode(countryCode: string, postalCode: string): PostalCheck {
  if (postalCode === "") return countriesWithoutPostalCodes.has(countryCode) ? "ok" : "required";
  const known = postalFormats.get(countryCode);
  if (known) return known.pattern.test(postalCode) ? "ok" : "malformed";
  return genericPostalCode.test(postalCode) ? "ok" : "malformed";
}
