import { invalidArgument } from "../../platform/src/errors.js";
import { isCommonPassword } from "./passwords.js";

const usernamePattern = /^[a-z0-9_.-]{3,32}$/;
// Pragmatic address check: one @, a dotted domain, no spaces; deliverability is proven by mail, not regex.
const emailPattern = /^[^\s@]{1,64}@[^\s@]+\.[^\s@]{2,}$/;

/** Lower-cases the username; INVALID_ARGUMENT naming `field` when it breaks the rules. */
export function normaliseUsername(raw: string, field = "username"): string {
  const username = raw.trim().toLowerCase();
  if (!usernamePattern.test(username)) throw invalidArgument(field, "must be 3–32 characters of a-z, 0-9, _ . -");
  return username;
}

/** Trims and lower-cases the address (NFC first); INVALID_ARGUMENT when it is not an address. */
export function normaliseEmail(raw: string, field = "email"): string {
  const email = raw.normalize("NFC").trim().toLowerCase();
  // Control characters (NUL above all, which PostgreSQL text cannot hold) would otherwise reach SQL and fail there.
  if (email.length > 254 || !emailPattern.test(email) || /\p{Cc}/u.test(email)) throw invalidArgument(field, "must be a valid email address");
  return email;
}

/** Password rules: 8–128 characters, not common, not the username or email. */
export function checkPassword(password: string, context: { username: string; email: string }, field = "password"): void {
  const length = [...password].length;
  if (length < 8) throw invalidArgument(field, "must be at least 8 characters");
  if (length > 128) throw invalidArgument(field, "must be at most 128 characters");
  if (isCommonPassword(password)) throw invalidArgument(field, "is too common");
  const lower = password.toLowerCase();
  if (lower === context.username.toLowerCase() || lower === context.email.toLowerCase() || lower === context.email.split("@")[0]?.toLowerCase()) {
    throw invalidArgument(field, "must not be the username or email");
  }
}

export function normaliseDisplayName(raw: string, fallback: string, field = "display_name"): string {
  const name = raw.normalize("NFC").trim();
  if (name === "") return fallback;
  if ([...name].length > 64) throw invalidArgument(field, "must be at most 64 characters");
  // Control characters would corrupt receipts and notifications.
  if (/\p{Cc}/u.test(name)) throw invalidArgument(field, "must not contain control characters");
  return name;
}

/** E.164: "+", a country code not starting with 0, 7–15 digits in all. Spaces, dots, dashes and brackets are dropped; empty clears. */
export function normalisePhoneNumber(raw: string, field = "phone_number"): string {
  const phone = raw.trim().replace(/[\s().-]/g, "");
  if (phone === "") return "";
  if (!/^\+[1-9]\d{6,14}$/.test(phone)) throw invalidArgument(field, "must be an E.164 number such as +4915112345678");
  return phone;
}

/** A BCP 47 language tag in canonical form ("en-gb" → "en-GB") with a 2–3 letter language; empty clears. */
export function normaliseLanguageCode(raw: string, field = "language_code"): string {
  const tag = raw.trim();
  if (tag === "") return "";
  let canonical: string | undefined;
  try {
    if (tag.length <= 35) canonical = Intl.getCanonicalLocales(tag)[0];
  } catch {
    canonical = undefined;
  }
  if (canonical === undefined || !/^[a-z]{2,3}(-|$)/.test(canonical)) throw invalidArgument(field, "must be a BCP 47 language tag such as en or de-AT");
  return canonical;
}

let currencies: Set<string> | undefined;
/** An ISO 4217 currency code, upper case; empty clears. */
export function normaliseCurrencyCode(raw: string, field = "currency_code"): string {
  const code = raw.trim().toUpperCase();
  if (code === "") return "";
  currencies ??= new Set(Intl.supportedValuesOf("currency"));
  if (!/^[A-Z]{3}$/.test(code) || !currencies.has(code)) throw invalidArgument(field, "must be an ISO 4217 currency code such as EUR");
  return code;
}

export const notificationChannelNames = ["email", "sms", "push"] as const;
export type NotificationChannelName = (typeof notificationChannelNames)[number];
